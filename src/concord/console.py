"""What every domain's commands share: Rich consoles and the local database."""

from __future__ import annotations

from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from concord.config import Settings, get_settings
from concord.db import is_current, make_engine, make_sessionmaker
from concord.errors import N_, Unavailable

out = Console()
err = Console(stderr=True)


class NotInitialised(Unavailable):
    code = "db.not_initialised"
    message = N_("The database at {url} is not initialised or is out of date: run `concord init`.")


def local_sessions(settings: Settings | None = None) -> sessionmaker[Session]:
    """Sessions on this hub's own database, which must be at the code's schema."""
    settings = settings or get_settings()
    engine = make_engine(settings.database())
    if not is_current(engine):
        raise NotInitialised(url=_redacted(settings.database()))
    return make_sessionmaker(engine)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
