"""`concord demo`: initialise, then run every domain's seed step with a progress display."""

from __future__ import annotations

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from concord.config import Settings
from concord.console import out
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.domains import domain_modules
from concord.events import deliver_pending
from concord.hubkey import load_or_create
from concord.seeding import World


def run_demo(settings: Settings) -> World:
    """Seeds the demo world; running it again changes nothing that exists."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database())
    upgrade(engine)
    load_or_create(settings)
    world = World(settings=settings, sessions=make_sessionmaker(engine))
    steps = domain_modules("seed")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=False,
    ) as progress:
        overall = progress.add_task("Concord demo", total=len(steps))
        for module in steps:
            task = progress.add_task(f"  {module.STEP}", total=1)
            module.seed(world)
            deliver_pending(world.sessions, settings)
            progress.update(task, completed=1)
            progress.advance(overall)
    out.print()
    for note in world.notes:
        out.print(note)
    out.print(f"\n[bold]Concord hub:[/] {settings.public_url}")
    return world
