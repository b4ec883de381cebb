"""Shared fixtures: a real database (SQLite, or PostgreSQL when `CONCORD_DATABASE_URL` names
one), the app with an in-process client, a live server on 127.0.0.1, and a factory of members,
people, tokens and keys.

Each test run gets its own database (on PostgreSQL: a new database per xdist worker), migrated
once with the real Alembic migrations; every test starts from empty tables.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from concord.api import create_app
from concord.config import Settings, get_settings
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.members import directory, keys, people, tokens
from concord.members.tables import Member, Person

CHROMIUM = "/usr/bin/chromium"


def _postgres_url() -> str | None:
    url = os.environ.get("CONCORD_DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


# A module that runs the CLI or starts processes may reach the database through the inherited
# CONCORD_DATABASE_URL without asking for a fixture; its tests count as database tests unless
# marked `database_free` after review.
_REACHES_DATABASE = re.compile(r"CliRunner|subprocess|CONCORD_DATABASE_URL")


def _database_free(item: pytest.Item, sources: dict[Path, str]) -> bool:
    """True when the test cannot touch the database: no fixture it uses reaches
    `database_url`, and it starts no CLI or process that could (or is marked so by hand)."""
    uses_database = "database_url" in getattr(item, "fixturenames", ())
    marked = item.get_closest_marker("database_free") is not None
    if marked and uses_database:
        raise pytest.UsageError(f"{item.nodeid} is marked database_free but uses the database")
    if marked or uses_database:
        return marked
    path = Path(str(item.path))
    if path not in sources:
        sources[path] = path.read_text(encoding="utf-8")
    return _REACHES_DATABASE.search(sources[path]) is None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass of CI repeats only the tests that reach the database: the others
    (a third of the suite, among them the Ray cluster and the simulator) already ran in the
    SQLite pass and would give the same result. CONCORD_TEST_EVERY=1 runs them all."""
    if _postgres_url() is None or os.environ.get("CONCORD_TEST_EVERY"):
        return
    sources: dict[Path, str] = {}
    free = {id(item) for item in items if _database_free(item, sources)}
    if free:
        config.hook.pytest_deselected(items=[item for item in items if id(item) in free])
        items[:] = [item for item in items if id(item) not in free]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database for this test process, migrated to the code's schema."""
    server = _postgres_url()
    if server is None:
        path = tmp_path_factory.mktemp("db") / "concord.db"
        url = f"sqlite:///{path}"
        upgrade(make_engine(url))
        yield url
        return
    name = f"concord_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _empty_all_tables(engine: Engine) -> None:
    all_names = inspect(engine).get_table_names()
    names = [n for n in all_names if n != "alembic_version"]
    if engine.dialect.name == "postgresql":
        _truncate(engine, names)
        return
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        for name in names:
            connection.exec_driver_sql(f'DELETE FROM "{name}"')
        if "sqlite_sequence" in all_names:
            connection.exec_driver_sql("DELETE FROM sqlite_sequence")


def _truncate(engine: Engine, names: list[str], attempts: int = 5) -> None:
    """TRUNCATE takes its locks table by table, so a reader still finishing the previous
    test's work (a server thread, a delivery) can hold one table while waiting for another:
    PostgreSQL then ends one side as a deadlock, in CI once this fixture's. The reader's side
    is done by the next try."""
    quoted = ", ".join(f'"{n}"' for n in names)
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
            return
        except OperationalError as error:
            if "deadlock detected" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


@pytest.fixture
def settings(tmp_path: Path, database_url: str, engine: Engine) -> Settings:
    """Settings for one test: a fresh data folder and emptied tables."""
    from concord.events import wait_for_deliveries

    wait_for_deliveries()  # a previous test's background event delivery must not race us
    _empty_all_tables(engine)
    data = tmp_path / "data"
    data.mkdir()
    return Settings(data_dir=data, database_url=database_url, public_url="http://testserver")


@pytest.fixture
def empty_tables(engine: Engine) -> Any:
    """A callable that brings the database back to the state a test starts from, for tests
    that run many independent scenarios against one app (Hypothesis state machines)."""
    from concord.events import wait_for_deliveries

    def empty() -> None:
        wait_for_deliveries()
        _empty_all_tables(engine)

    return empty


@pytest.fixture
def sessions(settings: Settings, engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture(scope="session")
def reader(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, autocommit=True)
    yield engine
    engine.dispose()


@pytest.fixture
def db(settings: Settings, reader: Engine) -> Iterator[Session]:
    """A session in autocommit mode: every statement sees what is committed and holds no lock,
    so a test can look at the database between requests to the app. Library calls made through
    it are not atomic; open a transaction with `sessions()` where a test needs one."""
    with Session(reader, expire_on_commit=False) as session:
        yield session


@pytest.fixture(autouse=True)
def exact_opinion_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Maps recomputed on every change of votes, so a test sees its own vote in the next map
    read. A hub serves a map up to `MAP_MAX_AGE_S` stale; tests of that bound set it."""
    from concord.governance import deliberation

    monkeypatch.setattr(deliberation, "MAP_MAX_AGE_S", 0.0)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    # An app outlives its test (the module-level routers it includes keep it reachable), and
    # so would its pool: PostgreSQL refuses clients past 100 connections. Close the pool here.
    app.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Points the CLI (in process or as a subprocess) at this test's database and folder."""
    values = {
        "CONCORD_DATA_DIR": str(settings.data_dir),
        "CONCORD_DATABASE_URL": settings.database(),
        "CONCORD_KEY_DIR": str(tmp_path / "keys"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield values  # type: ignore[misc]
    get_settings.cache_clear()


@dataclass
class Actor:
    """A person with a token; for delegates, their member and its private key."""

    person: Person
    token: str
    member: Member | None = None
    key: Ed25519PrivateKey | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Factory:
    """Makes members, people, tokens and keys directly through the library."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.counter = 0

    def member(self, slug: str, country: str, kind: str = "country") -> Member:
        with self.sessions() as db:
            member = directory.admit(
                db, slug=slug, name=slug.replace("-", " ").title(), kind=kind, country_code=country
            )
            db.commit()
            return member

    def person(self, role: str, member: str | None = None, **extra: Any) -> Actor:
        self.counter += 1
        with self.sessions() as db:
            person = people.add_person(
                db,
                name=f"{role.title()} {self.counter}",
                email=f"{role}{self.counter}@test.example",
                role=role,
                member=member,
            )
            secret = tokens.issue(db, person, label="test", **extra).secret
            db.commit()
            db.refresh(person)
            return Actor(person=person, token=secret)

    def delegate(self, slug: str, country: str, kind: str = "country") -> Actor:
        """A new member with a delegate, a token and a registered key."""
        member = self.member(slug, country, kind)
        actor = self.person("delegate", member=slug)
        private = keys.generate()
        with self.sessions() as db:
            keys.register(db, db.get(Member, member.id), keys.public_base64(private))  # type: ignore[arg-type]
            db.commit()
        actor.member = member
        actor.key = private
        return actor

    def secretariat(self) -> Actor:
        return self.person("secretariat")

    def observer(self) -> Actor:
        return self.person("observer")


@pytest.fixture
def make(sessions: sessionmaker[Session]) -> Factory:
    return Factory(sessions)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app served by a real Uvicorn on 127.0.0.1, in a thread of this process."""
    port = free_port()
    # A node's long poll may still be open at teardown: give it 2 s, not its full 30.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    # Browsers on the live server send its origin with their forms: that is the public URL.
    app.state.settings.public_url = url
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (which must not download a browser of its own)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed here (Debian package chromium; .ci/run has it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """The test's output folder for screenshots (kept after the run)."""
    folder = Path("test-output") / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
