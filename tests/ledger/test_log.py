"""The stored log: appends in the caller's transaction, roots and proofs from stored nodes,
signed heads, and the public API."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from concord.ledger import log, nodecache, tree
from concord.ledger.tables import LogEntry, LogNode
from concord.members import directory

from .conftest import fill


def _leaves(db: Session) -> list[bytes]:
    return list(db.scalars(select(LogEntry.leaf_hash).order_by(LogEntry.index)))


def test_entries_are_canonical_json(sessions) -> None:
    with sessions() as db, db.begin():
        entry = log.append(db, "member.admitted", {"b": 1, "a": "é"}, member_id=7)
    assert entry.index == 0
    assert entry.body.startswith(b'{"content":{"a":"\xc3\xa9","b":1},"kind":"member.admitted"')
    assert entry.leaf_hash == tree.leaf_hash(entry.body)


def test_roots_and_proofs_from_stored_nodes(sessions, monkeypatch) -> None:
    fill(sessions, 77)
    with sessions() as db:
        leaves = _leaves(db)
        assert log.current_root(db) == (77, tree.mth(leaves))
        for size in (1, 2, 31, 64, 77):
            assert log.root_at(db, size) == tree.mth(leaves[:size])
        for index, size in [(0, 1), (5, 8), (63, 64), (64, 77), (76, 77), (10, 33)]:
            assert log.inclusion_proof(db, index, size) == tree.path(index, leaves[:size])
        for few in (log.FEW_NODES, 0):  # PostgreSQL reads few nodes at once, many by level
            monkeypatch.setattr(log, "FEW_NODES", few)
            for size in range(1, 78):  # every index at every size, in batches
                expected = [tree.path(index, leaves[:size]) for index in range(size)]
                assert log.inclusion_proofs(db, list(range(size)), size) == expected
        for first, second in [(1, 77), (64, 77), (33, 64), (77, 77), (6, 8)]:
            assert log.consistency_proof(db, first, second) == tree.proof(first, leaves[:second])
        # One stored node per closed subtree: n - popcount(n) of them.
        assert db.scalar(select(func.count()).select_from(LogNode)) == 77 - bin(77).count("1")


def test_an_act_and_its_entry_commit_together(sessions) -> None:
    with pytest.raises(RuntimeError), sessions() as db, db.begin():
        directory.admit(db, slug="kenya", name="Kenya", kind="country", country_code="KE")
        raise RuntimeError("the act fails after logging")
    with sessions() as db:
        assert log.size(db) == 0
        assert db.scalar(select(func.count()).select_from(LogEntry)) == 0


def test_signed_heads_are_kept_and_verify(sessions, settings) -> None:
    from concord.hubkey import load_or_create, public_key_base64

    key = load_or_create(settings)
    public = base64.b64decode(public_key_base64(key))
    fill(sessions, 3)
    with sessions() as db:
        first = log.latest_head(db, key)
    with sessions() as db:
        assert log.latest_head(db, key) == first  # no growth, no new head
    fill(sessions, 2)
    with sessions() as db:
        second = log.latest_head(db, key)
        assert [h.size for h in log.heads(db)] == [5, 3]
    assert log.verify_head(public, first) and log.verify_head(public, second)
    forged = log.Head(second.size, first.root, second.timestamp, second.signature)
    assert not log.verify_head(public, forged)


def test_public_api(client: TestClient, sessions: sessionmaker[Session]) -> None:
    fill(sessions, 10)
    head = client.get("/api/log/head").json()
    assert head["size"] == 10 and len(head["root"]) == 64
    page = client.get("/api/log/entries", params={"start": 2, "end": 5}).json()
    assert [e["index"] for e in page] == [2, 3, 4]
    one = client.get("/api/log/entries/3").json()
    proof = client.get("/api/log/proof/inclusion", params={"index": 3, "size": 10}).json()
    assert tree.verify_inclusion(
        bytes.fromhex(one["leaf_hash"]),
        3,
        10,
        [bytes.fromhex(p) for p in proof["audit_path"]],
        bytes.fromhex(head["root"]),
    )
    cons = client.get("/api/log/proof/consistency", params={"first": 4, "second": 10}).json()
    assert len(cons["proof"]) > 0
    # A follower at the tip gets nothing new, not an error.
    assert client.get("/api/log/entries", params={"start": 10}).json() == []


def test_signed_heads_page_back(client: TestClient, sessions: sessionmaker[Session]) -> None:
    for _ in range(3):
        fill(sessions, 2)
        assert client.get("/api/log/head").status_code == 200  # signs a head at this size
    sizes = [h["size"] for h in client.get("/api/log/heads", params={"limit": 2}).json()]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 2
    older = client.get("/api/log/heads", params={"limit": 2, "before": sizes[-1]}).json()
    assert older and all(h["size"] < sizes[-1] for h in older)


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/api/log/proof/inclusion", {"index": 10, "size": 10}, "log.bad_size"),
        ("/api/log/proof/inclusion", {"index": 0, "size": 11}, "log.bad_size"),
        ("/api/log/proof/inclusion", {"index": -1, "size": 5}, "request.invalid"),  # at the edge
        ("/api/log/proof/consistency", {"first": 6, "second": 5}, "log.bad_range"),
        ("/api/log/proof/consistency", {"first": 0, "second": 5}, "log.bad_range"),
        ("/api/log/proof/consistency", {"first": 2, "second": 11}, "log.bad_range"),
        ("/api/log/proof/consistency", {"first": "x", "second": 5}, "request.invalid"),
        ("/api/log/entries/99", {}, "log.unknown_entry"),
        ("/api/log/entries", {"start": 5, "end": 5}, "log.bad_entry_range"),
        ("/api/log/entries", {"start": 11}, "log.bad_size"),
    ],
)
def test_malformed_proof_requests(client: TestClient, sessions, path, params, code) -> None:
    fill(sessions, 10)
    answer = client.get(path, params=params)
    assert answer.status_code in (404, 422)
    assert answer.json()["error"]["code"] == code


def test_log_page_shows_head_kinds_and_an_entry(client: TestClient, make) -> None:
    make.member("kenya", "KE")
    page = client.get("/log")
    assert page.status_code == 200
    assert "member.admitted" in page.text
    entry = client.get("/log", params={"entry": 0})
    assert "&#34;slug&#34;:&#34;kenya&#34;" in entry.text or '"slug":"kenya"' in entry.text


def test_the_node_cache_serves_upper_levels_and_forgets_a_replaced_log(
    sessions, engine, empty_tables
) -> None:
    from concord.ledger import nodecache

    cache = nodecache.cache_for(engine)
    cache.reset()  # the engine is the session's: an earlier test's longer log may be cached
    fill(sessions, 700)
    with sessions() as db:
        leaves = _leaves(db)
        assert log.inclusion_proof(db, 5, 700) == tree.path(5, leaves)
        # Its upper levels are kept: level-8 nodes (and above) and no lower one.
        assert (8, 1) in cache.nodes and all(level >= 8 for level, _i in cache.nodes)
        assert log.inclusion_proof(db, 600, 700) == tree.path(600, leaves)
    # The log is replaced under the hub by a longer, different one: nothing stale is served.
    empty_tables()
    fill(sessions, 800, kind="rewritten")
    with sessions() as db:
        leaves = _leaves(db)
        for index in (5, 300, 799):
            assert log.inclusion_proof(db, index, 800) == tree.path(index, leaves)
    # And by a shorter one: the cache is left alone while the log is shorter than it knew.
    empty_tables()
    fill(sessions, 520, kind="shorter")
    with sessions() as db:
        leaves = _leaves(db)
        assert log.inclusion_proof(db, 3, 520) == tree.path(3, leaves)
        assert log.root_at(db, 520) == tree.mth(leaves)


def test_a_single_proof_with_its_leaf_is_one_statement(
    sessions, engine, empty_tables, monkeypatch
) -> None:
    nodecache.cache_for(engine).reset()  # an earlier test's longer log may be cached
    fill(sessions, 700)
    statements: list[str] = []
    real_run = log._run

    def counted(session: Session, sql: str, params: tuple[object, ...]) -> list[object]:
        statements.append(sql)
        return real_run(session, sql, params)

    monkeypatch.setattr(log, "_run", counted)
    with sessions() as db:
        leaves = _leaves(db)
        log.proven_leaf(db, 0, 700)  # the first fills the node cache's upper levels
        for size in (1, 2, 255, 256, 257, 512, 699, 700):
            for index in {0, size // 3, size - 2, size - 1} - {-1}:
                statements.clear()
                leaf, path = log.proven_leaf(db, index, size)
                assert (leaf, path) == (leaves[index], tree.path(index, leaves[:size]))
                assert len(statements) == 1, statements
        for index, size in [(0, 701), (700, 700), (-1, 5), (0, -3)]:
            with pytest.raises(log.BadTreeSize):
                log.proven_leaf(db, index, size)
    # A log replaced under the hub: its cached nodes are not served for the new one.
    empty_tables()
    fill(sessions, 700, kind="rewritten")
    with sessions() as db:
        leaves = _leaves(db)
        for index in (5, 300, 699):
            assert log.proven_leaf(db, index, 700) == (leaves[index], tree.path(index, leaves))
