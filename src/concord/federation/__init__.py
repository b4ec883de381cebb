"""Federation: cross-border training where data never leaves its owner."""
