"""Settings: one typed object read from `CONCORD_*` environment variables and `.env`.

Every field carries help text; `tests/test_config.py` fails when a setting is missing from
`docs/settings.md`, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The hub's settings. Paths default to places inside the data folder."""

    model_config = SettingsConfigDict(env_prefix="CONCORD_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("concord-data"),
        description="Folder holding the embedded database, the local store and the hub's key.",
    )
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL of the database. Empty means a SQLite file `concord.db` in the data "
            "folder (WAL mode). Use `postgresql+psycopg://user:pass@host/db` for PostgreSQL."
        ),
    )
    storage_url: str = Field(
        default="",
        description=(
            "Where content is stored. Empty means the folder `store/` in the data folder; "
            "`file:///path` names another folder, `s3://bucket/prefix?endpoint=URL` "
            "S3-compatible storage (credentials from the usual `AWS_*` variables)."
        ),
    )
    s3_endpoint_url: str = Field(
        default="",
        description=(
            "Endpoint of the S3-compatible service when `storage_url` is `s3://…` and names "
            "none; empty means AWS itself."
        ),
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The URL at which members and auditors reach this hub.",
    )
    signing_key_path: Path | None = Field(
        default=None,
        description=(
            "PEM file with the hub's Ed25519 signing key (signs tree heads, manifests, "
            "certificates). Empty means `hub-signing-key.pem` in the data folder, created on init."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `concord serve` listens on.")
    port: int = Field(default=8000, description="Port `concord serve` listens on.")
    max_body_bytes: int = Field(
        default=1_048_576,
        description="Largest request body accepted by the API and pages (uploads excepted).",
    )
    max_upload_bytes: int = Field(
        default=64 * 1024**3,
        description="Largest body accepted by upload routes (commons files, model updates).",
    )
    member_upload_bytes: int = Field(
        default=64 * 1024**3,
        ge=1,
        description=(
            "Most upload bytes one member may have in flight at once in a hub process (model "
            "updates and commons files together); more is refused with 429 until some finish."
        ),
    )
    token_days: int = Field(
        default=90, description="Days an API token lives unless its creator says otherwise."
    )
    session_hours: int = Field(default=12, description="Hours a browser sign-in lasts.")
    default_language: str = Field(
        default="en",
        description=(
            "Interface language when the browser asks for none we speak: ar zh en fr ru es."
        ),
    )
    secure_cookies: bool = Field(
        default=False,
        description=(
            "Mark cookies `Secure`. Always on when `public_url` is `https://…` (then the hub "
            "also sends HSTS); turn on by hand only behind an HTTPS proxy with an http public URL."
        ),
    )
    node_timeout_s: int = Field(
        default=900,
        ge=30,
        description=(
            "A node not heard from for this many seconds is not chosen for new rounds "
            "(nodes poll every 25 s when idle; raise it above your longest local training)."
        ),
    )

    @model_validator(mode="after")
    def _secure_over_https(self) -> Settings:
        # A cookie sent without `Secure` from an https hub can leak over a plain-http request.
        if self.public_url.lower().startswith("https://"):
            self.secure_cookies = True
        return self

    def database(self) -> str:
        """The database URL, with the embedded default filled in."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'concord.db').resolve()}"

    def storage(self) -> str:
        """The storage URL, with the embedded default filled in."""
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "store").resolve().as_uri()

    def local_store(self) -> Path:
        """A folder for files that stay on this machine: the store's own folder when content
        lives in a folder, else `store/` in the data folder (an S3 URL names no local path)."""
        parsed = urlparse(self.storage())
        if parsed.scheme == "file":
            return Path(unquote(parsed.path))
        return (self.data_dir / "store").resolve()

    def signing_key(self) -> Path:
        """Where the hub's signing key lives."""
        return self.signing_key_path or self.data_dir / "hub-signing-key.pem"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
