"""`concord node approve` moves results out of the waiting folder only when the hub took them,
or when their campaign can no longer take them; it names every refusal and exits with 1."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from concord.cli import app
from concord.federation import evaluator
from concord.members import keys

runner = CliRunner()


def _approve(hub: str, token: str, key: Path, state: Path) -> tuple[int, str]:
    done = runner.invoke(
        app,
        [
            *("node", "approve", "--member", "kenya", "--state", str(state)),
            *("--hub", hub, "--token", token, "--key-file", str(key)),
        ],
    )
    # The console wraps at its width, which differs between a terminal and CI: compare words.
    return done.exit_code, " ".join(done.output.split())


def test_results_the_hub_refused_stay_held_unless_their_campaign_is_gone(
    live_server: str, make, tmp_path: Path
) -> None:
    # Prepare: results held for a campaign the hub does not have
    kenya = make.delegate("kenya", "KE")
    key = tmp_path / "key.pem"
    keys.save_private(kenya.key, key)
    state = tmp_path / "state"
    payload = {
        "purpose": "concord.evaluation-results",
        "campaign": 999,
        "member": "kenya",
        "evaluation_set": "test",
        "results": [],
    }
    evaluator.hold(state, payload)
    # Execute: first with a token the hub does not accept, then with the member's own
    refused_code, refused_output = _approve(live_server, "not-a-token", key, state)
    still_held = [path.name for path, _payload in evaluator.held(state)]
    gone_code, gone_output = _approve(live_server, kenya.token, key, state)
    # Assert: a refusal that may pass keeps the results; a campaign that is gone does not
    assert refused_code == 1, refused_output
    assert "not taken" in refused_output and "kept, to send again" in refused_output
    assert still_held == ["campaign-999.json"]
    assert gone_code == 1, gone_output
    assert "federation.campaign_unknown" in gone_output and "moved to refused/" in gone_output
    assert evaluator.held(state) == []
    assert (state / "refused" / "campaign-999.json").exists()
    assert not (state / "released").exists()
