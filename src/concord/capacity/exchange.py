"""The exchange: members post needs and offers of compute, datasets, experts, training seats
and funding."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.capacity.programmes import zone
from concord.capacity.tables import ExchangeItem
from concord.commons import repositories
from concord.db import utcnow
from concord.errors import N_, Invalid, NotFound
from concord.i18n import LANGUAGES
from concord.ledger.log import append
from concord.members.tables import Member

KINDS = {
    "compute": (N_("compute"), N_("GPU-hours")),
    "dataset": (N_("dataset"), N_("datasets")),
    "expert": (N_("experts"), N_("expert-days")),
    "seats": (N_("training seats"), N_("seats")),
    "funding": (N_("funding"), N_("US dollars")),
}
SIDES = ("need", "offer")
REPO = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class BadItem(Invalid):
    code = "exchange.invalid"
    message = N_("The need or offer is not valid: {reason}")


class UnknownDataset(Invalid):
    code = "exchange.unknown_dataset"
    message = N_("There is no dataset “{dataset}” in the commons.")


class UnknownItem(NotFound):
    code = "exchange.unknown"
    message = N_("There is no need or offer {item}.")


def post(
    session: Session,
    member: Member,
    *,
    side: str,
    kind: str,
    title: str,
    quantity: float,
    languages: list[str],
    timezone: str,
    details: dict[str, Any] | None = None,
) -> ExchangeItem:
    """Posts a need or an offer for `member`. Logged."""
    details = dict(details or {})
    if side not in SIDES:
        raise BadItem(reason=N_("the side must be need or offer"))
    if kind not in KINDS:
        raise BadItem(reason=N_("the kind must be compute, dataset, expert, seats or funding"))
    if not title.strip() or len(title) > 200:
        raise BadItem(reason=N_("the title must have 1 to 200 characters"))
    if not quantity > 0 or quantity > 1e12:
        raise BadItem(reason=N_("the quantity must be a positive number"))
    if any(lang not in LANGUAGES for lang in languages):
        raise BadItem(reason=N_("languages must be among ar, zh, en, fr, ru, es"))
    zone(timezone)
    if kind == "dataset":
        reference = str(details.get("dataset", ""))
        if side == "offer":
            _check_dataset(session, reference)
    if kind == "expert" and not isinstance(details.get("fields", []), list):
        raise BadItem(reason=N_("an expert's fields are a list"))
    item = ExchangeItem(
        side=side,
        kind=kind,
        member_id=member.id,
        title=title.strip(),
        quantity=quantity,
        languages=languages,
        timezone=timezone,
        details=details,
        status="open",
        created_at=utcnow(),
    )
    session.add(item)
    session.flush()
    append(
        session,
        f"exchange.{side}",
        {"item": item.id, "kind": kind, "title": item.title, "quantity": quantity},
        member_id=member.id,
    )
    return item


def _check_dataset(session: Session, reference: str) -> None:
    """An offered dataset must exist in the commons."""
    if not REPO.match(reference):
        raise UnknownDataset(dataset=reference)
    if not repositories.exists(session, reference, kind="dataset"):
        raise UnknownDataset(dataset=reference)


def get_item(session: Session, item_id: int) -> ExchangeItem:
    item = session.get(ExchangeItem, item_id)
    if item is None:
        raise UnknownItem(item=item_id)
    return item


def list_items(
    session: Session, *, side: str = "", kind: str = "", status: str = ""
) -> list[ExchangeItem]:
    query = select(ExchangeItem).order_by(ExchangeItem.id.desc())
    if side:
        query = query.where(ExchangeItem.side == side)
    if kind:
        query = query.where(ExchangeItem.kind == kind)
    if status:
        query = query.where(ExchangeItem.status == status)
    return list(session.scalars(query).all())
