"""Gated repositories: a card that says `gated: auto` or `gated: manual` asks readers to
request access first; `auto` grants at once, `manual` waits for the owner's delegates.
Requests and decisions are logged (by person id: the public log names no one's email).

The gate guards what leads to the bytes: `resolve`, the revision document with its chunk lists,
and the content hashes in listings. Content and chunks are addressed by hash, so a reader who
was never shown a gated file's hash cannot ask for it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.commons.tables import AccessRequest, Repository, Revision
from concord.db import utcnow
from concord.errors import N_, Forbidden, Invalid, NotFound
from concord.ledger.log import append
from concord.members.tables import Member, Person

STATUSES = ("pending", "accepted", "rejected")


class GatedRepository(Forbidden):
    code = "commons.gated"
    hub_code = "GatedRepo"
    message = N_(
        "“{repo}” is gated: request access (POST …/ask-access with your token) and wait for "
        "its owner's approval."
    )


class UnknownRequester(NotFound):
    code = "commons.unknown_requester"
    message = N_("No one with the address “{user}” has asked for access to “{repo}”.")


class BadDecision(Invalid):
    code = "commons.bad_decision"
    message = N_("An access request is accepted, rejected or left pending, not “{status}”.")


def gate(card: dict[str, Any]) -> str:
    """ "auto", "manual", or "" for a repository anyone may read."""
    value = card.get("gated")
    if value is True or str(value).lower() == "auto":
        return "auto"
    return "manual" if str(value).lower() == "manual" else ""


def may_read(session: Session, repo: Repository, revision: Revision, person: Person | None) -> bool:
    if not gate(revision.card):
        return True
    if person is None:
        return False
    if person.member_id is not None and person.member_id == repo.member_id:
        return True  # the owner's delegates
    request = _request(session, repo, person.id)
    return request is not None and request.status == "accepted"


def require_read(
    session: Session, repo: Repository, revision: Revision, person: Person | None
) -> None:
    if not may_read(session, repo, revision, person):
        raise GatedRepository(repo=f"{repo.owner}/{repo.name}")


def _request(session: Session, repo: Repository, person_id: int) -> AccessRequest | None:
    return session.scalars(
        select(AccessRequest).where(
            AccessRequest.repository_id == repo.id, AccessRequest.person_id == person_id
        )
    ).first()


def ask(session: Session, repo: Repository, revision: Revision, person: Person) -> AccessRequest:
    """Records a request; granted at once when the gate is `auto`. Logged."""
    request = _request(session, repo, person.id)
    if request is not None:
        return request
    status = "accepted" if gate(revision.card) == "auto" else "pending"
    now = utcnow()
    request = AccessRequest(
        repository_id=repo.id,
        person_id=person.id,
        status=status,
        requested_at=now,
        decided_at=now if status == "accepted" else None,
    )
    session.add(request)
    session.flush()
    append(
        session,
        "commons.access_requested",
        {"repository": f"{repo.owner}/{repo.name}", "person": person.id, "status": status},
        member_id=person.member_id,
    )
    return request


def decide(
    session: Session, repo: Repository, user: str, status: str, *, by: Member
) -> AccessRequest:
    """The owner's decision on the request of the person whose address is `user`. Logged;
    `grant` is a decision for someone who has not asked."""
    if status not in STATUSES:
        raise BadDecision(status=status)
    person = session.scalars(select(Person).where(Person.email == user)).first()
    if person is None:
        raise UnknownRequester(user=user, repo=f"{repo.owner}/{repo.name}")
    request = _request(session, repo, person.id)
    if request is None:
        request = AccessRequest(
            repository_id=repo.id, person_id=person.id, status=status, requested_at=utcnow()
        )
        session.add(request)
    request.status = status
    request.decided_at = utcnow()
    request.decided_by = by.id
    session.flush()
    append(
        session,
        "commons.access_decided",
        {"repository": f"{repo.owner}/{repo.name}", "person": person.id, "status": status},
        member_id=by.id,
    )
    return request


def requests(session: Session, repo: Repository, status: str) -> list[tuple[AccessRequest, Person]]:
    if status not in STATUSES:
        raise BadDecision(status=status)
    rows = session.execute(
        select(AccessRequest, Person)
        .join(Person, Person.id == AccessRequest.person_id)
        .where(AccessRequest.repository_id == repo.id, AccessRequest.status == status)
        .order_by(AccessRequest.requested_at)
    ).all()
    return [(r, p) for r, p in rows]
