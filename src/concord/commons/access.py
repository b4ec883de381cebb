"""Gated repositories: a card that says `gated: auto` or `gated: manual` asks readers to
request access first; `auto` grants at once, `manual` waits for the owner's delegates.
Requests and decisions are logged (by person id: the public log names no one's email).

The gate guards every road to the bytes: `resolve`, the revision document with its chunk
lists, the hashes in listings, and the routes that serve content or chunks by hash. Hashes
are no secret (the log names every published file's SHA-256), so content by hash is served
only to someone whom a repository holding it lets read it: a blob that a public repository
and a gated one share is public; one held by gated or private repositories only is not."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.commons import disclosure
from concord.commons import repositories as repos
from concord.commons.tables import AccessRequest, Blob, Holding, Repository, Revision
from concord.db import utcnow
from concord.errors import N_, Forbidden, Invalid, NotFound
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


class GatedContent(Forbidden):
    code = "commons.gated_content"
    hub_code = "GatedRepo"
    message = N_(
        "This content belongs to gated repositories only: request access to one of them and "
        "wait for its owner's approval."
    )


class UnheldContent(NotFound):
    code = "commons.unheld_content"
    hub_code = "EntryNotFound"
    message = N_("No repository you can see holds content with SHA-256 {sha256}.")


class BadDecision(Invalid):
    code = "commons.bad_decision"
    message = N_("An access request is accepted, rejected or left pending, not “{status}”.")


gate = repos.gate  # the card's `gated:` value, read where the card is parsed


def granted(session: Session, repo: Repository, person: Person | None) -> bool:
    """Whether `person` reads `repo`'s gated revisions: its member's people, the secretariat
    for a private one (which it may see), and those whose request was accepted."""
    if person is None or not repos.visible(repo, person):
        return False
    if person.member_id is not None and person.member_id == repo.member_id:
        return True  # the owner's delegates
    if repo.private and person.role == "secretariat":
        return True
    request = _request(session, repo, person.id)
    return request is not None and request.status == "accepted"


def may_read(session: Session, repo: Repository, revision: Revision, person: Person | None) -> bool:
    if not repos.visible(repo, person):
        return False
    return not gate(revision.card) or granted(session, repo, person)


def require_read(
    session: Session, repo: Repository, revision: Revision, person: Person | None
) -> None:
    if not may_read(session, repo, revision, person):
        raise GatedRepository(repo=f"{repo.owner}/{repo.name}")


def may_read_blob(session: Session, sha256: str, person: Person | None) -> bool:
    """Whether some repository holding the blob lets `person` read a revision holding it."""
    return _blob_verdict(session, sha256, person) == "read"


def require_blob(session: Session, sha256: str, person: Person | None) -> Blob:
    """The blob, if `person` may read it; otherwise the Hub's answers: `GatedRepo` (403) when
    only gated repositories they can see hold it, `EntryNotFound` (404) when none they can see
    does (private repositories, and uploads no commit has named yet, stay unseen)."""
    verdict = _blob_verdict(session, sha256, person)
    if verdict == "gated":
        raise GatedContent()
    blob = session.get(Blob, sha256) if verdict == "read" else None
    if blob is None:
        raise UnheldContent(sha256=sha256[:64])
    return blob


def _blob_verdict(session: Session, sha256: str, person: Person | None) -> str:
    rows = session.execute(
        select(Holding, Repository)
        .join(Repository, Repository.id == Holding.repository_id)
        .where(Holding.sha256 == sha256)
    ).all()
    verdict = "unseen"
    for holding, repo in rows:
        if not repos.visible(repo, person):
            continue
        if holding.open or granted(session, repo, person):
            return "read"
        verdict = "gated"
    return verdict


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
    disclosure.record(
        session,
        repo,
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
    disclosure.record(
        session,
        repo,
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
