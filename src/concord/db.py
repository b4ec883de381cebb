"""Engine, sessions and migrations.

SQLite (WAL, foreign keys on) is the embedded default; PostgreSQL is used by URL. The schema is
owned by Alembic: each domain has its own branch of migrations (`migrations/versions/<domain>`),
so domains never edit each other's revisions, and `upgrade()` brings every branch to its head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    MetaData,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from concord.errors import NulCharacter

MIGRATIONS = Path(__file__).parent / "migrations"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every ORM table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)


def make_engine(url: str, *, autocommit: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a busy timeout.

    `autocommit=True` gives an engine whose every statement commits on its own and never holds
    a lock between statements: for tests and tools that only look.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _refuse_nul, retval=True)
        if autocommit:
            return engine
        # pysqlite's own transaction handling defers BEGIN; take it over so that a write
        # transaction starts with BEGIN IMMEDIATE and never deadlocks on lock upgrade.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if autocommit:
        kwargs["isolation_level"] = "AUTOCOMMIT"
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    event.listen(engine, "before_cursor_execute", _refuse_nul, retval=True)
    return engine


def _refuse_nul(
    _conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
) -> tuple[str, Any]:
    """Refuses text holding NUL before any database sees it, whichever request, form field,
    query or header it came from: PostgreSQL's text columns cannot store the character (the
    driver raises, a 500), and SQLite would store what PostgreSQL refuses, so one hub would
    accept what another loses. Bytes (file contents, keys) are not text and pass."""
    for value in _bound(parameters):
        if isinstance(value, str) and "\x00" in value:
            raise NulCharacter()
    return statement, parameters


def _bound(parameters: Any) -> list[Any]:
    """Every value bound to a statement, whatever the shape: a dict or a sequence for one row,
    a list of them for executemany, or one flat list of all the rows' values when SQLAlchemy
    inserts many rows as one statement ("insertmanyvalues", flagged as many all the same)."""
    if isinstance(parameters, dict):
        return list(parameters.values())
    if isinstance(parameters, list | tuple):
        out: list[Any] = []
        for item in parameters:
            out += _bound(item) if isinstance(item, dict | list | tuple) else [item]
        return out
    return [] if parameters is None else [parameters]


READ_ONLY = "concord_read_only"


def _sqlite_begin(conn: Connection) -> None:
    # A read-only session (`read_session`) begins a deferred transaction: in WAL mode a reader
    # neither waits for the write lock nor holds it, so reads cannot queue behind writes.
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def read_session(factory: sessionmaker[Session]) -> Session:
    """A session of `factory` for reading only (on SQLite it never takes the write lock);
    writing through it is a mistake that may fail with "database is locked"."""
    bind = factory.kw["bind"]
    return factory(bind=bind.execution_options(**{READ_ONLY: True}))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Config:
    """Alembic's configuration for our packaged migrations, bound to `engine`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    versions = sorted(str(p) for p in (MIGRATIONS / "versions").iterdir() if p.is_dir())
    config.set_main_option("version_locations", " ".join(versions))
    config.set_main_option("path_separator", "space")
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the head of every domain's branch."""
    command.upgrade(alembic_config(engine), "heads")


def is_current(engine: Engine) -> bool:
    """True when every revision of every branch has been applied."""
    from alembic.script import ScriptDirectory

    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    script = ScriptDirectory.from_config(alembic_config(engine))
    heads = tuple(r[0] for r in rows)
    applied = {rev.revision for rev in script.iterate_revisions(heads, "base") if rev}
    return all(rev.revision in applied for rev in script.walk_revisions())
