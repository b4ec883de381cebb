"""`concord impact`: the dashboard's figures in the terminal or as JSON."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from concord.console import local_sessions, out


def register(app: typer.Typer) -> None:
    app.command("impact")(impact)


def impact(
    year: int = typer.Option(None, help="Only this calendar year."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Participation, benefit and equity by indicator."""
    from concord.impact import indicators
    from concord.impact.routes import summary

    with local_sessions()() as db:
        items = indicators.dashboard(db, year)
        if as_json:
            out.print_json(json.dumps([summary(i) for i in items]))
            return
        table = Table(
            "indicator",
            "total",
            "members",
            "Global South share (membership)",
            "low+lower-middle share (membership)",
            "Gini",
        )
        for i in items:
            if not i.available:
                table.add_row(i.source.name, "no data yet", "", "", "", "")
                continue
            table.add_row(
                i.source.name,
                f"{i.total:g}",
                str(i.participants),
                f"{i.south_share:.0%} ({i.south_membership:.0%})",
                f"{i.poorer_share:.0%} ({i.poorer_membership:.0%})",
                f"{i.gini:.2f}",
            )
        out.print(table)
