"""Panels: a section that a higher domain adds to a lower domain's page.

Dependencies point down: federation uses the commons, never the other way. Yet the commons'
model page should say how the model works for whom, which only federation's evaluation
campaigns know. So the commons page asks for the panels registered under its name, and the
federation's pages register one at import (the app imports every domain's `pages` at start);
the commons never names federation, and a hub without it shows the page without the panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from markupsafe import Markup
from sqlalchemy.orm import Session

Panel = Callable[[Request, Session, dict[str, Any]], Markup | None]

_REGISTERED: dict[str, list[Panel]] = {}


def panel(page: str) -> Callable[[Panel], Panel]:
    """Registers a function that renders a section of `page` (or None to add nothing)."""

    def register(function: Panel) -> Panel:
        found = _REGISTERED.setdefault(page, [])
        if function not in found:
            found.append(function)
        return function

    return register


def panels(page: str, request: Request, db: Session, context: dict[str, Any]) -> list[Markup]:
    """The rendered sections the domains above add to `page`, in registration order."""
    rendered = (function(request, db, context) for function in _REGISTERED.get(page, []))
    return [html for html in rendered if html]
