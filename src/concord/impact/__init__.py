"""Impact: who takes part and who benefits, by UN region, income group and bloc, and what the
work cost in energy. Computed from the other domains' records through their `stats` modules."""
