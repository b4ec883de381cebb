"""`concord audit` (anyone, against any hub) and `concord log` (the hub's own view)."""

from __future__ import annotations

from pathlib import Path

import typer

from concord.console import out


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def audit(
    url: str = typer.Argument(..., help="The hub to audit, e.g. https://hub.example.org"),
    full: bool = typer.Option(False, "--full", help="Check every entry and rebuild the root."),
    sample: int = typer.Option(64, help="Entries to check when not --full."),
    state: Path = typer.Option(None, help="Where the last seen head is kept."),
) -> None:
    """Verify a hub's transparency log from outside; exits non-zero on any disagreement."""
    from concord.domains import domain_modules
    from concord.ledger.audit import audit as run_audit

    # Each domain that serves logged state checks it against the log (its `served.check`).
    checks = [module.check for module in domain_modules("served")]
    report = run_audit(url, state=state, full=full, sample=sample, checks=checks)
    for note in report.notes:
        out.print(f"  {note}")
    what = "all entries" if report.full else f"{report.checked} sampled entries"
    out.print(
        f"[green]ok[/] {report.hub}: signed head of size {report.size}, root "
        f"{report.root[:16]}…; {what} verified"
    )
