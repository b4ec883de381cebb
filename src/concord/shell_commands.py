"""Commands of the shell itself: `init`, `serve`, `demo`, `backup`, `restore` and `events`."""

from __future__ import annotations

from pathlib import Path

import typer

from concord.config import get_settings
from concord.console import local_sessions, out

events_app = typer.Typer(
    help="Domain events not delivered: list them, retry one now.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("demo")(demo)
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.add_typer(events_app, name="events")


def init() -> None:
    """Create or upgrade the database, the store and the hub's signing key."""
    from concord.db import make_engine, upgrade
    from concord.hubkey import load_or_create, public_key_base64

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(make_engine(settings.database()))
    key = load_or_create(settings)
    out.print(f"[green]ready[/] database {settings.database().split('@')[-1]}")
    out.print(f"hub public key {public_key_base64(key)}")


def serve(
    host: str = typer.Option(None, help="Address to listen on (default: CONCORD_HOST)."),
    port: int = typer.Option(None, help="Port to listen on (default: CONCORD_PORT)."),
    workers: int = typer.Option(1, help="Worker processes; all share the database and store."),
) -> None:
    """Serve the hub: the API, its OpenAPI description at /api/docs, and the pages."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "concord.api:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
        # Nodes long-poll for up to 30 s and retry on their own: do not wait for them to stop.
        timeout_graceful_shutdown=5,
    )


def demo(
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Keep serving afterwards."),
) -> None:
    """Seed the demo world and tell its story (idempotent), then serve it."""
    from concord.demo import run_demo

    world = run_demo(get_settings(), keep_regional=serve_after)
    if serve_after:
        import signal
        import sys

        # Uvicorn re-raises the signal that stopped it once it has shut down; with the default
        # SIGTERM handler that kills this process before `finally` could stop the regional hub.
        signal.signal(signal.SIGTERM, lambda number, _frame: sys.exit(128 + number))
        try:
            serve(host=None, port=None, workers=1)  # type: ignore[arg-type]
        finally:
            regional = world.facts.get("regional_hub")
            if regional is not None:
                regional.stop()


def backup(
    archive: Path = typer.Argument(..., help="Archive file to write (a tar)."),
) -> None:
    """Back up the database, the local store and the hub key into one archive."""
    from concord.backup import backup as make_backup

    manifest = make_backup(get_settings(), archive)
    rows = sum(manifest["rows"].values())
    out.print(f"[green]backed up[/] {rows} rows and {len(manifest['files'])} files to {archive}")


def restore(
    archive: Path = typer.Argument(..., help="Archive written by `concord backup`."),
) -> None:
    """Restore an archive into an empty, initialised hub (run `concord init` first)."""
    from concord.backup import restore as do_restore

    manifest = do_restore(get_settings(), archive)
    out.print(f"[green]restored[/] {sum(manifest['rows'].values())} rows from {archive}")


@events_app.command("list")
def events_list(
    failed: bool = typer.Option(False, "--failed", help="Only events that failed for good."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List undelivered events: failed ones, and those waiting or retrying."""
    import json

    from rich.table import Table

    from concord import events

    with local_sessions()() as db:
        rows = events.undelivered(db, failed_only=failed)
    views = [
        {
            "id": e.id,
            "name": e.name,
            "state": e.state,
            "attempts": e.attempts,
            "next_attempt_at": e.next_attempt_at.isoformat() if e.next_attempt_at else None,
            "error": e.error,
        }
        for e in rows
    ]
    if as_json:
        out.print_json(json.dumps(views))
        return
    table = Table("id", "event", "state", "attempts", "next attempt", "last error")
    for v in views:
        table.add_row(
            str(v["id"]),
            str(v["name"]),
            str(v["state"]),
            str(v["attempts"]),
            str(v["next_attempt_at"] or ""),
            str(v["error"] or ""),
        )
    out.print(table)


@events_app.command("retry")
def events_retry(event_id: int = typer.Argument(..., help="The event's id.")) -> None:
    """Retry an undelivered event now, with a fresh set of attempts."""
    from concord import events

    settings = get_settings()
    sessions = local_sessions(settings)
    with sessions() as db:
        events.retry(db, event_id)
        db.commit()
    events.deliver_pending(sessions, settings)
    with sessions() as db:
        event = events.get_event(db, event_id)
        out.print(
            f"event {event.id} {event.state}"
            + (f": {event.error}" if event.error and event.state != "delivered" else "")
        )
