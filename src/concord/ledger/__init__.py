"""The transparency log: an append-only Merkle log (RFC 9162) of every act that matters."""
