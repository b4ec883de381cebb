"""`concord push`, `concord pull` and `concord repo`: a member's commands against a hub."""

from __future__ import annotations

import hashlib
from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from concord.client import from_environment
from concord.commons.chunks import ChunkStore, open_store
from concord.commons.pull import parse_size, pull
from concord.console import out

repo_app = typer.Typer(help="Model and dataset repositories.", no_args_is_help=True)


bundle_app = typer.Typer(help="Offline bundles: repositories in one file.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("push")(push)
    app.command("pull")(pull_command)
    app.command("mirror")(mirror_command)
    app.command("sweep")(sweep_command)
    app.add_typer(repo_app, name="repo")
    app.add_typer(bundle_app, name="bundle")


def _local() -> tuple[sessionmaker[Session], ChunkStore]:
    from concord.config import get_settings
    from concord.console import local_sessions

    settings = get_settings()
    return local_sessions(settings), open_store(settings)


def mirror_command(
    repos_: list[str] = typer.Argument(..., metavar="REPO...", help="owner/name, one or more."),
    source: str = typer.Option(..., "--from", help="The hub to mirror from."),
    kind: str = typer.Option("model", help="model or dataset"),
) -> None:
    """Keep repositories of another hub in step on this hub, copying only missing chunks."""
    from concord.commons.mirror import mirror

    sessions, store = _local()
    for ref in repos_:
        with sessions() as db:
            copied = mirror(db, store, source, ref, kind)
            db.commit()
        out.print(f"[green]mirrored[/] {ref} from {source}: {copied} chunks copied")


def sweep_command(
    older_than: float = typer.Option(
        24.0, "--older-than", min=0.0, help="Hours: spare anything younger (open transactions)."
    ),
) -> None:
    """Free the space a killed process left: unreferenced packs and stale scratch files."""
    from concord.commons.chunks import sweep

    sessions, store = _local()
    with sessions() as db:
        swept = sweep(db, store, older_than * 3600)
    out.print(
        f"[green]swept[/] {swept.packs} unreferenced packs and {swept.scratch_files} "
        f"scratch files: {swept.bytes / 1e6:.1f} MB freed"
    )


@bundle_app.command("export")
def bundle_export(
    repos_: list[str] = typer.Argument(..., metavar="REPO...", help="owner/name, one or more."),
    output: Path = typer.Option(..., "-o", "--output", help="The bundle file to write."),
    kind: str = typer.Option("model", help="model or dataset"),
) -> None:
    """Write repositories into one signed file that can travel on a USB stick."""
    from concord.commons.mirror import export_bundle
    from concord.config import get_settings
    from concord.hubkey import load_or_create

    sessions, store = _local()
    settings = get_settings()
    with sessions() as db:
        manifest = export_bundle(
            db,
            store,
            load_or_create(settings),
            [(kind, r) for r in repos_],
            output,
            settings.public_url,
        )
    out.print(f"[green]exported[/] {len(manifest['repositories'])} repositories to {output}")


@bundle_app.command("import")
def bundle_import(
    bundle: Path = typer.Argument(..., help="A bundle written by `concord bundle export`."),
    trust: str = typer.Option(None, help="Accept only bundles signed by this hub key (base64)."),
) -> None:
    """Verify a bundle completely, then make its repositories visible on this hub."""
    from concord.commons.mirror import import_bundle

    sessions, store = _local()
    with sessions() as db:
        names = import_bundle(db, store, bundle, trust)
        db.commit()
    out.print(f"[green]imported[/] {', '.join(names)}")


def _split(repo: str) -> tuple[str, str]:
    owner, _sep, name = repo.partition("/")
    if not owner or not name:
        raise typer.BadParameter("give the repository as owner/name")
    return owner, name


def push(
    repo: str = typer.Argument(..., help="owner/name; the owner is your member."),
    paths: list[Path] = typer.Argument(..., help="Files, or folders (pushed recursively)."),
    kind: str = typer.Option("model", help="model or dataset"),
    licence: str = typer.Option("apache-2.0", help="SPDX licence, used when creating."),
    message: str = typer.Option("", help="What changed."),
    hub: str = typer.Option(None, help="Hub URL (default: CONCORD_HUB)."),
    token: str = typer.Option(None, help="API token (default: CONCORD_TOKEN)."),
) -> None:
    """Upload files and publish them as a new revision (creating the repository if needed)."""
    owner, name = _split(repo)
    files: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            for item in sorted(p for p in path.rglob("*") if p.is_file()):
                if ".concord" not in item.relative_to(path).parts:
                    files[item.relative_to(path).as_posix()] = item
        else:
            files[path.name] = path
    with from_environment(hub, token) as client:
        existing = client.get("/api/commons/repos", params={"kind": kind, "q": repo})
        if not any(r["id"] == repo for r in existing):
            client.post(
                "/api/commons/repos",
                json={"owner": owner, "name": name, "kind": kind, "licence": licence},
            )
        shas = {}
        for path_in_repo, source in files.items():
            digest = hashlib.sha256()
            with source.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            with source.open("rb") as handle:
                answer = client.post(
                    "/api/commons/uploads",
                    params={"filename": path_in_repo, "repository": f"{kind}/{repo}"},
                    content=handle,
                    headers={
                        "X-Content-SHA256": digest.hexdigest(),
                        "Content-Length": str(source.stat().st_size),
                    },
                )
            shas[path_in_repo] = answer["sha256"]
            out.print(
                f"uploaded {path_in_repo} ({answer['size']} bytes, {answer['chunks']} chunks)"
            )
        result = client.post(
            f"/api/commons/repos/{kind}/{owner}/{name}/commits",
            json={"files": shas, "message": message},
        )
    out.print(f"[green]published[/] {repo} at {result['revision'][:12]}")


def pull_command(
    repo: str = typer.Argument(..., help="owner/name"),
    files: list[str] = typer.Argument(None, help="Only these files."),
    kind: str = typer.Option("model", help="model or dataset"),
    revision: str = typer.Option("main", help="Branch or revision."),
    to: Path = typer.Option(None, help="Folder (default: ./owner/name)."),
    hub: str = typer.Option(None, help="Hub URL (default: CONCORD_HUB)."),
    token: str = typer.Option(None, help="API token, to be counted as your member."),
    workers: int = typer.Option(4, help="Parallel ranges."),
    limit_rate: str = typer.Option(None, help="Bandwidth limit, e.g. 100k or 2M (bytes/s)."),
    budget: str = typer.Option(None, help="Stop before downloading more than this, e.g. 50MB."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Download a repository, resuming after any interruption and fetching only what is new."""
    import os

    _split(repo)
    folder = to or Path(repo)
    url = hub or os.environ.get("CONCORD_HUB") or "http://127.0.0.1:8000"
    with Progress(
        "{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=out,
        disable=quiet,
    ) as bar:
        task = bar.add_task(repo, total=None)
        report = pull(
            url,
            repo,
            kind=kind,
            revision=revision,
            only=files or None,
            to=folder,
            token=token or os.environ.get("CONCORD_TOKEN"),
            workers=workers,
            limit_rate=parse_size(limit_rate),
            budget=parse_size(budget),
            progress=lambda n: bar.advance(task, n),
            total=lambda n: bar.update(task, total=n),
        )
    out.print(
        f"[green]pulled[/] {repo} at {report.revision[:12]} into {folder}: "
        f"{report.downloaded_bytes} bytes fetched, {report.reused_chunks} chunks reused"
    )
    if report.sha256_checked:
        out.print(
            "[yellow]note[/] the log records no chunk root for "
            + ", ".join(report.sha256_checked)
            + " (an older or mirrored revision): checked by SHA-256 instead"
        )


@repo_app.command("list")
def repo_list(
    kind: str = typer.Option("", help="model or dataset"),
    q: str = typer.Option("", help="Text in the name."),
    hub: str = typer.Option(None, help="Hub URL (default: CONCORD_HUB)."),
) -> None:
    """List repositories."""
    with from_environment(hub, None) as client:
        table = Table("repository", "kind", "licence", "revision")
        for r in client.get("/api/commons/repos", params={"kind": kind, "q": q}):
            table.add_row(r["id"], r["kind"], r["licence"], (r["revision"] or "")[:12])
        out.print(table)


@repo_app.command("create")
def repo_create(
    repo: str = typer.Argument(..., help="owner/name"),
    kind: str = typer.Option("model", help="model or dataset"),
    licence: str = typer.Option(..., help="SPDX licence, e.g. apache-2.0"),
    hub: str = typer.Option(None),
    token: str = typer.Option(None),
) -> None:
    """Create an empty repository owned by your member."""
    owner, name = _split(repo)
    with from_environment(hub, token) as client:
        client.post(
            "/api/commons/repos",
            json={"owner": owner, "name": name, "kind": kind, "licence": licence},
        )
    out.print(f"[green]created[/] {repo}")
