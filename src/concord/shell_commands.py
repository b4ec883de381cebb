"""Commands of the shell itself: `init`, `serve` and `demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from concord.config import get_settings
from concord.console import out


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("demo")(demo)
    app.command("backup")(backup)
    app.command("restore")(restore)


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
