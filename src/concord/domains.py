"""The domains in dependency order, lowest first.

The shells (API, CLI, pages, demo) find each domain's `routes`, `pages`, `commands` and `seed`
modules by these names, so adding a domain's module needs no edit elsewhere.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

DOMAINS = ("ledger", "members", "governance", "commons", "federation", "capacity", "impact")


def domain_modules(kind: str) -> list[ModuleType]:
    """Each domain's module called `kind` (e.g. `routes`), for the domains that have one."""
    modules = []
    for domain in DOMAINS:
        # A domain not yet built has no package at all; find_spec of its child would raise.
        if importlib.util.find_spec(f"concord.{domain}") is None:
            continue
        name = f"concord.{domain}.{kind}"
        if importlib.util.find_spec(name) is not None:
            modules.append(importlib.import_module(name))
    return modules
