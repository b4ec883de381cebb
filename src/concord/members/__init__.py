"""Members (country delegations and institutions), their countries and blocs, people and keys."""
