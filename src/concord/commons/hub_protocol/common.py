"""What the Hub-protocol routes share: the repository a URL names, and who may write to it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from concord.commons import repositories as repos
from concord.commons.tables import Repository
from concord.errors import N_, Invalid
from concord.members.people import acting_member
from concord.members.tables import Member, Person

# The Hub writes "models"/"datasets" in its API paths; Concord's kinds are singular.
KINDS = {"models": "model", "datasets": "dataset"}


class UnsupportedKind(Invalid):
    code = "commons.hub_unsupported_kind"
    message = N_("The commons holds models and datasets only, not “{kind}”.")


def kind_in(request: Request) -> str:
    """The kind named by a `/api/models/…` or `/api/datasets/…` path."""
    plural = request.url.path.split("/")[2]
    if plural not in KINDS:
        raise UnsupportedKind(kind=plural)
    return KINDS[plural]


Handler = Callable[..., Any]


def on(router: APIRouter, method: str, tail: str) -> Callable[[Handler], Handler]:
    """Registers a handler under both `/api/models{tail}` and `/api/datasets{tail}` (literal
    prefixes, so that no other domain's `/api/…` address is ever taken)."""

    def register(handler: Handler) -> Handler:
        for plural in KINDS:
            router.add_api_route(f"/api/{plural}{tail}", handler, methods=[method.upper()])
        return handler

    return register


def writable(
    db: Session, person: Person, kind: str, owner: str, name: str
) -> tuple[Repository, Member]:
    """The repository and the member writing to it, by the same rule as `concord push`: a
    delegate of the owning member, in good standing. The repository is looked up after the
    writer is known, so that strangers learn nothing from the answer."""
    member = acting_member(db, person, owner)
    return repos.require(db, kind, owner, name), member


def hub_time(moment: datetime) -> str:
    """The Hub's timestamp format: UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def repo_url(request: Request, kind: str, repo_id: str) -> str:
    base = str(request.base_url).rstrip("/")
    prefix = "" if kind == "model" else "datasets/"
    return f"{base}/{prefix}{quote(repo_id)}"
