"""What the demo hands each domain's `seed` step: the settings, sessions and shared facts.

Each domain's `seed.py` defines `STEP` (a title for the progress display) and
`seed(world: World) -> None`. Steps must be idempotent: `concord demo` may run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from concord.config import Settings


@dataclass
class World:
    settings: Settings
    sessions: sessionmaker[Session]
    # Facts later steps need: e.g. "tokens" (member slug → delegate token secret).
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Serves this hub for the occasion and returns its URL; set by whoever runs the steps
    # (the demo's story), so that a domain's step that needs a live hub (federated nodes)
    # never starts a shell itself.
    hub: Callable[[], str] | None = None

    @property
    def keys_dir(self) -> Path:
        """Where the demo keeps its members' private keys (a real member keeps its own)."""
        return self.settings.data_dir / "demo-keys"
