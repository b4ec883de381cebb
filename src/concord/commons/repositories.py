"""Repositories and their revisions.

A push uploads blobs first (chunks stored, nothing visible), then commits: one transaction
checks every path, format, licence and adopted standard, then writes the revision, moves the
branch and logs the publication. A push that fails at any point leaves no visible revision.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord import metrics
from concord.commons import disclosure, licences
from concord.commons.chunks import ChunkStore
from concord.commons.formats import check_content, check_path, check_stream
from concord.commons.roots import chunk_root
from concord.commons.tables import (
    AccessRequest,
    Blob,
    Download,
    Holding,
    Like,
    Ref,
    Repository,
    Revision,
)
from concord.db import utcnow
from concord.errors import N_, Conflict, Forbidden, Invalid, NotFound
from concord.governance.standards import evaluate
from concord.ledger.log import canonical_json, entry
from concord.ledger.tables import LogEntry
from concord.members.tables import Member, Person

KINDS = ("model", "dataset")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
SHA = re.compile(r"^[0-9a-f]{40}$")
REF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,89}$")
TAG = "tags/"  # tags share the refs table, under this prefix; branches never start with it


class UnknownRepository(NotFound):
    code = "commons.unknown_repository"
    hub_code = "RepoNotFound"
    message = N_("There is no {kind} repository “{repo}”.")


class UnknownRevision(NotFound):
    code = "commons.unknown_revision"
    hub_code = "RevisionNotFound"
    message = N_("Repository “{repo}” has no revision or branch “{revision}”.")


class UnknownFile(NotFound):
    code = "commons.unknown_file"
    hub_code = "EntryNotFound"
    message = N_("Revision {revision} of “{repo}” has no file “{path}”.")


class UnknownBlob(Invalid):
    code = "commons.unknown_blob"
    message = N_("No uploaded content has SHA-256 {sha256}; upload the file first.")


class ContentNotYours(Forbidden):
    code = "commons.content_not_yours"
    hub_code = "GatedRepo"
    message = N_(
        "The content with SHA-256 {sha256} is held by repositories you may not read: upload "
        "its bytes to publish it."
    )


class RepositoryExists(Conflict):
    code = "commons.repository_exists"
    message = N_("The {kind} repository “{repo}” exists already.")


class BadRepository(Invalid):
    code = "commons.bad_repository"
    message = N_("The repository is not valid: {reason}")


class StandardsRefused(Conflict):
    code = "commons.standards_refused"
    message = N_("Publication refused by adopted standards: {rules}")


class RefExists(Conflict):
    code = "commons.ref_exists"
    message = N_("Repository “{repo}” already has a branch or tag “{name}”.")


class MissingLicence(Invalid):
    code = "commons.missing_licence"
    message = N_(
        "Repository “{repo}” has no licence yet: add a README.md whose YAML metadata names "
        "one, e.g. “license: apache-2.0”."
    )


class StaleParent(Conflict):
    code = "commons.stale_parent"
    message = N_("The branch moved to {current} since you read it; pull and push again.")


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    blob: Blob


def repo_id(repo: Repository) -> str:
    return f"{repo.owner}/{repo.name}"


def create(
    session: Session,
    member: Member,
    *,
    kind: str,
    name: str,
    licence: str,
    mirrored_from: str = "",
    private: bool = False,
) -> Repository:
    if kind not in KINDS:
        raise BadRepository(reason=N_("the kind must be model or dataset"))
    if not NAME.match(name):
        raise BadRepository(reason=N_("names use letters, digits, “.”, “-” and “_” (1 to 96)"))
    if get(session, kind, member.slug, name, missing_ok=True) is not None:
        raise RepositoryExists(kind=kind, repo=f"{member.slug}/{name}")
    repo = Repository(
        kind=kind,
        owner=member.slug,
        name=name,
        member_id=member.id,
        # Hub clients create a repository without a licence: the first card must then name one.
        licence=licences.check(licence) if licence else "",
        mirrored_from=mirrored_from,
        created_at=utcnow(),
        private=private,
    )
    session.add(repo)
    session.flush()
    if private:
        # Private from its first moment: even its creation is logged under a commitment.
        _record(session, repo, "commons.visibility_changed", member.id, private=True)
    return repo


def _record(session: Session, repo: Repository, act: str, by: int, **fields: Any) -> LogEntry:
    """Logs an act on `repo`, which every entry names with its kind (under a commitment while
    it is private: `disclosure.record`)."""
    content = {"repository": repo_id(repo), "kind": repo.kind, **fields}
    return disclosure.record(session, repo, act, content, member_id=by)


def set_private(session: Session, repo: Repository, private: bool, *, by: Member) -> None:
    """Makes a repository private (seen by its member's people and the secretariat only) or
    public again. Logged: the log says that a repository's visibility changed and by whom, as
    for every act that decides who reads what.

    Both entries name the repository in clear: going private, its name was public already
    (what it does while private is logged under commitments); going public, the entry also
    reveals the salt of those commitments, so anyone can link them (`disclosure.py`)."""
    if repo.private == private:
        return
    if private:  # logged while still public, in clear
        _record(session, repo, "commons.visibility_changed", by.id, private=True)
        repo.private = True
    else:  # logged once public, with the salt
        revealed = disclosure.reveal(repo)
        repo.private = False
        _record(session, repo, "commons.visibility_changed", by.id, private=False, **revealed)
    session.flush()


def get(
    session: Session, kind: str, owner: str, name: str, missing_ok: bool = False
) -> Repository | None:
    repo = session.scalars(
        select(Repository).where(
            Repository.kind == kind, Repository.owner == owner, Repository.name == name
        )
    ).first()
    if repo is None and not missing_ok:
        raise UnknownRepository(kind=kind, repo=f"{owner}/{name}")
    return repo


def require(session: Session, kind: str, owner: str, name: str) -> Repository:
    repo = get(session, kind, owner, name)
    assert repo is not None
    return repo


def visible(repo: Repository, person: Person | None) -> bool:
    """A private repository is seen by its member's people and the secretariat only."""
    if not repo.private:
        return True
    if person is None or not person.active:
        return False
    return person.role == "secretariat" or (
        person.member_id is not None and person.member_id == repo.member_id
    )


def seen(session: Session, kind: str, owner: str, name: str, person: Person | None) -> Repository:
    """`require` for readers: a private repository that `person` may not see is answered as
    one that does not exist (as the Hub does), with the very same error."""
    repo = require(session, kind, owner, name)
    if not visible(repo, person):
        raise UnknownRepository(kind=kind, repo=f"{owner}/{name}")
    return repo


def gate(card: dict[str, Any]) -> str:
    """ "auto", "manual", or "" for a repository anyone may read (`gated:` in the card)."""
    value = card.get("gated")
    if value is True or str(value).lower() == "auto":
        return "auto"
    return "manual" if str(value).lower() == "manual" else ""


def possess(session: Session, repo: Repository, sha256: str) -> None:
    """An upload for `repo` proved that its member has these bytes: recorded as a gated
    holding, so that its member's commit may name them (`may_name`) and no one else reads
    them through it before a revision does."""
    if session.get(Holding, (sha256, repo.id)) is None:
        session.add(Holding(sha256=sha256, repository_id=repo.id, open=False))
        session.flush()


def may_name(session: Session, member: Member, sha256: str) -> bool:
    """Whether a commit by `member` may name a blob by its hash without sending its bytes:
    one that no repository holds yet (a fresh upload), one a public repository publishes
    openly, or one held by a repository of `member`'s. Anything else would let whoever read
    a gated file's hash in the log copy it into a repository of their own and read it."""
    rows = session.execute(
        select(Holding, Repository)
        .join(Repository, Repository.id == Holding.repository_id)
        .where(Holding.sha256 == sha256)
    ).all()
    return not rows or any(
        repo.member_id == member.id or (holding.open and not repo.private) for holding, repo in rows
    )


def hold(session: Session, repo: Repository, revision: Revision) -> None:
    """Records that `repo` holds each blob of `revision`, and whether some revision holds it
    ungated: what lets a reader fetch bytes by hash (`access.may_read_blob`)."""
    opened = not gate(revision.card)
    shas = set(revision.files.values())
    if not shas:
        return
    held = {
        h.sha256: h
        for h in session.scalars(
            select(Holding).where(Holding.repository_id == repo.id, Holding.sha256.in_(shas))
        ).all()
    }
    for sha in sorted(shas):
        if sha not in held:
            session.add(Holding(sha256=sha, repository_id=repo.id, open=opened))
        elif opened and not held[sha].open:
            held[sha].open = True
    session.flush()


def exists(session: Session, reference: str, kind: str = "dataset") -> bool:
    owner, _sep, name = reference.partition("/")
    return get(session, kind, owner, name, missing_ok=True) is not None


def resolve(session: Session, repo: Repository, revision: str = "main") -> Revision:
    """A branch or tag name, or a full commit sha, to its revision."""
    ref = session.get(Ref, (repo.id, revision)) or session.get(Ref, (repo.id, TAG + revision))
    sha = ref.sha if ref is not None else revision
    row = session.get(Revision, sha) if SHA.match(sha) else None
    if row is None or row.repository_id != repo.id:
        raise UnknownRevision(repo=repo_id(repo), revision=revision)
    return row


def head(session: Session, repo: Repository, branch: str = "main") -> Revision | None:
    ref = session.get(Ref, (repo.id, branch))
    return session.get(Revision, ref.sha) if ref else None


def files(session: Session, revision: Revision) -> list[FileEntry]:
    blobs = {
        b.sha256: b
        for b in session.scalars(
            select(Blob).where(Blob.sha256.in_(list(set(revision.files.values()))))
        ).all()
    }
    return [FileEntry(path, blobs[sha]) for path, sha in sorted(revision.files.items())]


def file(session: Session, repo: Repository, revision: Revision, path: str) -> Blob:
    sha = revision.files.get(path)
    blob = session.get(Blob, sha) if sha else None
    if blob is None:
        raise UnknownFile(revision=revision.sha[:12], repo=repo_id(repo), path=path)
    return blob


def logged_roots(session: Session, revision: Revision) -> dict[str, str]:
    """path → BLAKE3 Merkle root of its chunk list, as the revision's log entry records them.

    Read from the log, not recomputed: what a pull checks its chunk list against must be what
    the log binds to the file's SHA-256. {} for a revision logged before roots were recorded,
    or not logged here at all (a mirrored one): its pulls fall back to the SHA-256."""
    if revision.log_index is None:
        return {}
    content = json.loads(entry(session, revision.log_index).body).get("content", {})
    roots = content.get("chunk_roots")
    return {str(p): str(r) for p, r in roots.items()} if isinstance(roots, dict) else {}


def chunk_roots(
    session: Session, tree: dict[str, str], previous: Revision | None
) -> dict[str, str]:
    """path → root of every file in `tree` (see `roots.py`). Files unchanged since `previous`
    keep the root its entry logged; the others are computed from their stored chunk lists."""
    known = logged_roots(session, previous) if previous is not None else {}
    roots: dict[str, str] = {}
    fresh: dict[str, list[str]] = {}
    for path, sha in tree.items():
        if previous is not None and previous.files.get(path) == sha and path in known:
            roots[path] = known[path]
        else:
            fresh.setdefault(sha, []).append(path)
    for blob in session.scalars(select(Blob).where(Blob.sha256.in_(list(fresh)))).all():
        root = chunk_root(blob.chunks)
        for path in fresh[blob.sha256]:
            roots[path] = root
    return {path: roots[path] for path in sorted(roots)}


def parse_card(text: str) -> dict[str, Any]:
    """The YAML metadata block at the top of a model card (README.md), or {}."""
    if not text.startswith("---"):
        return {}
    _start, _sep, rest = text.partition("---")
    block, sep, _body = rest.partition("\n---")
    if not sep:
        return {}
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        raise BadRepository(reason=N_("the model card's YAML metadata does not parse")) from exc
    return data if isinstance(data, dict) else {}


def commit(
    session: Session,
    repo: Repository,
    *,
    author: Member,
    store: ChunkStore,
    files_sha: dict[str, str],
    delete: list[str] | None = None,
    message: str = "",
    parent: str | None = None,
    provenance: dict[str, Any] | None = None,
    card_text: str | None = None,
    branch: str = "main",
    delete_folders: list[str] | None = None,
) -> Revision:
    """Creates a revision on `branch` (default `main`) from uploaded blobs. Logged.

    Every named blob passes the format gate again under the path it gets here: an upload was
    checked under the name it came with, and a blob stored before a rule tightened (or under
    a harmless name) must not become `pytorch_model.bin`."""
    if branch != "main" and session.get(Ref, (repo.id, branch)) is None:
        raise UnknownRevision(repo=repo_id(repo), revision=branch)
    previous = head(session, repo, branch)
    if parent is not None and previous is not None and parent != previous.sha:
        raise StaleParent(current=previous.sha[:12])
    tree: dict[str, str] = dict(previous.files) if previous else {}
    for path in delete or []:
        tree.pop(check_path(path), None)
    for folder in delete_folders or []:
        prefix = check_path(folder.rstrip("/")) + "/"
        for path in [p for p in tree if p.startswith(prefix)]:
            del tree[path]
    for path, sha in files_sha.items():
        path = check_path(path)
        blob = session.get(Blob, sha)
        if blob is None:
            raise UnknownBlob(sha256=sha)
        if tree.get(path) != sha and not may_name(session, author, sha):
            raise ContentNotYours(sha256=sha)
        with store.open(session, blob) as handle:
            check_stream(path, handle, blob.size)
        tree[path] = sha
    card: dict[str, Any] = {}
    if card_text is not None:
        card = parse_card(card_text)
    elif "README.md" in tree:
        card = (
            dict(previous.card)
            if previous and previous.files.get("README.md") == tree["README.md"]
            else {}
        )
    card_licence = str(card.get("license", repo.licence) or "")
    if not card_licence:
        raise MissingLicence(repo=repo_id(repo))
    licences.check(card_licence)
    if not repo.licence:
        repo.licence = card_licence  # created by a Hub client: the first card names it
    provenance = dict(provenance or (previous.provenance if previous else {}))
    context = {
        "card": {**card, "license": card_licence},
        "files": sorted(tree),
        "provenance": provenance,
        "repository": {"kind": repo.kind, "id": repo_id(repo)},
    }
    # Standards see models and datasets alike through the "model" subject (card and files).
    report = evaluate(session, "model", context)
    if report.blocking_failures:
        rules = "; ".join(
            f"{r.standard}/{r.rule}: {r.explanation}" for r in report.blocking_failures
        )
        raise StandardsRefused(rules=rules)
    now = utcnow()
    identity = canonical_json(
        {
            "parent": previous.sha if previous else "",
            "tree": tree,
            "message": message,
            "time": now.isoformat(),
            "repo": repo_id(repo),
        }
    )
    # SHA-1 names a revision as git names commits (40 hex, what the Hub client expects);
    # integrity rests on the files' SHA-256 and the log, not on this name.
    sha = hashlib.sha1(identity).hexdigest()  # noqa: S324
    revision = Revision(
        sha=sha,
        repository_id=repo.id,
        parent=previous.sha if previous else "",
        message=message,
        files=tree,
        card=card,
        provenance=provenance,
        conformance=report.to_json(),
        author_id=author.id,
        created_at=now,
    )
    session.add(revision)
    hold(session, repo, revision)
    ref = session.get(Ref, (repo.id, branch))
    if ref is None:
        session.add(Ref(repository_id=repo.id, name=branch, sha=sha))
    else:
        ref.sha = sha
    session.flush()
    roots = chunk_roots(session, tree, previous)
    entry = _record(
        session,
        repo,
        "commons.published",
        author.id,
        revision=sha,
        files={p: tree[p] for p in sorted(tree)},
        # Beside each SHA-256, the root of the file's chunk list: one signed entry binds the
        # two, so a pull that checks chunks by BLAKE3 against this root needs no SHA-256 pass
        # (docs/commons.md, "Verifying a pull").
        **({"chunk_roots": roots} if roots else {}),
        licence=card_licence,
        provenance=provenance,
        conformance=report.passed,
        mirrored_from=repo.mirrored_from,
        **({"branch": branch} if branch != "main" else {}),
    )
    revision.log_index = entry.index
    metrics.count("publication")
    return revision


def publish_model(
    session: Session,
    store: ChunkStore,
    member: Member,
    name: str,
    paths: dict[str, Path],
    *,
    licence: str,
    card_text: str,
    provenance: dict[str, Any],
    message: str = "",
) -> Revision:
    """What the federation calls to publish a trained model with its card and provenance."""
    repo = get(session, "model", member.slug, name, missing_ok=True) or create(
        session, member, kind="model", name=name, licence=licence
    )
    shas = {}
    for path, source in paths.items():
        check_path(path)
        check_content(path, source)
        shas[path] = store.ingest(session, source).sha256
        possess(session, repo, shas[path])
    return commit(
        session,
        repo,
        author=member,
        store=store,
        files_sha=shas,
        message=message,
        provenance=provenance,
        card_text=card_text,
    )


def list_repositories(
    session: Session,
    *,
    kind: str = "",
    query: str = "",
    licence: str = "",
    language: str = "",
    task: str = "",
    person: Person | None = None,
) -> list[tuple[Repository, Revision | None]]:
    """Repositories matching every criterion that `person` may see (private ones are listed
    only to their member's people and the secretariat)."""
    stmt = select(Repository).order_by(Repository.owner, Repository.name)
    if kind:
        stmt = stmt.where(Repository.kind == kind)
    out = []
    for repo in session.scalars(stmt).all():
        if not visible(repo, person):
            continue
        rev = head(session, repo)
        card = rev.card if rev else {}
        if query and query.lower() not in repo_id(repo).lower():
            continue
        if licence and str(card.get("license", repo.licence)) != licence:
            continue
        languages = card.get("language", [])
        languages = [languages] if isinstance(languages, str) else list(languages or [])
        if language and language not in languages:
            continue
        if task and card.get("pipeline_tag") != task:
            continue
        out.append((repo, rev))
    return out


def count_download(session: Session, repo: Repository, path: str, country: str | None) -> None:
    session.add(Download(repository_id=repo.id, path=path[:500], country=country, at=utcnow()))


def downloads_of(session: Session, repo: Repository, since: datetime | None = None) -> int:
    """Downloads counted for `repo`, all time or since a moment (the Hub shows 30 days)."""
    stmt = select(func.count()).select_from(Download).where(Download.repository_id == repo.id)
    if since is not None:
        stmt = stmt.where(Download.at >= since)
    return int(session.scalar(stmt) or 0)


def refs(session: Session, repo: Repository) -> tuple[list[Ref], list[Ref]]:
    """The repository's branches and its tags."""
    rows = session.scalars(select(Ref).where(Ref.repository_id == repo.id).order_by(Ref.name)).all()
    return [r for r in rows if not r.name.startswith(TAG)], [
        r for r in rows if r.name.startswith(TAG)
    ]


def create_ref(
    session: Session, repo: Repository, name: str, revision: Revision, *, tag: bool, by: Member
) -> Ref:
    """A new branch or tag at `revision`. Logged, as every move of what a name serves."""
    if not REF_NAME.match(name) or name.startswith(TAG) or ".." in name:
        raise BadRepository(reason=N_("branch and tag names use letters, digits, “.-_/”"))
    key = TAG + name if tag else name
    if session.get(Ref, (repo.id, name)) or session.get(Ref, (repo.id, TAG + name)):
        raise RefExists(repo=repo_id(repo), name=name)
    ref = Ref(repository_id=repo.id, name=key, sha=revision.sha)
    session.add(ref)
    session.flush()
    _record(session, repo, "commons.ref_created", by.id, ref=key, revision=revision.sha)
    return ref


def delete_ref(session: Session, repo: Repository, name: str, *, tag: bool, by: Member) -> None:
    key = TAG + name if tag else name
    ref = session.get(Ref, (repo.id, key))
    if ref is None or key == "main":
        raise UnknownRevision(repo=repo_id(repo), revision=name)
    session.delete(ref)
    _record(session, repo, "commons.ref_deleted", by.id, ref=key)


def history(session: Session, repo: Repository, revision: Revision) -> list[Revision]:
    """`revision` and its ancestors, newest first."""
    out = [revision]
    while out[-1].parent:
        parent = session.get(Revision, out[-1].parent)
        if parent is None:
            break
        out.append(parent)
    return out


def delete(session: Session, repo: Repository, *, by: Member) -> None:
    """Removes a repository and its names. Its log entries stay; its blobs go at the next sweep
    once nothing else refers to them."""
    for table in (AccessRequest, Holding, Like, Ref, Revision, Download):
        for row in session.scalars(select(table).where(table.repository_id == repo.id)).all():
            session.delete(row)
    session.flush()
    _record(session, repo, "commons.deleted", by.id)
    session.delete(repo)
    session.flush()
