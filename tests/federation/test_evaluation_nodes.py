"""An evaluation campaign answered by real `concord node` processes against a real hub on
127.0.0.1: one site evaluates and sends, one holds its results until its operator runs
`concord node approve`, one declines by policy; the matrix (JSON and CSV) shows all three,
and a second campaign of the same revision pulls nothing again."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.federation.test_evaluation import _trained, publish

from concord.federation import data
from concord.federation.tasks.base import TaskData
from concord.federation.tasks.logreg import DigitsLogReg
from concord.ledger.tables import LogEntry
from concord.members import keys

pytestmark = pytest.mark.slow

POLICIES = {
    "kenya": 'evaluate = ["logreg-digits"]\n',
    "brazil": 'evaluate = ["logreg-digits"]\napprove_evaluations = true\n',
    "norway": 'tasks = ["logreg-digits"]\n',  # trains, evaluates nothing: declines
}
COUNTRIES = {"kenya": "KE", "brazil": "BR", "norway": "NO"}


def _concord(*args: str) -> list[str]:
    return [sys.executable, "-c", "from concord.cli import main; main()", *args]


def _node(actor: Any, site: Path, url: str) -> subprocess.Popen[str]:
    slug = actor.member.slug
    return subprocess.Popen(
        _concord(
            "node",
            *("--member", slug, "--data", str(site / "data"), "--hub", url),
            *("--token", actor.token, "--key-file", str(site / "key.pem")),
            *("--policy", str(site / "policy.toml"), "--idle-exit", "3", "--wait", "1"),
            "--no-energy",
        ),
        env={**os.environ, "COLUMNS": "200"},  # the summary on one line
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _run(processes: list[subprocess.Popen[str]]) -> list[str]:
    try:
        outputs = [p.communicate(timeout=180)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert all(p.returncode == 0 for p in processes), outputs
    return outputs


def test_real_nodes_evaluate_hold_and_decline_and_the_matrix_shows_them(
    live_server, make, sessions, settings, db, tmp_path
) -> None:
    # Prepare: three sites with their own test shares and policies; kenya's trained model and
    # an untrained baseline in the commons; brazil opens a campaign of both.
    actors = {slug: make.delegate(slug, code) for slug, code in COUNTRIES.items()}
    task = DigitsLogReg()
    x, y, x_test, y_test = task.split()
    train_parts = data.iid(len(x), 3, seed=1)
    test_parts = data.iid(len(x_test), 3, seed=2)
    sites: dict[str, Path] = {}
    for i, slug in enumerate(COUNTRIES):
        site = tmp_path / "sites" / slug
        tr, te = train_parts[i], test_parts[i]
        data.write_partition(site / "data", x[tr], y[tr], x_test[te], y_test[te])
        keys.save_private(actors[slug].key, site / "key.pem")
        (site / "policy.toml").write_text(POLICIES[slug])
        sites[slug] = site
    trained, baseline = _trained(epochs=3), _trained(seed=5, epochs=0)
    trained_sha = publish(sessions, settings, "kenya", "digits", trained, tmp_path)
    baseline_sha = publish(sessions, settings, "kenya", "baseline", baseline, tmp_path)
    brazil = actors["brazil"]
    opened = httpx.post(
        f"{live_server}/api/campaigns",
        json={
            "title": "Digits where we are",
            "task": "logreg-digits",
            "models": [{"repo": "kenya/digits"}, {"repo": "kenya/baseline"}],
            "metric": "accuracy",
            "threshold": 0.8,
        },
        headers=brazil.headers,
    )
    assert opened.status_code == 201, opened.text
    campaign = opened.json()["campaign_id"]

    # Execute: the nodes answer; then brazil's operator releases its held results.
    outputs = _run([_node(actors[slug], sites[slug], live_server) for slug in COUNTRIES])
    before = httpx.get(f"{live_server}/api/campaigns/{campaign}").json()
    approval = subprocess.run(
        _concord(
            "node",
            "approve",
            *("--member", "brazil", "--data", str(sites["brazil"] / "data")),
            *("--campaign", str(campaign), "--hub", live_server, "--token", brazil.token),
            *("--key-file", str(sites["brazil"] / "key.pem")),
        ),
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    after = httpx.get(f"{live_server}/api/campaigns/{campaign}").json()
    table = httpx.get(f"{live_server}/api/campaigns/{campaign}/matrix.csv").text

    # Assert: before approval, kenya's results are in, brazil's wait, norway declined.
    kenya_out, brazil_out, norway_out = outputs
    assert "campaigns evaluated 1, held 0, declined 0" in kenya_out, kenya_out
    assert "campaigns evaluated 0, held 1, declined 0" in brazil_out, brazil_out
    assert "campaigns evaluated 0, held 0, declined 1" in norway_out, norway_out
    row = before["models"][0]
    assert [c["member"] for c in row["cells"]] == ["kenya"]
    assert (row["held"], row["pending"], row["declined"]) == (["brazil"], ["brazil"], ["norway"])
    # The operator saw what leaves, then it left.
    assert approval.returncode == 0, approval.stdout + approval.stderr
    assert f"campaign {campaign} (test)" in approval.stdout
    assert "kenya/digits" in approval.stdout and "released" in approval.stdout
    assert not list((sites["brazil"] / "data" / ".concord-node" / "held").iterdir())
    digits, base = after["models"]
    assert [(m["repo"], m["revision"]) for m in after["models"]] == [
        ("kenya/digits", trained_sha),
        ("kenya/baseline", baseline_sha),
    ]
    for summary in (digits, base):
        assert [c["member"] for c in summary["cells"]] == ["brazil", "kenya"]
        assert (summary["pending"], summary["held"], summary["declined"]) == ([], [], ["norway"])
    # Each member's figure is the task's own evaluation on that member's test share.
    for i, slug in enumerate(["kenya", "brazil"]):
        te = test_parts[list(COUNTRIES).index(slug)]
        own = task.evaluate(trained, TaskData(x[:1], y[:1], x_test[te], y_test[te]))
        cell = next(c for c in digits["cells"] if c["member"] == slug)
        assert cell["metrics"]["accuracy"] == pytest.approx(own.metrics["accuracy"])
        assert cell["num_examples"] == len(te)
    assert digits["worst"] > 0.85 and base["worst"] < 0.5
    assert digits["pass_share"] == 1.0 and base["pass_share"] == 0.0
    assert set(digits["by_region"]) == {"Africa", "Americas"}
    assert digits["by_bloc"] == pytest.approx(
        {
            "south": (
                digits["cells"][0]["metrics"]["accuracy"]
                + digits["cells"][1]["metrics"]["accuracy"]
            )
            / 2
        }
    )
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [(r["repo"], r["member"], r["status"]) for r in rows] == [
        ("kenya/digits", "brazil", "result"),
        ("kenya/digits", "kenya", "result"),
        ("kenya/digits", "norway", "declined"),
        ("kenya/baseline", "brazil", "result"),
        ("kenya/baseline", "kenya", "result"),
        ("kenya/baseline", "norway", "declined"),
    ]
    assert float(rows[1]["accuracy"]) == pytest.approx(digits["cells"][1]["metrics"]["accuracy"])
    kinds = Counter(
        e.kind for e in db.scalars(select(LogEntry)).all() if e.kind.startswith("federation.camp")
    )
    assert kinds == {
        "federation.campaign_opened": 1,
        "federation.campaign_result": 2,
        "federation.campaign_held": 1,
        "federation.campaign_declined": 1,
    }

    # Execute again: a second campaign of the same trained revision; kenya's node pulls nothing.
    again = httpx.post(
        f"{live_server}/api/campaigns",
        json={"title": "Again", "task": "logreg-digits", "models": [{"repo": "kenya/digits"}]},
        headers=actors["kenya"].headers,
    ).json()["campaign_id"]
    (second,) = _run([_node(actors["kenya"], sites["kenya"], live_server)])

    # Assert: the cache answered; the figure is the same.
    assert "pulled 0 bytes" in second, second
    assert "pulled 0 bytes" not in kenya_out
    repeat = httpx.get(f"{live_server}/api/campaigns/{again}").json()["models"][0]
    assert [c["member"] for c in repeat["cells"]] == ["kenya"]
    assert repeat["cells"][0]["metrics"] == next(
        c["metrics"] for c in digits["cells"] if c["member"] == "kenya"
    )
