"""`concord audit` from outside, against a real hub on 127.0.0.1: it passes on an honest log
and fails, naming the first bad entry, on tampering, forks and key changes."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from concord.cli import app
from concord.ledger.audit import AuditFailed, KeyChanged, audit

from .conftest import fill


def test_honest_log_passes_sampled_and_full(live_server, sessions, audit_state) -> None:
    fill(sessions, 300)
    report = audit(live_server, sample=20)
    assert report.size == 300 and report.previous_size is None
    fill(sessions, 45)
    report = audit(live_server, full=True)
    assert report.size == 345 and report.previous_size == 300 and report.checked == 345


def test_cli_exit_codes(live_server, sessions, audit_state) -> None:
    fill(sessions, 20)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", live_server, "--full"])
    assert ok.exit_code == 0, ok.output
    _tamper(sessions, "UPDATE ledger_entries SET body = :body WHERE idx = 7", body=FORGED)
    bad = runner.invoke(app, ["audit", live_server, "--full"])
    assert bad.exit_code != 0
    assert "audit.failed" in bad.output and "entry 7" in bad.output


def _tamper(sessions: sessionmaker[Session], *statements: str, **params) -> None:
    with sessions() as db, db.begin():
        for sql in statements:
            db.execute(text(sql), params)


FORGED = b'{"kind":"forged"}'


@pytest.mark.parametrize(
    ("statements", "first_bad"),
    [
        # a changed entry, with its stored leaf hash left alone
        (["UPDATE ledger_entries SET body = :body WHERE idx = 13"], 13),
        # a changed entry whose leaf hash the tamperer also recomputed
        (["UPDATE ledger_entries SET body = :body, leaf_hash = :leaf WHERE idx = 21"], 21),
        # a deleted entry
        (["DELETE FROM ledger_entries WHERE idx = 30"], 30),
        # two entries swapped
        (
            [
                "UPDATE ledger_entries SET idx = -1 WHERE idx = 40",
                "UPDATE ledger_entries SET idx = 40 WHERE idx = 41",
                "UPDATE ledger_entries SET idx = 41 WHERE idx = -1",
            ],
            40,
        ),
        # a stored interior node changed: it covers entries 48 to 51, and the proofs that
        # use it are those of entries 52 to 55, so 52 is the first entry that fails
        (["UPDATE ledger_nodes SET hash = :leaf WHERE level = 2 AND idx = 12"], 52),
    ],
    ids=["body", "body-and-leaf", "deleted", "swapped", "node"],
)
def test_tampering_is_caught_and_named(
    live_server, sessions, audit_state, statements, first_bad
) -> None:
    from concord.ledger.tree import leaf_hash

    fill(sessions, 64)
    audit(live_server, full=True)
    _tamper(sessions, *statements, body=FORGED, leaf=leaf_hash(FORGED))
    with pytest.raises(AuditFailed) as caught:
        audit(live_server, full=True)
    assert f"entry {first_bad} " in caught.value.render("en"), caught.value.render("en")


def test_a_forked_log_is_caught_by_consistency(live_server, sessions, audit_state) -> None:
    fill(sessions, 50)
    audit(live_server)
    # The hub rewrites its history and signs a longer, different log with the same key.
    _tamper(
        sessions,
        "DELETE FROM ledger_entries",
        "DELETE FROM ledger_nodes",
        "DELETE FROM ledger_state",
        "DELETE FROM ledger_heads",
    )
    fill(sessions, 60, kind="rewritten")
    with pytest.raises(AuditFailed) as caught:
        audit(live_server)
    assert "forked or rewritten" in caught.value.render("en")


def test_a_changed_hub_key_is_refused(live_server, sessions, settings, audit_state) -> None:
    fill(sessions, 5)
    audit(live_server)
    settings.signing_key().unlink()  # the hub makes itself a new key on next use
    fill(sessions, 1)
    with pytest.raises(KeyChanged):
        audit(live_server)
