"""The demo's last chapters: what people outside the hub do with the model members trained.

The domains' seed steps build the organisation, decide, train and publish. These chapters then
use the result the way a regional hub, a researcher and an auditor would:

4. a second Concord hub — its own data folder, database and store, served by a real
   `concord serve` process — mirrors the published model, copying only the chunks it lacks and
   keeping the revision, provenance and "mirrored from";
5. the model comes back with `concord pull` (from the regional hub) and with the real
   `huggingface_hub` client (from the first hub); both copies must hash the same, and the task
   installed here loads the weights and labels a digit it never saw;
6. `concord audit --full` checks the first hub's whole log from outside;
7. the impact dashboard's headline figures are read from the impact domain.

A chapter never redoes what is done: a revision already mirrored is not mirrored again, and
files already pulled and verified are not fetched again, so a second `concord demo` adds no
rows to either hub.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import uvicorn
from rich.table import Table
from sqlalchemy import select

from concord.client import HubClient
from concord.commons.chunks import open_store
from concord.config import Settings
from concord.console import out
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.errors import N_, Conflict, NotFound, RemoteError, Unavailable
from concord.hubkey import load_or_create
from concord.seeding import World

CHAPTER_MIRROR = N_("A regional hub mirrors the model")
CHAPTER_PULL = N_("The model pulled back and put to use")
CHAPTER_AUDIT = N_("The log audited from outside")
CHAPTER_IMPACT = N_("The impact of what just happened")

# The member whose delegate downloads with the Hugging Face client, so that the download is
# attributed to a country on the dashboard (a Global South member, as most users will be).
DOWNLOADER = "kenya"


class DemoStepFailed(Unavailable):
    code = "demo.step_failed"
    message = N_("The demo step “{step}” failed: {reason}")


class CopiesDiffer(Conflict):
    code = "demo.copies_differ"
    message = N_(
        "The copies of {repository} differ: {first} has SHA-256 {a}, {second} has {b}. "
        "One of the hubs or the network corrupted the model."
    )


def _free_port(preferred: int | None = None) -> int:
    if preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _concord(
    step: str, arguments: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Runs the `concord` command line as a person would, in its own process."""
    # Our own interpreter and arguments we build: no untrusted input.
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "from concord.cli import main; main()", *arguments],
        env={**env, "COLUMNS": "200"},  # one result per line, whatever the terminal
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        reason = (done.stdout + done.stderr).strip().splitlines()[-1:] or [
            f"exit {done.returncode}"
        ]
        raise DemoStepFailed(step=step, reason=reason[0][:300])
    return done


class RegionalHub:
    """A second hub on this machine: own folder, SQLite database, store and signing key."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        # Explicit values beat the CONCORD_* variables the first hub may have been given.
        self.settings = Settings(
            data_dir=folder,
            database_url="",
            storage_url="",
            signing_key_path=folder / "hub-signing-key.pem",
            public_url=self.url,
            port=port,
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONCORD_DATA_DIR": str(self.folder),
            "CONCORD_DATABASE_URL": "",
            "CONCORD_STORAGE_URL": "",
            "CONCORD_SIGNING_KEY_PATH": str(self.settings.signing_key()),
            "CONCORD_PUBLIC_URL": self.url,
        }

    def initialise(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        engine = make_engine(self.settings.database())
        upgrade(engine)
        engine.dispose()
        load_or_create(self.settings)

    def start(self) -> None:
        log = (self.folder / "serve.log").open("ab")
        # Our own interpreter and arguments we build: no untrusted input.
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-c",
                "from concord.cli import main; main()",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoStepFailed(
                    step=CHAPTER_MIRROR,
                    reason=f"the regional hub exited with {self.process.returncode}; "
                    f"see {self.folder / 'serve.log'}",
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise DemoStepFailed(step=CHAPTER_MIRROR, reason=f"{self.url} did not answer in 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


class Story:
    """What the chapters share: the first hub served for the occasion, the regional hub."""

    def __init__(self, world: World, *, regional_port: int | None = None) -> None:
        self.world = world
        self.folder = world.settings.data_dir / "story"
        self.regional_port = regional_port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._primary: str | None = None
        self._regional: RegionalHub | None = None
        self.facts: dict[str, Any] = {}

    def primary(self) -> str:
        """The first hub's URL, serving it in this process until `close`."""
        if self._primary is not None:
            return self._primary
        from concord.api import create_app

        # The hub's own address when it is free, so that the regional hub records the address
        # people will use afterwards as the model's origin, not a port that is gone.
        public = urlparse(self.world.settings.public_url)
        local = public.hostname in ("127.0.0.1", "localhost") and public.port
        port = _free_port(public.port if local else None)
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.world.settings), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise DemoStepFailed(step=CHAPTER_MIRROR, reason="the hub did not start")
            time.sleep(0.05)
        self._primary = (
            self.world.settings.public_url.rstrip("/")
            if port == public.port and local
            else f"http://127.0.0.1:{port}"
        )
        return self._primary

    def regional(self) -> RegionalHub:
        if self._regional is None:
            hub = RegionalHub(
                self.world.settings.data_dir / "regional-hub", _free_port(self.regional_port)
            )
            hub.initialise()
            hub.start()
            self._regional = hub
        return self._regional

    def model(self) -> tuple[str, int, str] | None:
        """The published model of the latest finished job: (owner/name, job id, task)."""
        from concord.federation.tables import Job

        with self.world.sessions() as db:
            job = db.scalars(
                select(Job).where(Job.model_repo != "").order_by(Job.id.desc())
            ).first()
            if job is None:
                return None
            return job.model_repo, job.id, str(job.spec["task"])

    def close(self, keep_regional: bool = False) -> RegionalHub | None:
        """Stops the first hub's temporary server; the regional hub too unless kept."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
            self._primary = None
        if self._regional is not None and not keep_regional:
            self._regional.stop()
            return None
        return self._regional


def _revision(hub: str, ref: str) -> dict[str, Any] | None:
    try:
        with HubClient(hub) as client:
            detail: dict[str, Any] = client.get(f"/api/commons/repos/model/{ref}/revisions/main")
            return detail
    except RemoteError as error:
        if error.status == NotFound.status:
            return None
        raise


def mirror_chapter(story: Story) -> None:
    """Step 4: the regional hub takes the model from the first hub, checked and intact."""
    from concord.commons.mirror import mirror
    from concord.members.directory import admit, get_member

    found = story.model()
    if found is None:
        story.world.notes.append("Regional hub: no published model to mirror (the job failed?).")
        return
    ref, _job, _task = found
    primary = story.primary()
    source = _revision(primary, ref)
    if source is None:
        raise DemoStepFailed(step=CHAPTER_MIRROR, reason=f"{ref} is not served by {primary}")
    regional = story.regional()
    there = _revision(regional.url, ref)
    copied = 0
    total = len({name for f in source["files"] for name, _n in f["chunks"]})
    if there is None or there["revision"] != source["revision"]:
        engine = make_engine(regional.settings.database())
        sessions = make_sessionmaker(engine)
        owner = ref.partition("/")[0]
        with story.world.sessions() as db:
            member = get_member(db, owner)
            identity = (member.slug, member.name, member.kind, member.country_code)
        with sessions() as db:
            # The regional hub's directory must know the owner; it admits the same member.
            from concord.members.tables import Member

            if db.scalars(select(Member).where(Member.slug == owner)).first() is None:
                slug, name, kind, code = identity
                admit(db, slug=slug, name=name, kind=kind, country_code=code)
            copied = mirror(db, open_store(regional.settings), primary, ref)
            db.commit()
        engine.dispose()
        there = _revision(regional.url, ref)
    if there is None or there["revision"] != source["revision"]:
        raise DemoStepFailed(step=CHAPTER_MIRROR, reason="the mirrored revision is not served")
    if there["provenance"] != source["provenance"] or [f["sha256"] for f in there["files"]] != [
        f["sha256"] for f in source["files"]
    ]:
        raise CopiesDiffer(
            repository=ref,
            first=primary,
            second=regional.url,
            a=source["revision"][:12],
            b=there["revision"][:12],
        )
    story.facts["mirror"] = {"copied": copied, "total": total, "revision": there["revision"]}
    done = f"{copied} of {total} chunks copied" if copied else "already in step, nothing copied"
    story.world.notes.append(
        f"Regional hub {regional.url} (its own database in {regional.folder}) mirrors {ref} "
        f"at {there['revision'][:12]} from {there['mirrored_from']}: {done}; provenance "
        f"(job {there['provenance'].get('job')}, {len(there['provenance'].get('rounds', []))} "
        "rounds) kept."
    )


HF_SCRIPT = (
    "import sys\n"
    "from huggingface_hub import snapshot_download\n"
    "print(snapshot_download(sys.argv[1], endpoint=sys.argv[2], local_dir=sys.argv[3],"
    " token=sys.argv[4] or None))\n"
)


def _hf_download(story: Story, ref: str, hub: str, folder: Path, token: str) -> None:
    home = story.folder / "hf-home"
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(
        {
            "HF_HOME": str(home),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1",  # our hub serves plain files, not Xet storage
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
    )
    # Our own interpreter and arguments we build: no untrusted input.
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", HF_SCRIPT, ref, hub, str(folder), token],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise DemoStepFailed(step=CHAPTER_PULL, reason=reason[0][:300])


def _verified(folder: Path, files: list[dict[str, Any]]) -> bool:
    """Every file of the revision is in `folder` with its SHA-256."""
    return all(
        (folder / f["path"]).is_file() and _sha256(folder / f["path"]) == f["sha256"] for f in files
    )


def pull_chapter(story: Story) -> None:
    """Step 5: two clients, two hubs, one model; then the model labels a digit it never saw."""
    from concord.federation.parameters import from_safetensors
    from concord.federation.tasks.base import Predictor, load_task

    found = story.model()
    if found is None:
        return
    ref, job_id, task_name = found
    primary = story.primary()
    source = _revision(primary, ref)
    if source is None:
        raise DemoStepFailed(step=CHAPTER_PULL, reason=f"{ref} is not served by {primary}")
    regional = story.regional()
    by_pull = story.folder / "pulled-with-concord"
    by_hf = story.folder / "pulled-with-huggingface-hub"
    fetched = []
    if not _verified(by_pull, source["files"]):
        _concord(
            CHAPTER_PULL,
            ["pull", ref, "--hub", regional.url, "--to", str(by_pull), "--quiet"],
            {**os.environ},
        )
        fetched.append("concord pull")
    if not _verified(by_hf, source["files"]):
        token = story.world.facts.get("tokens", {}).get(DOWNLOADER, "")
        _hf_download(story, ref, primary, by_hf, token)
        fetched.append("huggingface_hub")
    weights = "model.safetensors"
    a, b = _sha256(by_pull / weights), _sha256(by_hf / weights)
    if a != b:
        raise CopiesDiffer(repository=ref, first=regional.url, second=primary, a=a[:16], b=b[:16])
    task = load_task(task_name)
    params = from_safetensors((by_hf / weights).read_bytes())
    public = getattr(task, "public_test", None)
    if public is None or not isinstance(task, Predictor):
        story.world.notes.append(
            f"Pulled {ref} twice (SHA-256 {a[:16]}… on both); task {task_name} cannot predict."
        )
        return
    x_test, y_test = public()
    # The first example of the public test split: no member trained on it.
    predicted = int(task.predict(params, x_test[:1])[0])
    accuracy = float((task.predict(params, x_test) == y_test).mean())
    story.facts["prediction"] = {
        "predicted": predicted,
        "true": int(y_test[0]),
        "accuracy": accuracy,
        "sha256": a,
    }
    how = f"fetched with {' and '.join(fetched)}" if fetched else "already pulled and verified"
    story.world.notes.append(
        f"Pulled {ref} with `concord pull` from the regional hub and with huggingface_hub's "
        f"snapshot_download from this hub ({how}): both copies have SHA-256 {a[:16]}…. "
        f"The installed task {task_name} loads the weights and reads a held-out digit:"
        f"\n{_drawing(x_test[0])}\npredicted {predicted}, true {int(y_test[0])} "
        f"(accuracy on all {len(y_test)} held-out digits: {accuracy:.1%}, job {job_id})."
    )


def _drawing(image: Any) -> str:
    """A square image (flattened, values in [0, 1]) as lines of shaded blocks."""
    import numpy as np

    pixels = np.asarray(image, dtype=float)
    side = round(len(pixels) ** 0.5)
    if side * side != len(pixels):
        return ""
    shades = " ░▒▓█"
    rows = pixels.reshape(side, side).clip(0, 1)
    if side > 16:  # MNIST's 28 × 28: average 2 × 2 blocks so the drawing fits a terminal
        half = side // 2
        rows = rows[: half * 2, : half * 2].reshape(half, 2, half, 2).mean(axis=(1, 3))
    return "\n".join(
        "    " + "".join(shades[int(v * (len(shades) - 1))] * 2 for v in row) for row in rows
    )


def audit_chapter(story: Story) -> None:
    """Step 6: an outsider checks every entry of the log, with its own remembered state."""
    primary = story.primary()
    state = story.folder / "audit" / "hub.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    done = _concord(
        CHAPTER_AUDIT, ["audit", primary, "--full", "--state", str(state)], {**os.environ}
    )
    verdict = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    story.facts["audit"] = verdict
    story.world.notes.append(f"`concord audit {primary} --full`: " + " · ".join(verdict or ["ok"]))


def impact_chapter(story: Story) -> None:
    """Step 7: the dashboard's headline figures, from the impact domain."""
    from concord.impact.indicators import dashboard

    with story.world.sessions() as db:
        items = {i.source.name: i for i in dashboard(db)}
    training, downloads, energy = items["training"], items["downloads"], items["energy"]
    table = Table("region", "members", "training (examples)", "downloads", title="Impact")
    downloads_by = {g.key: g.value for g in downloads.by_region}
    for g in training.by_region:
        table.add_row(g.label, str(g.members), f"{g.value:g}", f"{downloads_by.get(g.key, 0):g}")
    income = Table("income group", "members", "training (examples)", "downloads")
    income_downloads = {g.key: g.value for g in downloads.by_income}
    for g in training.by_income:
        income.add_row(
            g.label, str(g.members), f"{g.value:g}", f"{income_downloads.get(g.key, 0):g}"
        )
    story.facts["impact"] = {
        "training_members": training.participants,
        "south_share": training.south_share,
        "downloads": downloads.total,
        "energy_kwh": energy.total,
    }
    story.world.notes.append(
        f"Impact: {training.participants} members trained together "
        f"({training.south_share:.0%} of the examples from the Global South, which is "
        f"{training.south_membership:.0%} of the membership); {downloads.total:g} downloads "
        f"from the commons; federated training used {energy.total * 1000:.3g} Wh — see /impact."
    )
    story.facts["impact_tables"] = [table, income]


CHAPTERS: list[tuple[str, Callable[[Story], None]]] = [
    (CHAPTER_MIRROR, mirror_chapter),
    (CHAPTER_PULL, pull_chapter),
    (CHAPTER_AUDIT, audit_chapter),
    (CHAPTER_IMPACT, impact_chapter),
]


def print_ending(story: Story, regional: RegionalHub | None) -> None:
    """The tables of the impact chapter and where to look next."""
    for table in story.facts.get("impact_tables", []):
        out.print(table)
    hub = story.world.settings.public_url.rstrip("/")
    places = [(f"{hub}/proposals/CP-2026-1", "the joint project, its opinion map, the ballot")]
    decided = story.world.facts.get("decided_by_method", {})
    if "stv" in decided:
        places.append((f"{hub}/proposals/{decided['stv']}/result", "the bureau, elected by STV"))
    if "score" in decided:
        places.append(
            (f"{hub}/proposals/{decided['score']}/result", "capacity priorities, by score")
        )
    found = story.model()
    if found is not None:
        ref, job_id, _task = found
        places += [
            (f"{hub}/jobs/{job_id}", "the federated job's rounds and accuracy"),
            (f"{hub}/commons/models/{ref}", "the model, its card and provenance"),
        ]
        if regional is not None:
            places.append((f"{regional.url}/commons/models/{ref}", "the regional hub's mirror"))
    places += [
        (f"{hub}/log", "the transparency log"),
        (f"{hub}/impact", "who took part, who benefits, the energy"),
    ]
    out.print("\n[bold]Where to look[/]")
    width = max(len(url) for url, _what in places)
    for url, what in places:
        # Addresses stay whole on narrow terminals, so that they can be clicked.
        out.print(f"  {url.ljust(width)}  {what}", soft_wrap=True, highlight=False)
