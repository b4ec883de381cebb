"""A ballot cast while the ballot closes: counted by the decision, or refused — never logged
without being counted (found by benchmarks/load.py: two hubs, ballots in flight at close)."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from tests.governance.conftest import resolution, signed, to_ballot

from concord.governance import ballots, proposals
from concord.members.tables import Person


def _wait_until_blocked(engine: Engine, seconds: float = 1.0) -> None:
    """Until another transaction waits on a lock (PostgreSQL); SQLite: a pause."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if engine.dialect.name != "postgresql":
            time.sleep(seconds)
            return
        with engine.connect() as c:
            waiting = c.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
        if waiting:
            return
        time.sleep(0.02)


def test_a_ballot_in_flight_at_close_is_counted_by_the_decision(
    client: TestClient,
    assembly: dict[str, Any],
    sessions: sessionmaker[Session],
    engine: Engine,
) -> None:
    # Prepare: a resolution in its ballot; Brazil's ballot recorded (and logged) in a
    # transaction not yet committed, as on one hub process while another closes the ballot.
    kenya, brazil = assembly["kenya"], assembly["brazil"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    casting = sessions()
    ballots.cast(
        casting,
        casting.get(Person, brazil.person.id),  # type: ignore[arg-type]
        proposals.get(casting, ref),
        [signed(brazil, ref, "yes")],
    )
    closed: list[Any] = []

    def close() -> None:
        with sessions() as s:
            closed.append(
                ballots.close(s, s.get(Person, kenya.person.id), proposals.get(s, ref)).arithmetic
            )
            s.commit()

    closer = threading.Thread(target=close)
    # Execute: the close starts while the ballot is in flight; then the ballot commits.
    closer.start()
    _wait_until_blocked(engine)
    casting.commit()
    casting.close()
    closer.join(timeout=30)
    # Assert: the decision counts the ballot the log holds, and the recount agrees.
    assert closed and closed[0]["counts"]["yes"] == 1
    recount = [r for r in client.get("/api/governance/recount").json() if r["proposal"] == ref]
    assert recount and recount[0]["matches"], recount
