"""Governance: proposals, deliberation and the opinion map, the charter, ballots, decisions."""
