"""`concord demo`: initialise, run every domain's seed step, then the story's chapters (a
regional mirror, two pulls and a prediction, an outside audit, the impact figures), with a
progress display."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from concord.config import Settings
from concord.console import out
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.domains import domain_modules
from concord.events import deliver_pending
from concord.hubkey import load_or_create
from concord.seeding import World
from concord.story import CHAPTERS, RegionalHub, Story, print_ending


def run_demo(settings: Settings, *, keep_regional: bool = False) -> World:
    """Seeds the demo world and tells its story; running it again changes nothing that exists.

    With `keep_regional`, the regional hub keeps running afterwards (in
    `world.facts["regional_hub"]`) for the caller to stop."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database())
    upgrade(engine)
    load_or_create(settings)
    world = World(settings=settings, sessions=make_sessionmaker(engine))
    # Serving afterwards: the regional hub takes the next port, so its address is predictable.
    story = Story(world, regional_port=settings.port + 1 if keep_regional else None)
    world.hub = story.primary  # the federation step's nodes talk to the hub the story serves
    steps: list[tuple[str, Callable[[], None]]] = [
        (module.STEP, partial(module.seed, world)) for module in domain_modules("seed")
    ]
    steps += [(title, partial(chapter, story)) for title, chapter in CHAPTERS]
    regional: RegionalHub | None = None
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=out,
            transient=False,
        ) as progress:
            overall = progress.add_task("Concord demo", total=len(steps))
            for title, step in steps:
                task = progress.add_task(f"  {title}", total=1)
                step()
                deliver_pending(world.sessions, settings)
                progress.update(task, completed=1)
                progress.advance(overall)
    finally:
        regional = story.close(keep_regional=keep_regional)
    world.facts["story"] = story.facts
    if regional is not None:
        world.facts["regional_hub"] = regional
    out.print()
    for note in world.notes:
        out.print(note)
    print_ending(story, regional)
    out.print(f"\n[bold]Concord hub:[/] {settings.public_url}")
    if regional is not None:
        out.print(f"[bold]Regional hub (mirror):[/] {regional.url}")
    return world
