"""Proposals and amendments: from draft through deliberation and ballot to a decision.

    draft ──open──▶ deliberation ──ballot──▶ ballot ──close──▶ adopted | rejected
      └──────────────┴───────────────────────┴──withdraw──▶ withdrawn

Only the sponsors (the sponsor and co-sponsors, through their delegates) move a proposal on;
the secretariat may also close a ballot. Every change of state is logged.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Forbidden, Invalid, NotFound
from concord.governance import decision_method, redlines, standards
from concord.governance.jobspec import JobSpec
from concord.governance.tables import Amendment, Proposal
from concord.i18n import LANGUAGES
from concord.ledger.log import append
from concord.ledger.tables import LogEntry
from concord.members import blocs as member_blocs
from concord.members.directory import get_member, require_active
from concord.members.people import acting_member
from concord.members.tables import Member, Person

KINDS = ("standard", "project", "resolution")
PREFIX = {"standard": "CS", "project": "CP", "resolution": "CR"}
FINAL = ("adopted", "rejected", "withdrawn")
MAX_TEXT = 20_000
REFERENCE = re.compile(r"^C[SPR]-\d{4}-\d+$")


class ProposalNotFound(NotFound):
    code = "proposal.unknown"
    message = N_("There is no proposal “{proposal}”.")


class BadProposal(Invalid):
    code = "proposal.invalid"
    message = N_("The proposal is not valid: {reason}")


class BadJobSpec(Invalid):
    code = "proposal.job_spec"
    message = N_("The job spec is not valid: {reason}")


class NonConformingJob(Invalid):
    code = "proposal.job_nonconforming"
    message = N_("The job spec breaks adopted standards: {rules}")


class WrongPhase(Conflict):
    code = "proposal.wrong_phase"
    message = N_("Proposal {proposal} is in the “{status}” phase; this needs “{needed}”.")


class NotSponsor(Forbidden):
    code = "proposal.not_sponsor"
    message = N_("Only the sponsors of {proposal} may do this.")


class AmendmentNotFound(NotFound):
    code = "amendment.unknown"
    message = N_("There is no amendment {amendment} to {proposal}.")


class AmendmentDecided(Conflict):
    code = "amendment.decided"
    message = N_("Amendment {amendment} has been decided already.")


class AmendmentOutOfOrder(Conflict):
    code = "amendment.out_of_order"
    message = N_(
        "Amendments are decided furthest from the original first: decide amendment {first} "
        "(it changes {size} lines) before amendment {amendment}."
    )


class AmendmentConflict(Conflict):
    code = "amendment.conflict"
    message = N_(
        "Amendment {amendment} changes lines {first}–{last} of the original, which amendment "
        "{earlier}, adopted before it, changed too: it cannot be applied."
    )


def get(session: Session, ref: str | int) -> Proposal:
    """A proposal by reference (CS-2026-1) or id."""
    proposal: Proposal | None
    if isinstance(ref, int) or ref.isdigit():
        proposal = session.get(Proposal, int(ref))
    else:
        proposal = session.scalars(
            select(Proposal).where(Proposal.reference == ref.upper())
        ).first()
    if proposal is None:
        raise ProposalNotFound(proposal=str(ref))
    return proposal


def listing(session: Session, status: str = "", kind: str = "") -> list[Proposal]:
    query = select(Proposal).order_by(Proposal.id.desc())
    if status:
        query = query.where(Proposal.status == status)
    if kind:
        query = query.where(Proposal.kind == kind)
    return list(session.scalars(query).all())


def _reference(session: Session, kind: str, now: datetime) -> str:
    prefix = f"{PREFIX[kind]}-{now.year}-"
    used = session.scalar(
        select(func.count()).select_from(Proposal).where(Proposal.reference.like(prefix + "%"))
    )
    return f"{prefix}{(used or 0) + 1}"


def _check_texts(texts: dict[str, str]) -> dict[str, str]:
    if not texts:
        raise BadProposal(reason=N_("give the text in at least one language"))
    clean: dict[str, str] = {}
    for language, text in texts.items():
        if language not in LANGUAGES:
            raise BadProposal(reason=N_("languages are: ") + ", ".join(LANGUAGES))
        if not text.strip() or len(text) > MAX_TEXT:
            raise BadProposal(reason=N_("each text has 1 to 20,000 characters"))
        clean[language] = text.strip()
    return clean


def eligible_members(session: Session, spec: JobSpec) -> set[int]:
    """The active members a job spec lets take part."""
    ids: set[int] = set()
    for ref in spec.participants.members:
        member = get_member(session, ref)
        if member.status == "active":
            ids.add(member.id)
    for bloc in spec.participants.blocs:
        member_blocs.require_bloc(session, bloc)
        ids |= member_blocs.bloc_member_ids(session, bloc)
    return ids


def check_job(session: Session, body: dict[str, Any]) -> JobSpec:
    """Parses and checks a project's job spec: members and blocs exist, enough can take part,
    and it conforms to every blocking adopted standard for jobs."""
    try:
        spec = JobSpec.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadJobSpec(reason=f"{where}: {first['msg']}") from exc
    eligible = eligible_members(session, spec)
    if spec.min_participants > len(eligible):
        raise BadJobSpec(
            reason=f"min_participants is {spec.min_participants} but only {len(eligible)} "
            "active members are eligible"
        )
    report = standards.evaluate(session, "job", spec.context())
    if report.blocking_failures:
        raise NonConformingJob(
            rules="; ".join(
                f"{r.standard}/{r.rule}: {r.explanation}" for r in report.blocking_failures
            )
        )
    return spec


def check_body(session: Session, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    if kind == "project":
        return check_job(session, body).model_dump(mode="json")
    if kind == "standard":
        try:
            spec = standards.StandardSpec.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BadProposal(reason=f"{where}: {first['msg']}") from exc
        standards.validate_spec(spec)
        return spec.model_dump(mode="json")
    if body:
        raise BadProposal(reason=N_("a resolution carries no body"))
    return {}


def _log(
    session: Session, proposal: Proposal, act: str, member: Member | None, **extra: Any
) -> LogEntry:
    return append(
        session,
        f"governance.{act}",
        {"proposal": proposal.reference, "status": proposal.status, **extra},
        member_id=member.id if member else None,
    )


def create(
    session: Session,
    person: Person,
    *,
    kind: str,
    title: str,
    texts: dict[str, str],
    body: dict[str, Any] | None = None,
    cosponsors: list[str] | None = None,
    member: str | None = None,
    method: dict[str, Any] | None = None,
) -> Proposal:
    """A new draft, sponsored by the delegate's member. Logged. A resolution may name another
    decision `method` than the charter rule (see `decision_method`)."""
    sponsor = acting_member(session, person, member)
    if kind not in KINDS:
        raise BadProposal(reason=N_("the kind is standard, project or resolution"))
    if not title.strip() or len(title) > 300:
        raise BadProposal(reason=N_("the title has 1 to 300 characters"))
    clean = _check_texts(texts)
    co_ids: list[int] = []
    for ref in cosponsors or []:
        co = get_member(session, ref)
        require_active(co)
        if co.id != sponsor.id and co.id not in co_ids:
            co_ids.append(co.id)
    checked = check_body(session, kind, body or {})
    spec = check_method(session, kind, method) if method else None
    now = utcnow()
    proposal = Proposal(
        reference=_reference(session, kind, now),
        kind=kind,
        title=title.strip(),
        texts=clean,
        sponsor_id=sponsor.id,
        cosponsor_ids=co_ids,
        author_person_id=person.id,
        status="draft",
        body=checked,
        method=spec,
        original_texts=clean,
        public_consultation=False,
        created_at=now,
        votes_version=0,
        map_version=-1,
    )
    session.add(proposal)
    session.flush()
    _log(
        session,
        proposal,
        "proposal",
        sponsor,
        kind=kind,
        title=proposal.title,
        texts=clean,
        body=checked,
        sponsor=sponsor.slug,
        cosponsors=[session.get(Member, i).slug for i in co_ids],  # type: ignore[union-attr]
        **({"method": spec} if spec else {}),
    )
    return proposal


def check_method(session: Session, kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The checked decision method of a new proposal: resolutions only (projects and standards
    take effect on adoption, under the charter rule); every bloc it names exists."""
    if kind != "resolution":
        raise decision_method.BadMethod(reason=decision_method.ONLY_RESOLUTIONS)
    spec = decision_method.parse(raw)
    for bloc in spec.get("condition", {}).get("blocs", []):
        member_blocs.require_bloc(session, bloc)
    return spec


def sponsors(proposal: Proposal) -> set[int]:
    return {proposal.sponsor_id, *proposal.cosponsor_ids}


def require_sponsor(session: Session, person: Person, proposal: Proposal) -> Member:
    member = acting_member(session, person)
    if member.id not in sponsors(proposal):
        raise NotSponsor(proposal=proposal.reference)
    return member


def _phase(proposal: Proposal, *needed: str) -> None:
    if proposal.status not in needed:
        raise WrongPhase(
            proposal=proposal.reference, status=proposal.status, needed="|".join(needed)
        )


def open_deliberation(session: Session, person: Person, proposal: Proposal) -> Proposal:
    member = require_sponsor(session, person, proposal)
    _phase(proposal, "draft")
    proposal.status = "deliberation"
    proposal.deliberation_at = utcnow()
    _log(session, proposal, "phase", member)
    return proposal


def open_ballot(
    session: Session, person: Person, proposal: Proposal, closes_at: datetime | None = None
) -> Proposal:
    member = require_sponsor(session, person, proposal)
    _phase(proposal, "deliberation")
    now = utcnow()
    if closes_at is not None and closes_at <= now:
        raise BadProposal(reason=N_("the ballot must close in the future"))
    pending = [a for a in amendments(session, proposal) if a.status in ("proposed", "ballot")]
    if pending:
        raise BadProposal(reason=N_("decide every pending amendment before the ballot"))
    proposal.status = "ballot"
    proposal.closes_at = closes_at
    entry = _log(
        session, proposal, "phase", member, closes_at=closes_at.isoformat() if closes_at else None
    )
    # The ballot's window opens at its log entry's time: what a recount from the log reads.
    proposal.ballot_at = entry.created_at
    return proposal


def withdraw(session: Session, person: Person, proposal: Proposal, reason: str = "") -> Proposal:
    member = require_sponsor(session, person, proposal)
    _phase(proposal, "draft", "deliberation", "ballot")
    proposal.status = "withdrawn"
    proposal.closed_at = utcnow()
    _log(session, proposal, "phase", member, reason=reason[:2000])
    return proposal


def set_consultation(
    session: Session, person: Person, proposal: Proposal, public: bool
) -> Proposal:
    """The sponsor opens (or closes) the deliberation to signed-in observers. Logged."""
    member = require_sponsor(session, person, proposal)
    _phase(proposal, "draft", "deliberation")
    proposal.public_consultation = public
    _log(session, proposal, "consultation", member, public=public)
    return proposal


def amendments(session: Session, proposal: Proposal) -> list[Amendment]:
    return list(
        session.scalars(
            select(Amendment).where(Amendment.proposal_id == proposal.id).order_by(Amendment.id)
        ).all()
    )


def propose_amendment(
    session: Session, person: Person, proposal: Proposal, language: str, text: str, reason: str = ""
) -> Amendment:
    """Any member's delegate proposes a new text (in one language) during deliberation."""
    member = acting_member(session, person)
    _phase(proposal, "deliberation")
    _check_texts({language: text})
    if proposal.original_texts is None:  # proposed before originals were kept
        proposal.original_texts = dict(proposal.texts)
    amendment = Amendment(
        proposal_id=proposal.id,
        member_id=member.id,
        language=language,
        text=text.strip(),
        reason=reason.strip()[:2000],
        status="proposed",
        created_at=utcnow(),
    )
    session.add(amendment)
    session.flush()
    _log(
        session,
        proposal,
        "amendment",
        member,
        amendment=amendment.id,
        language=language,
        text=amendment.text,
        reason=amendment.reason,
    )
    return amendment


def get_amendment(session: Session, proposal: Proposal, amendment_id: int) -> Amendment:
    amendment = session.get(Amendment, amendment_id)
    if amendment is None or amendment.proposal_id != proposal.id:
        raise AmendmentNotFound(amendment=amendment_id, proposal=proposal.reference)
    return amendment


def original(proposal: Proposal, language: str) -> str:
    """The text as proposed in `language` ("" for a language the proposal lacked)."""
    return str((proposal.original_texts or proposal.texts).get(language, ""))


def distance(proposal: Proposal, amendment: Amendment) -> int:
    return redlines.distance(original(proposal, amendment.language), amendment.text)


def _adopted(session: Session, proposal: Proposal, language: str) -> list[Amendment]:
    """The amendments adopted so far in `language`, in the order they were adopted."""
    done = [
        a
        for a in amendments(session, proposal)
        if a.language == language and a.status in ("accepted", "adopted")
    ]
    return sorted(done, key=lambda a: (a.decided_at or a.created_at, a.id))


def require_in_order(session: Session, proposal: Proposal, amendment: Amendment) -> None:
    """Refuses to decide `amendment` while one further from the original is pending."""
    pending = [
        a
        for a in amendments(session, proposal)
        if a.language == amendment.language and a.status in ("proposed", "ballot")
    ]
    first = min(pending, key=lambda a: (-distance(proposal, a), a.id), default=amendment)
    if first.id != amendment.id:
        raise AmendmentOutOfOrder(
            first=first.id, size=distance(proposal, first), amendment=amendment.id
        )


def merged(session: Session, proposal: Proposal, amendment: Amendment) -> str:
    """The text in the amendment's language once it is adopted too, or `AmendmentConflict`."""
    earlier = _adopted(session, proposal, amendment.language)
    base = original(proposal, amendment.language)
    texts = [a.text for a in earlier if a.id != amendment.id] + [amendment.text]
    clash = redlines.conflict(base, texts)
    if clash is not None:
        raise AmendmentConflict(
            amendment=amendment.id,
            earlier=earlier[clash.earlier].id,
            first=clash.first_line,
            last=clash.last_line,
        )
    return redlines.merge(base, texts)


def adopt_text(session: Session, proposal: Proposal, amendment: Amendment) -> None:
    """The adopted amendment's change applied to the proposal's text (three-way)."""
    proposal.texts = {**proposal.texts, amendment.language: merged(session, proposal, amendment)}


def decide_amendment(
    session: Session, person: Person, proposal: Proposal, amendment: Amendment, accept: bool
) -> Amendment:
    """The sponsors accept an amendment (its change is applied to the text as in `redlines`)
    or decline it; furthest from the original first."""
    member = require_sponsor(session, person, proposal)
    _phase(proposal, "deliberation")
    if amendment.status != "proposed":
        raise AmendmentDecided(amendment=amendment.id)
    require_in_order(session, proposal, amendment)
    if accept:
        text = merged(session, proposal, amendment)  # refuses a conflicting amendment
        proposal.texts = {**proposal.texts, amendment.language: text}
    amendment.status = "accepted" if accept else "declined"
    amendment.decided_at = utcnow()
    _log(
        session,
        proposal,
        "amendment_decided",
        member,
        amendment=amendment.id,
        decision=amendment.status,
    )
    return amendment


def put_amendment_to_ballot(
    session: Session, person: Person, proposal: Proposal, amendment: Amendment
) -> Amendment:
    """The sponsors put an amendment to a ballot of its own instead of deciding it."""
    member = require_sponsor(session, person, proposal)
    _phase(proposal, "deliberation")
    if amendment.status != "proposed":
        raise AmendmentDecided(amendment=amendment.id)
    require_in_order(session, proposal, amendment)
    merged(session, proposal, amendment)  # a conflicting amendment is refused now, not later
    amendment.status = "ballot"
    entry = _log(session, proposal, "amendment_ballot", member, amendment=amendment.id)
    amendment.ballot_at = entry.created_at  # the window opens at the log entry's time
    return amendment
