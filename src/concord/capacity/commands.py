"""`concord programme`, `concord need`, `concord offer`, `concord match` and `concord commitment`.

These are the secretariat's commands on the hub's own database, like `concord member`;
delegates act through the API and the pages. `concord programme verify` needs no database:
it checks a completion record offline against the hub's public key.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from concord.capacity import commitments, enrolment, exchange, matching, priorities, programmes
from concord.console import local_sessions, out

programme_app = typer.Typer(help="Workshops, seminars and courses.", no_args_is_help=True)
need_app = typer.Typer(help="Needs posted to the exchange.", no_args_is_help=True)
offer_app = typer.Typer(help="Offers posted to the exchange.", no_args_is_help=True)
commitment_app = typer.Typer(help="Commitments and their progress.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(programme_app, name="programme")
    app.add_typer(need_app, name="need")
    app.add_typer(offer_app, name="offer")
    app.add_typer(commitment_app, name="commitment")
    app.command("match")(match)


@programme_app.command("list")
def programme_list(area: str = typer.Option("", help="Action Plan area.")) -> None:
    """List programmes with their seats, first by the priorities the assembly adopted."""
    with local_sessions()() as db:
        table = Table("priority", "id", "title", "area", "kind", "starts", "seats", "waiting")
        ranking = priorities.current(db)
        for p, standing in priorities.standings(ranking, programmes.list_programmes(db, area=area)):
            table.add_row(
                str(standing.rank) if standing else "",
                str(p.id),
                p.title,
                p.area,
                p.kind,
                p.sessions[0].starts_at.date().isoformat() if p.sessions else "",
                f"{programmes.seats_taken(db, p)}/{p.seats}",
                str(len(programmes.waiting(db, p))),
            )
        out.print(table)
        if ranking is not None:
            out.print(f"Ordered by the priorities adopted in {ranking.reference}: {ranking.title}")


@programme_app.command("verify")
def programme_verify(
    certificate: Path = typer.Argument(..., help="A completion record (JSON) to check."),
    key: str = typer.Option(..., help="The hub's public key (base64), e.g. from /api/log/head."),
) -> None:
    """Check a signed completion record offline."""
    document = json.loads(certificate.read_text())
    if not enrolment.verify_certificate(document, key):
        raise enrolment.BadEnrolment(reason="the signature does not match the record")
    record = document["record"]
    out.print(
        f"[green]valid[/] {record['participant']} completed "
        f"“{record['programme']['title']}” on {record['completed']}"
    )


def _items(side: str, kind: str) -> None:
    with local_sessions()() as db:
        table = Table("id", "kind", "title", "quantity", "member", "status")
        for i in exchange.list_items(db, side=side, kind=kind):
            table.add_row(str(i.id), i.kind, i.title, f"{i.quantity:g}", str(i.member_id), i.status)
        out.print(table)


@need_app.command("list")
def need_list(
    kind: str = typer.Option("", help="compute, dataset, expert, seats, funding"),
) -> None:
    """List needs."""
    _items("need", kind)


@offer_app.command("list")
def offer_list(
    kind: str = typer.Option("", help="compute, dataset, expert, seats, funding"),
) -> None:
    """List offers."""
    _items("offer", kind)


def match() -> None:
    """Propose the maximum-benefit matching of open needs and offers."""
    with local_sessions()() as db:
        proposed = matching.run(db)
        db.commit()
        table = Table("match", "need", "offer", "quantity", "benefit", "why")
        for m in proposed:
            why = ", ".join(f"{k} {v}" for k, v in m.reasons.items() if k != "benefit")
            table.add_row(
                str(m.id),
                str(m.need_id),
                str(m.offer_id),
                f"{m.quantity:g}",
                f"{m.benefit:.3f}",
                why,
            )
        out.print(table)
        out.print(
            f"{len(proposed)} matches proposed, total benefit "
            f"{sum(m.benefit for m in proposed):.3f}"
        )


@commitment_app.command("list")
def commitment_list() -> None:
    """Commitments with progress computed from the records."""
    with local_sessions()() as db:
        table = Table("id", "title", "value", "target", "due", "status")
        for p in commitments.all_progress(db):
            table.add_row(
                str(p.commitment.id),
                p.commitment.title,
                f"{p.value:g}",
                f"{p.commitment.target:g}",
                p.commitment.due.isoformat(),
                p.status,
            )
        out.print(table)
