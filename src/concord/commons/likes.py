"""Likes: a person marks a repository they value, as on the Hub; repositories show how many
like them, listings sort by it, and anyone may see who likes what (not an act the log
records: a like decides nothing)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.commons import repositories as repos
from concord.commons.tables import Like, Repository
from concord.db import utcnow
from concord.members.tables import Member, Person


def like(session: Session, repo: Repository, person: Person) -> None:
    """Idempotent, as the Hub's: liking twice is one like."""
    if session.get(Like, (repo.id, person.id)) is None:
        session.add(Like(repository_id=repo.id, person_id=person.id, created_at=utcnow()))
        session.flush()


def unlike(session: Session, repo: Repository, person: Person) -> None:
    found = session.get(Like, (repo.id, person.id))
    if found is not None:
        session.delete(found)
        session.flush()


def count(session: Session, repo: Repository) -> int:
    stmt = select(func.count()).select_from(Like).where(Like.repository_id == repo.id)
    return int(session.scalar(stmt) or 0)


def handle(person: Person, member: Member | None) -> str:
    """A person's name in the Hub protocol: the member they publish for (what `whoami` says),
    or, for people of no member, a name of their own."""
    return member.slug if member is not None else f"person-{person.id}"


def liked_by(session: Session, user: str, viewer: Person | None) -> list[tuple[Like, Repository]]:
    """What the people named `user` (a member's handle, or `person-<id>`) like, among the
    repositories `viewer` may see; each repository once, newest like first."""
    stmt = (
        select(Like, Repository)
        .join(Repository, Repository.id == Like.repository_id)
        .join(Person, Person.id == Like.person_id)
        .order_by(Like.created_at.desc())
    )
    if user.startswith("person-") and user[7:].isdigit():
        stmt = stmt.where(Person.id == int(user[7:]), Person.member_id.is_(None))
    else:
        stmt = stmt.join(Member, Member.id == Person.member_id).where(Member.slug == user)
    seen: dict[int, tuple[Like, Repository]] = {}
    for found, repo in session.execute(stmt).all():
        if repo.id not in seen and repos.visible(repo, viewer):
            seen[repo.id] = (found, repo)
    return list(seen.values())


def likers(session: Session, repo: Repository) -> list[tuple[Person, Member | None]]:
    rows = session.execute(
        select(Person, Member)
        .join(Like, Like.person_id == Person.id)
        .outerjoin(Member, Member.id == Person.member_id)
        .where(Like.repository_id == repo.id)
        .order_by(Like.created_at)
    ).all()
    return [(p, m) for p, m in rows]
