"""The CLI: propose, deliberate and ballot over HTTP against a live hub; the charter locally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from concord.cli import app
from concord.governance.tables import Ballot, CharterVersion
from concord.members import keys

runner = CliRunner()


def test_draft_to_decision_from_the_cli(
    cli_env: Any, live_server: str, assembly: dict[str, Any], tmp_path: Path, db: Session
) -> None:
    def as_(slug: str, *args: str) -> Any:
        result = runner.invoke(app, [*args, "--hub", live_server, "--token", assembly[slug].token])
        assert result.exit_code == 0, result.output
        return result

    for slug, actor in assembly.items():
        keys.save_private(actor.key, Path(cli_env["CONCORD_KEY_DIR"]) / f"{slug}.pem")
    made = as_(
        "kenya", "propose", "resolution", "--title", "Open models", "--text", "en=Share models."
    )
    ref = made.output.split()[1].rstrip(":")
    as_("kenya", "proposal", "deliberate", ref)
    as_("brazil", "statement", ref, "Open weights help small labs.")
    listed = as_("brazil", "statement", ref)
    statement_id = listed.output.split()[0].lstrip("#")
    as_("france", "vote", ref, statement_id, "agree")
    amended = as_("france", "proposal", "amend", ref, "--text", "Share open models.")
    amendment = amended.output.split()[1]
    as_("kenya", "proposal", "amendment-ballot", ref, amendment)
    for slug in ("kenya", "brazil", "india", "france"):
        as_(slug, "ballot", ref, "yes", "--amendment", amendment)
    assert "adopted" in as_("kenya", "proposal", "close", ref, "--amendment", amendment).output
    as_("kenya", "proposal", "open-ballot", ref)
    # a wrong key file: the hub refuses the signature with its coded error
    other = tmp_path / "other.pem"
    keys.save_private(keys.generate(), other)
    bad = runner.invoke(
        app,
        [
            "ballot",
            ref,
            "no",
            "--key-file",
            str(other),
            "--hub",
            live_server,
            "--token",
            assembly["kenya"].token,
        ],
    )
    assert bad.exit_code == 2 and "signature.invalid" in bad.output
    for slug in ("kenya", "brazil", "india", "france", "germany"):
        as_(slug, "ballot", ref, "yes")
    closed = as_("kenya", "proposal", "close", ref)
    assert "adopted under broad-consensus" in closed.output
    assert len(db.scalars(select(Ballot)).all()) == 5
    listed = runner.invoke(app, ["proposal", "list", "--hub", live_server])
    assert ref in listed.output and "adopted" in listed.output


def test_charter_from_the_cli(cli_env: Any, tmp_path: Path, db: Session) -> None:
    shown = runner.invoke(app, ["charter", "show"])
    assert shown.exit_code == 0 and "broad-consensus" in shown.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules.x\n")
    refused = runner.invoke(app, ["charter", "set", str(bad)])
    assert refused.exit_code == 2 and "charter.unparsable" in refused.output
    good = tmp_path / "good.toml"
    good.write_text(
        runner.invoke(app, ["charter", "presets"]).output.replace(
            'resolution = "broad-consensus"', 'resolution = "un-ga-simple"'
        )
    )
    stored = runner.invoke(app, ["charter", "set", str(good), "--note", "simpler resolutions"])
    assert stored.exit_code == 0, stored.output
    assert db.scalars(select(CharterVersion.version)).all() == [1]
    assert "un-ga-simple" in runner.invoke(app, ["charter", "show"]).output


def test_close_due_closes_only_expired_ballots(
    cli_env: Any, client: Any, assembly: dict[str, Any], sessions: Any, db: Session
) -> None:
    from datetime import timedelta

    from tests.governance.conftest import cast, resolution

    from concord.db import utcnow
    from concord.governance.tables import Proposal

    kenya = assembly["kenya"]
    refs = [resolution(client, kenya, t) for t in ("Due", "Later")]
    for ref in refs:
        client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
        later = (utcnow() + timedelta(hours=1)).isoformat()
        client.post(
            f"/api/proposals/{ref}/ballot", headers=kenya.headers, json={"closes_at": later}
        )
        cast(client, kenya, ref, "yes")
    with sessions() as session:  # the first one's time has come
        due = session.query(Proposal).filter_by(reference=refs[0]).one()
        due.closes_at = utcnow() - timedelta(seconds=1)
        session.commit()
    result = runner.invoke(app, ["proposal", "close-due"])
    assert result.exit_code == 0, result.output
    statuses = {p.reference: p.status for p in db.scalars(select(Proposal))}
    assert statuses == {refs[0]: "rejected", refs[1]: "ballot"}
    late = cast(client, kenya, refs[0], "no")
    assert late.json()["error"]["code"] == "ballot.closed"


def test_a_method_ballot_and_a_proxy_from_the_cli(
    cli_env: Any, live_server: str, assembly: dict[str, Any], db: Session
) -> None:
    def as_(slug: str, *args: str) -> Any:
        result = runner.invoke(app, [*args, "--hub", live_server, "--token", assembly[slug].token])
        assert result.exit_code == 0, result.output
        return result

    for slug, actor in assembly.items():
        keys.save_private(actor.key, Path(cli_env["CONCORD_KEY_DIR"]) / f"{slug}.pem")
    method = '{"name": "stv", "options": ["amina", "bao", "carla"], "seats": 2}'
    made = as_(
        "kenya", "propose", "resolution", "--title", "Bureau", "--text", "en=Elect.",
        "--method", method,
    )  # fmt: skip
    ref = made.output.split()[1].rstrip(":")
    as_("kenya", "proposal", "deliberate", ref)
    as_("kenya", "proposal", "open-ballot", ref)
    granted = as_("germany", "proxy", "grant", "kenya", "--proposal", ref)
    assert "kenya votes for germany" in granted.output
    bad = runner.invoke(
        app,
        ["ballot", ref, "stv", "--vote", "not json", "--hub", live_server,
         "--token", assembly["kenya"].token],
    )  # fmt: skip
    assert bad.exit_code == 2 and "cli.bad_option" in bad.output
    for slug, ranking in (
        ("kenya", '["amina", "bao"]'),
        ("brazil", '["carla", "amina"]'),
        ("india", '["bao", "amina"]'),
        ("france", '["carla", "bao"]'),
    ):
        as_(slug, "ballot", ref, "stv", "--vote", ranking)
    closed = as_("kenya", "proposal", "close", ref)
    # Germany's ballot by proxy (Kenya's ranking) gives amina a first preference in the north
    assert "adopted by stv" in closed.output
    elected = [line.split(". ")[1] for line in closed.output.splitlines()[1:]]
    assert sorted(elected) == ["amina", "carla"]
    decision = runner.invoke(app, ["proposal", "show", ref, "--hub", live_server])
    assert "adopted by stv" in decision.output
