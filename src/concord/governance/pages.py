"""Pages of governance: proposals, a proposal with its opinion map, the ballot, the result.

Ballots from the page: the page cannot hold the member's private key, and we do not ask the
delegate to hand it to the browser. The page shows the exact canonical payload to sign and a
one-line `openssl` command (or `concord ballot`) that signs it on the delegate's machine; the
delegate pastes the base64 signature back. No JavaScript is needed.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from concord.errors import N_
from concord.governance import ballots, charter, deliberation, proposals
from concord.governance.ballots import BallotMalformed
from concord.http import Db
from concord.members.auth import CsrfChecked, PagePerson
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
    request: Request, ref: str, db: Db, person: PagePerson, choice: str = "", reason: str = ""
) -> HTMLResponse:
    p = proposals.get(db, ref)
    opinion = deliberation.opinion_map(db, p)
    db.commit()
    member = _member_of(db, person)
    to_sign = None
    if choice and member is not None and ballots.is_open(p):
        if choice not in ballots.CHOICES:
            raise BallotMalformed(reason=N_("the choice is yes, no, abstain or objection"))
        payload = ballots.make_payload(p.reference, member.slug, choice, reason)
        text = ballots.message(payload).decode()
        to_sign = {
            "payload": json.dumps(payload, ensure_ascii=False),
            "text": text,
            "command": "printf '%s' '" + text.replace("'", "'\\''") + "' | openssl pkeyutl "
            f"-sign -rawin -inkey ~/.concord/keys/{member.slug}.pem -in /dev/stdin | base64 -w0",
            "cli": f"concord ballot {p.reference} {choice}",
        }
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
    return render(
        request,
        "governance/proposal.html",
        {
            "p": p,
            "sponsor": slugs.get(p.sponsor_id, ""),
            "cosponsors": [slugs.get(i, "") for i in p.cosponsor_ids],
            "opinion": opinion,
            "svg": scatter(opinion),
            "statements": deliberation.statements(db, p),
            "mine": mine,
            "amendments": proposals.amendments(db, p),
            "slugs": slugs,
            "member": member,
            "can_deliberate": person is not None
            and p.status in ("deliberation", "ballot")
            and (
                person.role == "delegate" or (person.role == "observer" and p.public_consultation)
            ),
            "ballot_open": ballots.is_open(p),
            "to_sign": to_sign,
            "choice": choice,
            "reason": reason,
            "decision": ballots.decision_of(db, p),
            "rule": charter.current(db).kinds.get(p.kind, ""),
            "body_json": json.dumps(p.body, indent=1, ensure_ascii=False) if p.body else "",
        },
    )


@router.post("/proposals/{ref}/statements")
def statement_form(
    ref: str, db: Db, person: PagePerson, _csrf: CsrfChecked, text: str = Form("")
) -> Response:
    p = proposals.get(db, ref)
    deliberation.add_statement(db, _signed_in(person), p, text)
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
    try:
        parsed = json.loads(payload)
    except ValueError:
        raise BallotMalformed(reason=N_("the payload is not JSON")) from None
    if not isinstance(parsed, dict):
        raise BallotMalformed(reason=N_("the payload is an object"))
    ballots.cast(db, _signed_in(person), p, [{"payload": parsed, "signature": signature.strip()}])
    db.commit()
    return RedirectResponse(f"/proposals/{p.reference}#ballot", status_code=303)


@router.get("/proposals/{ref}/result", response_class=HTMLResponse)
def result_page(request: Request, ref: str, db: Db) -> HTMLResponse:
    p = proposals.get(db, ref)
    decision = ballots.decision_of(db, p)
    return render(request, "governance/result.html", {"p": p, "d": decision})
