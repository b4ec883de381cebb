"""A failed event is not lost (issue #13, item 12): a handler that raises is retried with
backoff; one that keeps failing ends `failed`, shown to the secretariat (CLI and page), who can
retry it; and writes wake one long-lived courier instead of starting a thread each."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from tests.security.helpers import open_deliberation, say
from typer.testing import CliRunner

from concord import events
from concord.cli import app as cli
from concord.config import Settings
from concord.db import utcnow

NAME = "test.flaky"


class Flaky:
    """A handler that raises its first `failures` calls, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, session: Session, payload: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"the job store is down (call {self.calls})")


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], Flaky]:
    def install(failures: int) -> Flaky:
        flaky = Flaky(failures)
        monkeypatch.setitem(events._handlers, NAME, [flaky])
        return flaky

    return install


def publish(sessions: sessionmaker[Session]) -> int:
    with sessions() as db:
        event = events.publish(db, NAME, {"project": 7})
        db.commit()
        return event.id


def look(sessions: sessionmaker[Session], event_id: int) -> events.Event:
    with sessions() as db:
        return events.get_event(db, event_id)


def test_a_failing_handler_is_retried_with_backoff_until_it_succeeds(
    sessions: sessionmaker[Session], settings: Settings, handler: Callable[[int], Flaky]
) -> None:
    # Prepare
    flaky = handler(2)
    event_id = publish(sessions)
    now = utcnow()
    # Execute
    events.deliver_pending(sessions, settings, now=now)
    first = look(sessions, event_id)
    events.deliver_pending(sessions, settings, now=now)  # not due yet: not tried again
    early = flaky.calls
    events.deliver_pending(sessions, settings, now=now + timedelta(hours=1))
    second = look(sessions, event_id)
    events.deliver_pending(sessions, settings, now=now + timedelta(hours=3))
    last = look(sessions, event_id)
    # Assert
    assert first.state == "retrying" and first.attempts == 1
    assert first.error is not None and "job store is down (call 1)" in first.error
    assert first.next_attempt_at is not None and first.next_attempt_at > now
    assert early == 1
    assert second.state == "retrying" and second.attempts == 2
    assert second.next_attempt_at is not None and first.next_attempt_at is not None
    assert second.next_attempt_at - (now + timedelta(hours=1)) > first.next_attempt_at - now
    assert last.state == "delivered" and last.attempts == 3 and flaky.calls == 3


def test_the_courier_retries_on_its_own(
    app: FastAPI,
    settings: Settings,
    handler: Callable[[int], Flaky],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: retries 50 ms apart
    monkeypatch.setattr(events, "BACKOFF_S", 0.05)
    flaky = handler(2)
    sessions = app.state.sessions
    event_id = publish(sessions)
    # Execute: what the app does after a write
    events.deliver_in_background(sessions, settings)
    ends = time.monotonic() + 10
    while look(sessions, event_id).state != "delivered" and time.monotonic() < ends:
        time.sleep(0.05)
    # Assert
    assert look(sessions, event_id).state == "delivered"
    assert flaky.calls == 3


runner = CliRunner()


def test_an_event_that_keeps_failing_is_failed_shown_and_retried(
    client: TestClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    cli_env: dict[str, str],
    handler: Callable[[int], Flaky],
    monkeypatch: pytest.MonkeyPatch,
    make: Any,
) -> None:
    # Prepare: an event whose handler fails every time, until the second retry
    monkeypatch.setattr(events, "MAX_ATTEMPTS", 3)
    flaky = handler(4)
    event_id = publish(sessions)
    now = utcnow()
    for hours in range(3):
        events.deliver_pending(sessions, settings, now=now + timedelta(hours=hours * 2))
    staff, delegate = make.secretariat(), make.delegate("kenya", "KE")
    # Execute
    listed = runner.invoke(cli, ["events", "list", "--failed", "--json"])
    page = as_person(client, staff).get("/events")
    refused = as_person(client, delegate).get("/events")
    client.cookies.clear()
    anonymous = client.get("/events")
    again = runner.invoke(cli, ["events", "retry", str(event_id)])  # fails a 4th time
    retried = as_person(client, staff).post(
        f"/events/{event_id}/retry", data={"csrf": "c"}, follow_redirects=False
    )
    events.wait_for_deliveries()
    # Assert
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["id"], r["state"], r["attempts"]) for r in rows] == [(event_id, "failed", 3)]
    assert "job store is down (call 3)" in rows[0]["error"]
    assert page.status_code == 200
    assert f'id="event-{event_id}"' in page.text and "job store is down (call 3)" in page.text
    assert refused.status_code == 403
    assert anonymous.status_code == 401
    assert again.exit_code == 0 and "retrying" in again.output
    assert retried.status_code == 303
    assert look(sessions, event_id).state == "delivered" and flaky.calls == 5
    gone = runner.invoke(cli, ["events", "retry", str(event_id)])
    assert gone.exit_code != 0 and "event.delivered" in gone.output


def as_person(client: TestClient, actor: Any) -> TestClient:
    """Signs `actor` in on the test client's browser (session and CSRF cookies)."""
    client.cookies.clear()
    client.cookies.set("concord_csrf", "c")
    signed = client.post(
        "/sign-in", data={"token": actor.token, "csrf": "c"}, follow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    client.cookies.set("concord_session", signed.cookies["concord_session"])
    return client


def test_writes_start_no_thread(
    client: TestClient, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: warm the worker pools, then count every thread started
    kenya = make.delegate("kenya", "KE")
    ref = open_deliberation(client, kenya)
    for n in range(5):
        say(client, kenya, ref, f"warm-up {n}")
    events.wait_for_deliveries()
    started: list[str] = []
    original = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    before = threading.active_count()
    # Execute
    counts = []
    for n in range(50):
        assert say(client, kenya, ref, f"statement {n}").status_code == 201
        counts.append(threading.active_count())
    events.wait_for_deliveries()
    # Assert
    # The server's thread pool may grow by a worker when two steps overlap; nothing else starts.
    assert [name for name in started if name != "AnyIO worker thread"] == []
    assert len(started) <= 2
    assert max(counts) <= before + 2
    assert sum(t.name == "concord-events" for t in threading.enumerate()) <= 1
