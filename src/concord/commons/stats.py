"""Read-only figures for the impact dashboard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.commons.tables import Download


def downloads(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[str | None, int]:
    """ISO 3166 alpha-2 country (None: anonymous) → file downloads."""
    query = select(Download.country, func.count()).group_by(Download.country)
    if since:
        query = query.where(Download.at >= since)
    if until:
        query = query.where(Download.at < until)
    return {country: int(n) for country, n in session.execute(query).all()}


def downloads_by_repo(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[int, int]:
    query = select(Download.repository_id, func.count()).group_by(Download.repository_id)
    if since:
        query = query.where(Download.at >= since)
    if until:
        query = query.where(Download.at < until)
    return {repo: int(n) for repo, n in session.execute(query).all()}
