"""Differential privacy for federated rounds: clipping, noise, and the accountant's ε.

Rounds call these as stages (see `mechanism`); strategies stay pure over what they are given.
"""
