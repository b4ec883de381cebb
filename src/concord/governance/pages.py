"""Pages of governance: proposals, a proposal with its opinion map, the ballot, the result.

Ballots from the page: the page cannot hold the member's private key, and we do not ask the
delegate to hand it to the browser. The page shows the exact canonical payload to sign and a
one-line `openssl` command (or `concord ballot`) that signs it on the delegate's machine; the
delegate pastes the base64 signature back. No JavaScript is needed. A proxy for the proposal is
given the same way (`concord proxy grant`), and revoked with one button until the ballot closes.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from concord.errors import N_, ConcordError
from concord.governance import (
    ballots,
    charter,
    decision_method,
    deliberation,
    methods,
    proposals,
    proxies,
    redlines,
    translations,
)
from concord.governance.ballots import BallotMalformed
from concord.http import AppSettings, Db
from concord.i18n import LANGUAGES, current_language
from concord.members.auth import CsrfChecked, PagePerson
from concord.members.directory import get_member
from concord.members.tables import Member, Person
from concord.members.tokens import BadToken
from concord.validation import Id
from concord.web.render import render

router = APIRouter(include_in_schema=False)
NAV = [("/proposals", N_("Proposals"))]
# Words the templates translate with `_(value)`: phases, kinds, choices, amendment states.
LABELS = (
    N_("draft"),
    N_("deliberation"),
    N_("ballot"),
    N_("adopted"),
    N_("rejected"),
    N_("withdrawn"),
    N_("standard"),
    N_("project"),
    N_("resolution"),
    N_("yes"),
    N_("no"),
    N_("abstain"),
    N_("objection"),
    N_("proposed"),
    N_("accepted"),
    N_("declined"),
)

COLOURS = ("#1b6ca8", "#d1495b", "#2e8b57", "#edae49", "#6a4c93")
WIDTH, HEIGHT, PAD = 420, 300, 16


def _signed_in(person: Person | None) -> Person:
    if person is None:
        raise BadToken()
    return person


def scatter(opinion: dict[str, Any]) -> dict[str, Any]:
    """Points scaled into the SVG's box, with each group's centre for its label."""
    points = opinion.get("points", [])
    if not points:
        return {"points": [], "centres": [], "width": WIDTH, "height": HEIGHT}
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    span_x = max(xs) - min(xs)
    span_y = max(ys) - min(ys)

    def sx(x: float) -> float:  # a flat axis is drawn through the middle
        share = (x - min(xs)) / span_x if span_x > 1e-9 else 0.5
        return round(PAD + share * (WIDTH - 2 * PAD), 1)

    def sy(y: float) -> float:
        share = (y - min(ys)) / span_y if span_y > 1e-9 else 0.5
        return round(HEIGHT - PAD - share * (HEIGHT - 2 * PAD), 1)

    out = [
        {
            "x": sx(x),
            "y": sy(y),
            "group": g,
            "label": label,
            "colour": COLOURS[g % len(COLOURS)] if g >= 0 else "#999",
        }
        for x, y, g, label in points
    ]
    centres = []
    for g in range(opinion.get("k", 0)):
        mine = [p for p in out if p["group"] == g]
        if mine:
            centres.append(
                {
                    "x": round(sum(p["x"] for p in mine) / len(mine), 1),
                    "y": round(sum(p["y"] for p in mine) / len(mine), 1),
                    "name": chr(ord("A") + g),
                    "colour": COLOURS[g % len(COLOURS)],
                }
            )
    return {"points": out, "centres": centres, "width": WIDTH, "height": HEIGHT}


@router.get("/proposals", response_class=HTMLResponse)
def proposal_list(request: Request, db: Db, status: str = "") -> HTMLResponse:
    rows = proposals.listing(db, status=status)
    sponsors = {m.id: m.slug for m in db.query(Member).all()}
    return render(
        request, "governance/list.html", {"rows": rows, "sponsors": sponsors, "status": status}
    )


def _member_of(db: Db, person: Person | None) -> Member | None:
    if person is None or person.member_id is None:
        return None
    return db.get(Member, person.member_id)


@router.get("/proposals/{ref}", response_class=HTMLResponse)
def proposal_page(
    request: Request,
    ref: str,
    db: Db,
    person: PagePerson,
    settings: AppSettings,
    choice: str = "",
    reason: str = "",
    vote: str = "",
    holder: str = "",
) -> HTMLResponse:
    p = proposals.get(db, ref)
    opinion = deliberation.opinion_map(db, p)
    db.commit()
    member = _member_of(db, person)
    to_sign = None
    if choice and member is not None and ballots.is_open(p):
        shaped = _method_vote(p, member.slug, choice, vote, reason)
        if shaped is None and choice not in ballots.CHOICES:
            raise BallotMalformed(reason=N_("the choice is yes, no, abstain or objection"))
        payload = ballots.make_payload(p.reference, member.slug, choice, reason, vote=shaped)
        text = ballots.message(payload).decode()
        to_sign = {
            "payload": json.dumps(payload, ensure_ascii=False),
            "text": text,
            "command": "printf '%s' '" + text.replace("'", "'\\''") + "' | openssl pkeyutl "
            f"-sign -rawin -inkey ~/.concord/keys/{member.slug}.pem -in /dev/stdin | base64 -w0",
            "cli": f"concord ballot {p.reference} {choice}"
            + (f" --vote '{json.dumps(shaped, ensure_ascii=False)}'" if shaped is not None else ""),
        }
    proxy_open = member is not None and p.status not in proposals.FINAL
    proxy_to_sign = _proxy_to_sign(db, p.reference, member, holder) if proxy_open else None
    mine = {}
    if person is not None:
        from sqlalchemy import select

        from concord.governance.tables import StatementVote

        mine = {
            v.statement_id: v.vote
            for v in db.scalars(
                select(StatementVote).where(
                    StatementVote.proposal_id == p.id, StatementVote.person_id == person.id
                )
            )
        }
    slugs = {m.id: m.slug for m in db.query(Member).all()}
    items = deliberation.statements(db, p)
    role = person.role if person is not None else ""
    return render(
        request,
        "governance/proposal.html",
        {
            "p": p,
            "sponsor": slugs.get(p.sponsor_id, ""),
            "cosponsors": [slugs.get(i, "") for i in p.cosponsor_ids],
            "opinion": opinion,
            "svg": scatter(opinion),
            "statements": items,
            "shown": translations.shown(db, p, items, current_language.get()),
            "languages": LANGUAGES,
            "can_translate": role in ("delegate", "translator"),
            "can_fill": role in ("secretariat", "delegate", "translator")
            and bool(settings.translate_url),
            "can_moderate": role == "secretariat",
            "notices": [
                s
                for s in items
                if s.hidden_at is not None and person is not None and s.person_id == person.id
            ],
            "mine": mine,
            "amendments": _tracked(p, proposals.amendments(db, p)),
            "method_label": methods.LABELS.get(p.method["name"], "") if p.method else "",
            "slugs": slugs,
            "member": member,
            "can_deliberate": person is not None
            and p.status in ("deliberation", "ballot")
            and (
                person.role == "delegate" or (person.role == "observer" and p.public_consultation)
            ),
            "ballot_open": ballots.is_open(p),
            "proxy_open": proxy_open,
            "proxy_to_sign": proxy_to_sign,
            "holder": holder,
            "holders": sorted(
                m.slug
                for m in db.query(Member).filter(Member.status == "active")
                if member is not None and m.id != member.id
            ),
            "my_proxies": proxies.of_member(db, member, p.reference) if member else [],
            "to_sign": to_sign,
            "choice": choice,
            "reason": reason,
            "decision": ballots.decision_of(db, p),
            "rule": charter.current(db).kinds.get(p.kind, ""),
            "body_json": json.dumps(p.body, indent=1, ensure_ascii=False) if p.body else "",
        },
    )


def _proxy_to_sign(
    db: Db, reference: str, member: Member | None, holder: str
) -> dict[str, str] | None:
    """The proxy for `reference` to `holder` ready to sign off the page, checked as the hub
    will check it; None until a holder is chosen."""
    if not holder or member is None:
        return None
    payload = proxies.make_payload(member.slug, holder.strip().lower(), reference)
    proxies.check_payload(payload)
    get_member(db, payload["holder"])  # an unknown holder is refused now, not after signing
    text = proxies.message(payload).decode()
    return {
        "payload": json.dumps(payload, ensure_ascii=False),
        "text": text,
        "command": "printf '%s' '" + text.replace("'", "'\\''") + "' | openssl pkeyutl "
        f"-sign -rawin -inkey ~/.concord/keys/{member.slug}.pem -in /dev/stdin | base64 -w0",
        "cli": f"concord proxy grant {payload['holder']} --proposal {reference}",
    }


def _method_vote(p: Any, member: str, choice: str, vote: str, reason: str) -> Any:
    """The vote of a method ballot prepared on the page (JSON, or a consent stance), checked
    as the hub will check it; None for a yes / no ballot."""
    if not p.method:
        return None
    if choice != p.method["name"]:
        raise BallotMalformed(reason=N_("the choice names the proposal's decision method"))
    try:
        shaped = json.loads(vote) if p.method["name"] != "consent" else vote
    except ValueError:
        raise BallotMalformed(reason=N_("the vote is not JSON")) from None
    decision_method.check_vote(p.method, member, shaped, reason)
    return shaped


@router.post("/proposals/{ref}/statements")
def statement_form(
    ref: str,
    db: Db,
    person: PagePerson,
    _csrf: CsrfChecked,
    text: str = Form(""),
    language: str = Form(""),
) -> Response:
    p = proposals.get(db, ref)
    deliberation.add_statement(db, _signed_in(person), p, text, language or current_language.get())
    db.commit()
    return RedirectResponse(f"/proposals/{p.reference}#statements", status_code=303)


@router.post("/proposals/{ref}/statements/{statement_id}/vote")
def vote_form(
    ref: str,
    statement_id: Id,
    db: Db,
    person: PagePerson,
    _csrf: CsrfChecked,
    vote: str = Form(""),
) -> Response:
    p = proposals.get(db, ref)
    deliberation.vote(db, _signed_in(person), p, statement_id, vote)
    db.commit()
    return RedirectResponse(f"/proposals/{p.reference}#s{statement_id}", status_code=303)


def _pasted_object(payload: str, invalid: type[ConcordError]) -> dict[str, Any]:
    """The JSON object a delegate signed off the page and pasted back; `invalid` says why not."""
    try:
        parsed = json.loads(payload)
    except ValueError:
        raise invalid(reason=N_("the payload is not JSON")) from None
    if not isinstance(parsed, dict):
        raise invalid(reason=N_("the payload is an object"))
    return parsed


@router.post("/proposals/{ref}/ballot")
def ballot_form(
    ref: str,
    db: Db,
    person: PagePerson,
    _csrf: CsrfChecked,
    payload: str = Form(""),
    signature: str = Form(""),
) -> Response:
    p = proposals.get(db, ref)
    parsed = _pasted_object(payload, BallotMalformed)
    ballots.cast(db, _signed_in(person), p, [{"payload": parsed, "signature": signature.strip()}])
    db.commit()
    return RedirectResponse(f"/proposals/{p.reference}#ballot", status_code=303)


@router.post("/proposals/{ref}/proxies")
def proxy_form(
    ref: str,
    db: Db,
    person: PagePerson,
    _csrf: CsrfChecked,
    payload: str = Form(""),
    signature: str = Form(""),
) -> Response:
    """Records a proxy for this proposal, signed off the page with the member's key."""
    p = proposals.get(db, ref)
    signer = _signed_in(person)
    parsed = _pasted_object(payload, proxies.ProxyInvalid)
    if parsed.get("proposal") != p.reference:
        raise proxies.ProxyInvalid(reason=N_("the payload is a proxy for this proposal"))
    proxies.grant(db, signer, {"payload": parsed, "signature": signature.strip()})
    db.commit()
    return RedirectResponse(f"/proposals/{p.reference}#proxy", status_code=303)


@router.post("/proposals/{ref}/proxies/{proxy_id}/revoke")
def proxy_revoke_form(
    ref: str, proxy_id: Id, db: Db, person: PagePerson, _csrf: CsrfChecked
) -> Response:
    """Revokes the member's proxy (until the ballot closes)."""
    p = proposals.get(db, ref)
    row = proxies.revoke(db, _signed_in(person), proxy_id)
    if row.proposal != p.reference:
        raise proxies.ProxyNotFound(proxy=proxy_id)  # rolled back: the revocation was elsewhere
    db.commit()
    return RedirectResponse(f"/proposals/{p.reference}#proxy", status_code=303)


@router.get("/proposals/{ref}/result", response_class=HTMLResponse)
def result_page(request: Request, ref: str, db: Db) -> HTMLResponse:
    p = proposals.get(db, ref)
    decision = ballots.decision_of(db, p)
    return render(
        request,
        "governance/result.html",
        {
            "p": p,
            "d": decision,
            "labels": methods.LABELS,
            "outcomes": methods.OUTCOMES,
            "proxy_reasons": proxies.REASONS,
        },
    )


def _tracked(p: Any, amendments: list[Any]) -> list[dict[str, Any]]:
    """The amendments with their tracked changes, furthest from the original first."""
    rows = [
        {
            "a": a,
            "distance": proposals.distance(p, a),
            "diff": redlines.diff(proposals.original(p, a.language), a.text),
        }
        for a in amendments
    ]
    return sorted(rows, key=lambda r: (-r["distance"], r["a"].id))


@router.post("/proposals/{ref}/translations")
def translation_form(
    ref: str,
    db: Db,
    person: PagePerson,
    _csrf: CsrfChecked,
    target: str = Form(""),
    language: str = Form(""),
    text: str = Form(""),
) -> Response:
    """A translation of the proposal's text (target "text") or of a statement (its number)."""
    p = proposals.get(db, ref)
    statement = None
    if target != "text":
        if not target.isdigit():
            raise translations.BadTranslation()
        statement = deliberation.get_statement(db, p, int(target))
    translations.contribute(db, _signed_in(person), p, statement, language, text)
    db.commit()
    anchor = f"s{statement.id}" if statement is not None else "text"
    return RedirectResponse(f"/proposals/{p.reference}#{anchor}", status_code=303)


@router.post("/proposals/{ref}/translations/machine")
def machine_form(
    ref: str, db: Db, person: PagePerson, _csrf: CsrfChecked, settings: AppSettings
) -> Response:
    p = proposals.get(db, ref)
    translations.fill(db, _signed_in(person), p, translations.configured(settings))
    db.commit()
    return RedirectResponse(f"/proposals/{p.reference}#statements", status_code=303)


@router.post("/proposals/{ref}/statements/{statement_id}/hide")
def hide_form(
    ref: str,
    statement_id: Id,
    db: Db,
    person: PagePerson,
    _csrf: CsrfChecked,
    reason: str = Form(""),
) -> Response:
    p = proposals.get(db, ref)
    deliberation.hide(db, _signed_in(person), p, statement_id, reason)
    db.commit()
    return RedirectResponse(f"/proposals/{p.reference}#s{statement_id}", status_code=303)
