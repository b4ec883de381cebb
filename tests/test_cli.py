"""The command line: a thin shell over the library, with coded exit codes."""

from __future__ import annotations

from typer.testing import CliRunner

from concord.cli import app

runner = CliRunner()


def test_member_lifecycle_from_the_cli(cli_env) -> None:
    r = runner.invoke(app, ["member", "add", "kenya", "--name", "Kenya", "--country", "KE"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["member", "list", "--json"])
    assert '"kenya"' in r.output
    r = runner.invoke(app, ["member", "suspend", "kenya", "--reason", "dues"])
    assert "suspended" in r.output
    r = runner.invoke(app, ["member", "show", "kenya"])
    assert "suspended" in r.output and "Sub-Saharan Africa" in r.output


def test_errors_become_exit_codes(cli_env) -> None:
    r = runner.invoke(app, ["member", "add", "x1", "--name", "X", "--country", "ZZ"])
    assert r.exit_code == 2
    assert "member.unknown_country" in r.output
    r = runner.invoke(app, ["member", "show", "nobody"])
    assert r.exit_code == 4


def test_person_and_token(cli_env) -> None:
    runner.invoke(app, ["member", "add", "peru", "--name", "Peru", "--country", "PE"])
    r = runner.invoke(
        app, ["person", "add", "ana@peru.example", "--name", "Ana", "--member", "peru"]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["token", "create", "ana@peru.example", "--days", "3"])
    assert r.exit_code == 0
    secret = r.output.strip().splitlines()[-1]
    assert secret.startswith("cnd_")
    r = runner.invoke(app, ["token", "list", "ana@peru.example"])
    assert secret not in r.output


def test_uninitialised_database_is_explained(tmp_path, monkeypatch) -> None:
    from concord.config import get_settings

    monkeypatch.setenv("CONCORD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONCORD_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    get_settings.cache_clear()
    r = runner.invoke(app, ["member", "list"])
    get_settings.cache_clear()
    assert r.exit_code == 6
    assert "concord init" in r.output


def test_keys_generate_registers_public_half_only(cli_env, live_server, make, tmp_path) -> None:
    ghana = make.delegate("ghana", "GH")
    key_file = tmp_path / "ghana.pem"
    args = [
        "keys",
        "generate",
        "--member",
        "ghana",
        "--hub",
        live_server,
        "--token",
        ghana.token,
        "--key-file",
        str(key_file),
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in key_file.read_bytes()
    r = runner.invoke(app, args)
    assert r.exit_code == 5  # the key file exists: rotation needs --force
    r = runner.invoke(app, [*args, "--force"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "keys",
            "generate",
            "--member",
            "peru",
            "--hub",
            live_server,
            "--token",
            ghana.token,
            "--key-file",
            str(tmp_path / "p.pem"),
        ],
    )
    assert r.exit_code == 4 or r.exit_code == 3
