"""HTTP API of governance: proposals, amendments, deliberation, ballots, decisions, charter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from concord.errors import N_, NotFound
from concord.governance import (
    ballots,
    charter,
    conversation,
    deliberation,
    proposals,
    proxies,
    standards,
    translations,
)
from concord.governance.models import (
    AmendmentCreate,
    AmendmentPublic,
    BallotOpen,
    BallotPublic,
    BallotsCreate,
    CharterUpdate,
    Consultation,
    DecisionPublic,
    EvaluateRequest,
    NoticePublic,
    ProposalCreate,
    ProposalPublic,
    ProxyCreate,
    ShownPublic,
    StatementCreate,
    StatementHide,
    StatementPublic,
    TranslationCreate,
    TranslationPublic,
    VoteCreate,
    Withdrawal,
)
from concord.governance.tables import Proposal, Translation
from concord.http import AppSettings, Db
from concord.members.auth import CurrentPerson
from concord.members.people import require_role
from concord.members.tables import Member
from concord.validation import Id

router = APIRouter(prefix="/api", tags=["governance"])


class NoDecision(NotFound):
    code = "decision.none"
    message = N_("Proposal {proposal} has no decision yet.")


def _slug(db: Db, member_id: int | None) -> str | None:
    if member_id is None:
        return None
    member = db.get(Member, member_id)
    return member.slug if member else None


@router.get("/proposals")
def list_proposals(db: Db, status: str = "", kind: str = "") -> list[ProposalPublic]:
    """Proposals, newest first, filtered by status or kind."""
    return [ProposalPublic.of(db, p) for p in proposals.listing(db, status=status, kind=kind)]


@router.post("/proposals", status_code=status.HTTP_201_CREATED)
def create_proposal(body: ProposalCreate, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Drafts a proposal sponsored by your member (delegates). Logged."""
    p = proposals.create(
        db,
        person,
        kind=body.kind,
        title=body.title,
        texts=body.texts,
        body=body.body,
        cosponsors=body.cosponsors,
        member=body.member,
        method=body.method,
    )
    db.commit()
    return ProposalPublic.of(db, p)


@router.get("/proposals/{ref}")
def get_proposal(ref: str, db: Db) -> ProposalPublic:
    """One proposal by reference or id."""
    return ProposalPublic.of(db, proposals.get(db, ref))


@router.post("/proposals/{ref}/deliberation")
def open_deliberation(ref: str, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Opens deliberation on a draft (sponsors). Logged."""
    p = proposals.open_deliberation(db, person, proposals.get(db, ref))
    db.commit()
    return ProposalPublic.of(db, p)


@router.post("/proposals/{ref}/ballot")
def open_ballot(ref: str, body: BallotOpen, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Ends deliberation and opens the ballot, optionally with a closing time (sponsors)."""
    p = proposals.open_ballot(db, person, proposals.get(db, ref), body.closes_at)
    db.commit()
    return ProposalPublic.of(db, p)


@router.post("/proposals/{ref}/withdraw")
def withdraw(ref: str, body: Withdrawal, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Withdraws a proposal before its decision (sponsors). Logged."""
    p = proposals.withdraw(db, person, proposals.get(db, ref), body.reason)
    db.commit()
    return ProposalPublic.of(db, p)


@router.post("/proposals/{ref}/consultation")
def consultation(ref: str, body: Consultation, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Opens or closes the public consultation (observers may deliberate). Sponsors."""
    p = proposals.set_consultation(db, person, proposals.get(db, ref), body.public)
    db.commit()
    return ProposalPublic.of(db, p)


@router.get("/proposals/{ref}/amendments")
def list_amendments(ref: str, db: Db) -> list[AmendmentPublic]:
    """The amendments proposed to a proposal, each with its line diff from the original."""
    p = proposals.get(db, ref)
    return [
        AmendmentPublic.of(a, _slug(db, a.member_id) or "", proposals.original(p, a.language))
        for a in proposals.amendments(db, p)
    ]


@router.post("/proposals/{ref}/amendments", status_code=status.HTTP_201_CREATED)
def propose_amendment(
    ref: str, body: AmendmentCreate, db: Db, person: CurrentPerson
) -> AmendmentPublic:
    """Proposes a new text in one language during deliberation (delegates). Logged."""
    a = proposals.propose_amendment(
        db, person, proposals.get(db, ref), body.language, body.text, body.reason
    )
    db.commit()
    return AmendmentPublic.of(a, _slug(db, a.member_id) or "")


def _decide(ref: str, amendment_id: int, db: Db, person: Any, accept: bool) -> AmendmentPublic:
    p = proposals.get(db, ref)
    a = proposals.decide_amendment(
        db, person, p, proposals.get_amendment(db, p, amendment_id), accept
    )
    db.commit()
    return AmendmentPublic.of(a, _slug(db, a.member_id) or "")


@router.post("/proposals/{ref}/amendments/{amendment_id}/accept")
def accept_amendment(ref: str, amendment_id: Id, db: Db, person: CurrentPerson) -> AmendmentPublic:
    """Accepts an amendment: its text replaces the proposal's in that language (sponsors)."""
    return _decide(ref, amendment_id, db, person, True)


@router.post("/proposals/{ref}/amendments/{amendment_id}/decline")
def decline_amendment(ref: str, amendment_id: Id, db: Db, person: CurrentPerson) -> AmendmentPublic:
    """Declines an amendment (sponsors). Logged."""
    return _decide(ref, amendment_id, db, person, False)


@router.post("/proposals/{ref}/amendments/{amendment_id}/ballot")
def amendment_to_ballot(
    ref: str, amendment_id: Id, db: Db, person: CurrentPerson
) -> AmendmentPublic:
    """Puts an amendment to a ballot of its own instead of deciding it (sponsors). Logged."""
    p = proposals.get(db, ref)
    a = proposals.put_amendment_to_ballot(
        db, person, p, proposals.get_amendment(db, p, amendment_id)
    )
    db.commit()
    return AmendmentPublic.of(a, _slug(db, a.member_id) or "")


@router.post(
    "/proposals/{ref}/amendments/{amendment_id}/ballots", status_code=status.HTTP_201_CREATED
)
def cast_amendment_ballots(
    ref: str, amendment_id: Id, body: BallotsCreate, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    """Casts your member's signed ballot on an amendment; the payload names `REF/A<id>`."""
    p = proposals.get(db, ref)
    a = proposals.get_amendment(db, p, amendment_id)
    rows = ballots.cast(db, person, p, [b.model_dump() for b in body.ballots], amendment=a)
    db.commit()
    return {"amendment": a.id, "log_indices": [r.log_index for r in rows]}


@router.post("/proposals/{ref}/amendments/{amendment_id}/close")
def close_amendment(ref: str, amendment_id: Id, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Closes an amendment's ballot under the rule of the proposal's kind (sponsors,
    secretariat); adopted amendments replace the text in their language."""
    p = proposals.get(db, ref)
    a = ballots.close_amendment(db, person, p, proposals.get_amendment(db, p, amendment_id))
    db.commit()
    return {"amendment": a.id, "status": a.status, "arithmetic": a.arithmetic}


@router.get("/proposals/{ref}/statements")
def list_statements(ref: str, db: Db) -> list[StatementPublic]:
    """The statements of the deliberation, with their authors' members in the same query."""
    p = proposals.get(db, ref)
    return [StatementPublic.of(s, slug) for s, slug in deliberation.statements_by(db, p)]


@router.post("/proposals/{ref}/statements", status_code=status.HTTP_201_CREATED)
def add_statement(
    ref: str, body: StatementCreate, db: Db, person: CurrentPerson
) -> StatementPublic:
    """Adds a statement (delegates; observers during a public consultation). Logged."""
    s = deliberation.add_statement(db, person, proposals.get(db, ref), body.text, body.language)
    db.commit()
    return StatementPublic.of(s, _slug(db, s.member_id))


@router.post("/proposals/{ref}/statements/{statement_id}/votes")
def vote_statement(
    ref: str, statement_id: Id, body: VoteCreate, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    """Agrees, disagrees or passes on a statement; the latest vote counts."""
    row = deliberation.vote(db, person, proposals.get(db, ref), statement_id, body.vote)
    db.commit()
    return {"statement": row.statement_id, "vote": body.vote}


@router.get("/proposals/{ref}/map")
def opinion_map(ref: str, db: Db, response: Response) -> dict[str, Any]:
    """The opinion map: participants' positions, groups, representative and consensus
    statements. Recomputed when statements change, and when votes change at most every
    `max_age_s` seconds (5): `computed_at` says when it was computed, and the `Age` header
    how many seconds ago."""
    result = deliberation.opinion_map(db, proposals.get(db, ref))
    db.commit()
    # `Age` (RFC 9111), not `Cache-Control: max-age`: the hub's own cache served the map, but a
    # new or hidden statement replaces it at once, so no cache downstream may keep it.
    response.headers["Age"] = str(int(deliberation.map_age_s(result)))
    return result


@router.get("/proposals/{ref}/ballots")
def list_ballots(ref: str, db: Db) -> list[BallotPublic]:
    """Every member's current ballot with its signature, for anyone to verify."""
    p = proposals.get(db, ref)
    return [BallotPublic.of(b, m.slug) for b, m in ballots.ballots(db, p)]


@router.post("/proposals/{ref}/ballots", status_code=status.HTTP_201_CREATED)
def cast_ballots(
    ref: str, body: BallotsCreate, db: Db, person: CurrentPerson
) -> list[BallotPublic]:
    """Casts your member's signed ballot (the last one before close counts). Logged."""
    p = proposals.get(db, ref)
    rows = ballots.cast(db, person, p, [b.model_dump() for b in body.ballots])
    db.commit()
    return [BallotPublic.of(b, _slug(db, b.member_id) or "") for b in rows]


@router.post("/proposals/{ref}/close")
def close_ballot(ref: str, db: Db, person: CurrentPerson) -> DecisionPublic:
    """Closes the ballot and records the decision with its arithmetic (sponsors, secretariat)."""
    d = ballots.close(db, person, proposals.get(db, ref))
    db.commit()
    return DecisionPublic.of(d)


@router.get("/proposals/{ref}/decision")
def get_decision(ref: str, db: Db) -> DecisionPublic:
    """The decision with its full arithmetic."""
    p = proposals.get(db, ref)
    d = ballots.decision_of(db, p)
    if d is None:
        raise NoDecision(proposal=p.reference)
    return DecisionPublic.of(d)


@router.get("/proposals/{ref}/ranked")
def ranked_options(ref: str, db: Db) -> list[dict[str, Any]]:
    """The options in the order a decision method decided them (elected, winner, or ranked by
    score or marks, meeting the bloc condition); empty before the decision."""
    return ballots.ranked_options(db, proposals.get(db, ref))


@router.get("/proxies")
def list_proxies(db: Db) -> list[dict[str, Any]]:
    """Every proxy with its signature, newest first."""
    return [proxies.public(db, p) for p in proxies.every(db)]


@router.post("/proxies", status_code=status.HTTP_201_CREATED)
def grant_proxy(body: ProxyCreate, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Records a proxy signed with your member's key (delegates). Logged."""
    row = proxies.grant(db, person, body.model_dump())
    db.commit()
    return proxies.public(db, row)


@router.post("/proxies/{proxy_id}/revoke")
def revoke_proxy(proxy_id: Id, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Revokes your member's proxy until its ballot closes (delegates). Logged."""
    row = proxies.revoke(db, person, proxy_id)
    db.commit()
    return proxies.public(db, row)


@router.get("/governance/recount")
def recount(db: Db) -> list[dict[str, Any]]:
    """Every decision recounted from the transparency log alone."""
    return ballots.recount_log(db)


@router.get("/charter")
def get_charter(db: Db) -> dict[str, Any]:
    """The charter in force: its TOML text, rules and the rule of each kind."""
    c = charter.current(db)
    return {
        "version": c.version,
        "text": c.text,
        "kinds": c.kinds,
        "rules": {n: r.describe() for n, r in c.rules.items()},
    }


@router.get("/charter/versions")
def charter_versions(db: Db) -> list[dict[str, Any]]:
    """Every stored version of the charter."""
    return [
        {
            "version": v.version,
            "note": v.note,
            "created_at": v.created_at.isoformat(),
            "log_index": v.log_index,
            "text": v.text,
        }
        for v in charter.versions(db)
    ]


@router.put("/charter")
def update_charter(body: CharterUpdate, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Stores a new version of the charter (secretariat). Logged."""
    require_role(person, "secretariat")
    row = charter.update(db, body.text, person, body.note)
    db.commit()
    return {"version": row.version, "log_index": row.log_index}


@router.post("/standards/evaluate")
def evaluate(body: EvaluateRequest, db: Db) -> dict[str, Any]:
    """Checks a context (a model card's `card.*` or a job's `job.*`) against every adopted
    standard."""
    return standards.evaluate(db, body.subject, body.context).to_json()


# Members' words in six languages, moderation and the Polis-shaped export.


@router.get("/proposals/{ref}/translations")
def list_translations(ref: str, db: Db) -> list[TranslationPublic]:
    """Every translation of the proposal's text (statement null) and of its statements, with
    who made it ("person" with the translator's name, or "machine")."""
    p = proposals.get(db, ref)
    return [_translation(db, t) for t in translations.listing(db, p)]


@router.post("/proposals/{ref}/translations", status_code=status.HTTP_201_CREATED)
def add_translation(
    ref: str, body: TranslationCreate, db: Db, person: CurrentPerson
) -> TranslationPublic:
    """Translates the proposal's text or a statement into one of the six languages (delegates,
    translators); replaces the earlier translation into that language. Logged."""
    p = proposals.get(db, ref)
    s = deliberation.get_statement(db, p, body.statement) if body.statement is not None else None
    t = translations.contribute(db, person, p, s, body.language, body.text)
    db.commit()
    return _translation(db, t)


@router.post("/proposals/{ref}/translations/machine")
def machine_translations(
    ref: str, db: Db, person: CurrentPerson, settings: AppSettings
) -> list[TranslationPublic]:
    """Fills every language nobody has translated yet with the configured machine-translation
    service (CONCORD_TRANSLATE_URL); labelled "machine". Logged."""
    made = translations.fill(db, person, proposals.get(db, ref), translations.configured(settings))
    db.commit()
    return [_translation(db, t) for t in made]


@router.get("/proposals/{ref}/words")
def words(ref: str, db: Db, lang: str = "en") -> list[ShownPublic]:
    """The proposal's text (statement null) and every statement as a reader in `lang` sees
    them: the original, a person's translation or a machine translation, and which."""
    p = proposals.get(db, ref)
    translations.check_language(lang)
    items = deliberation.statements(db, p)
    shown = translations.shown(db, p, items, lang)
    hidden = {s.id: s for s in items if s.hidden_at is not None}
    out = []
    for key, w in shown.items():
        h = hidden.get(key) if key is not None else None
        out.append(
            ShownPublic(
                statement=key,
                text="" if h else w.text,
                language=w.language,
                origin=w.origin,
                translator=w.by,
                original_language=w.original_language,
                hidden=h is not None,
                hidden_reason=h.hidden_reason if h else "",
            )
        )
    return out


@router.post("/proposals/{ref}/statements/{statement_id}/hide")
def hide_statement(
    ref: str, statement_id: Id, body: StatementHide, db: Db, person: CurrentPerson
) -> StatementPublic:
    """Hides a statement with a reason (secretariat): it leaves the opinion map with its votes
    and readers see the reason. Logged; its author sees it in their notices."""
    s = deliberation.hide(db, person, proposals.get(db, ref), statement_id, body.reason)
    db.commit()
    return StatementPublic.of(s, _slug(db, s.member_id))


@router.get("/notices")
def my_notices(db: Db, person: CurrentPerson) -> list[NoticePublic]:
    """What you are told: your statements that the secretariat hid, and why."""
    out = []
    for s in deliberation.notices(db, person):
        p = db.get(Proposal, s.proposal_id)
        assert s.hidden_at is not None and p is not None
        out.append(
            NoticePublic(
                proposal=p.reference,
                statement=s.id,
                text=s.text,
                reason=s.hidden_reason,
                hidden_at=s.hidden_at,
            )
        )
    return out


@router.get("/proposals/{ref}/export/conversation.json")
def export_json(ref: str, db: Db) -> dict[str, Any]:
    """The deliberation in the Polis export's shape, as JSON: comments, votes, participants."""
    result = conversation.export_json(db, proposals.get(db, ref))
    db.commit()  # the opinion map's cache
    return result


# Listed in the schema (not enforced: an unknown name keeps its coded 404), so that the schema
# does not also promise a CSV for `conversation.json`, which the route above answers.
ExportName = Annotated[str, Path(json_schema_extra={"enum": list(conversation.FILES)})]


@router.get("/proposals/{ref}/export/{name}")
def export_csv(ref: str, name: ExportName, db: Db) -> Response:
    """comments.csv, votes.csv or participants-votes.csv, with Polis' columns."""
    text = conversation.export_file(db, proposals.get(db, ref), name)
    db.commit()
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{ref}-{name}"'},
    )


def _translation(db: Db, t: Translation) -> TranslationPublic:
    return TranslationPublic(
        statement=t.statement_id,
        language=t.language,
        text=t.text,
        origin=t.origin,
        translator=translations.who(db, t.person_id) if t.origin == "person" else "",
        created_at=t.created_at,
        log_index=t.log_index,
    )
