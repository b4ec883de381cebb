"""No request leaves a database transaction behind (issue #13, item 1).

An HTML error page asked for with any `concord_session` cookie used to re-open the handler's
closed session to look the cookie up, beginning a transaction that nothing ended: on SQLite
(`BEGIN IMMEDIATE`) every later write then waited for the lock and failed.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from tests.security.helpers import open_deliberation, say

from concord.config import Settings

HTML = {"accept": "text/html"}
MADE_UP = {"concord_session": "made-up-session-cookie"}


def write_lock_is_free(settings: Settings) -> bool:
    """On SQLite: another connection takes the write lock at once (timeout 0)."""
    url = make_url(settings.database())
    if url.get_backend_name() != "sqlite":
        return True
    connection = sqlite3.connect(str(url.database), timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


def settled(app: FastAPI, settings: Settings, within: float = 2.0) -> bool:
    """True once no connection is checked out and the write lock is free. The round ticker
    and event delivery borrow one for milliseconds; a leaked one never comes back."""
    ends = time.monotonic() + within
    while True:
        if app.state.engine.pool.checkedout() == 0 and write_lock_is_free(settings):
            return True
        if time.monotonic() > ends:
            return False
        time.sleep(0.01)


def test_error_page_with_made_up_cookie_leaves_writes_free(
    live_server: str, settings: Settings, app: FastAPI, make: Any
) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    with httpx.Client(base_url=live_server, timeout=10) as http:
        ref = open_deliberation(http, kenya)
        # Execute: error pages (a page that raises NotFound, and an unknown address)
        missing = http.get("/proposals/NO-SUCH-REF", headers=HTML, cookies=MADE_UP)
        unknown = http.get("/no/such/page", headers=HTML, cookies=MADE_UP)
        free = settled(app, settings)
        written = say(http, kenya, ref, "Still writable.")
    # Assert
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]
    assert free, "an error page left a connection checked out or the write lock held"
    assert written.status_code == 201, written.text


def _requests(client: TestClient, kenya: Any, ref: str, cookie: str) -> list[tuple[str, Any]]:
    """A varied set of requests: pages, coded errors, 404s, 405s, validation errors."""
    signed_in = {"concord_session": cookie}
    bad_token = {"Authorization": "Bearer not-a-token"}
    calls: list[tuple[str, Any]] = []
    for cookies in ({}, MADE_UP, signed_in):
        client.cookies.clear()
        for name, value in cookies.items():
            client.cookies.set(name, value)
        calls += [
            ("home", client.get("/", headers=HTML)),
            ("page", client.get("/proposals", headers=HTML)),
            ("page error", client.get("/proposals/NO-SUCH-REF", headers=HTML)),
            ("unknown page", client.get("/no/such/page", headers=HTML)),
            ("page 405", client.delete("/", headers=HTML)),
            ("api 404", client.get("/api/proposals/NO-SUCH-REF")),
            ("api unknown", client.get("/api/no/such/thing")),
            ("api 405", client.delete("/api/proposals")),
            ("api invalid", client.post("/api/proposals", headers=kenya.headers, json={})),
            ("api bad token", client.post("/api/proposals", headers=bad_token, json={})),
            ("api forbidden", client.post("/api/members", headers=kenya.headers, json={})),
            ("api write", say(client, kenya, ref, "A statement.")),
            ("api html 404", client.get("/api/no/such/thing", headers=HTML)),
            ("form no csrf", client.post("/sign-out", headers=HTML)),
        ]
    client.cookies.clear()
    return calls


def test_no_request_keeps_a_connection_or_a_transaction(
    client: TestClient, app: FastAPI, settings: Settings, make: Any
) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    ref = open_deliberation(client, kenya)
    signed_in = client.post(
        "/sign-in",
        data={"token": kenya.token, "csrf": "c"},
        cookies={"concord_csrf": "c"},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
    cookie = signed_in.cookies["concord_session"]
    pool = app.state.engine.pool
    # Execute: after each request, look at the pool and the lock
    leaks = []
    statuses = set()
    for name, response in _requests(client, kenya, ref, cookie):
        statuses.add(response.status_code)
        if not settled(app, settings):
            leaks.append((name, response.status_code, pool.checkedout()))
    # Assert
    assert leaks == []
    assert {200, 201, 401, 403, 404, 405, 422} <= statuses


@pytest.mark.parametrize("path", ["/proposals/NO-SUCH-REF", "/no/such/page"])
def test_error_page_still_knows_who_is_signed_in(client: TestClient, make: Any, path: str) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    signed_in = client.post(
        "/sign-in",
        data={"token": kenya.token, "csrf": "c"},
        cookies={"concord_csrf": "c"},
        follow_redirects=False,
    )
    # Execute
    page = client.get(
        path, headers=HTML, cookies={"concord_session": signed_in.cookies["concord_session"]}
    )
    # Assert
    assert page.status_code == 404
    assert kenya.person.name in page.text
