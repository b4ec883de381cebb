"""The schema is owned by Alembic: migrations and ORM tables agree, and upgrading is idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from concord.db import Base, is_current, upgrade
from concord.domains import domain_modules


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine)
    assert is_current(engine)


def test_tables_match_migrations(engine: Engine) -> None:
    domain_modules("tables")
    import concord.events  # noqa: F401

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    # Index naming may differ between backends; tables and columns must not.
    relevant = [
        d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")
    ]
    assert not relevant, relevant
