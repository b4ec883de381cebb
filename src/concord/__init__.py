"""Concord: multilateral AI cooperation."""
