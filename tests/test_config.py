"""Settings: every one has a default and help text, and is documented."""

from __future__ import annotations

from pathlib import Path

from concord.config import Settings

ROOT = Path(__file__).parent.parent


def test_every_setting_has_help_and_default() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no help text"
        assert not field.is_required(), f"setting {name} has no default"


def test_every_setting_is_documented() -> None:
    docs = (ROOT / "docs" / "settings.md").read_text() + (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        variable = f"CONCORD_{name.upper()}"
        assert variable in docs, f"{variable} is not documented in docs/settings.md or README.md"


def test_defaults_are_embedded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CONCORD_DATABASE_URL", raising=False)
    monkeypatch.delenv("CONCORD_STORAGE_URL", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.database() == f"sqlite:///{(tmp_path / 'concord.db').resolve()}"
    assert settings.storage() == (tmp_path / "store").resolve().as_uri()
    assert settings.signing_key() == tmp_path / "hub-signing-key.pem"


def test_environment_overrides(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONCORD_PUBLIC_URL", "https://hub.example.org")
    monkeypatch.setenv("CONCORD_PORT", "9001")
    settings = Settings(data_dir=tmp_path)
    assert settings.public_url == "https://hub.example.org"
    assert settings.port == 9001
