"""A ranking of priorities adopted by governance orders the programme list: governance
announces the ranked options, capacity listens (it never reads governance's tables)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from concord.capacity import priorities
from concord.events import subscribe


@subscribe("governance.options_ranked")
def options_ranked(session: Session, payload: dict[str, Any]) -> None:
    priorities.record(session, payload)
