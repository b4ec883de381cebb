"""The member directory: admission, suspension, reinstatement and withdrawal.

Every change of standing is dated, kept in the member's history, and logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Invalid, NotFound
from concord.ledger.log import append
from concord.members.blocs import member_blocs
from concord.members.countries import Country, country
from concord.members.tables import Member, MemberStatusChange
from concord.members.tokens import end_sessions

KINDS = ("country", "university", "ministry", "lab", "company", "ngo")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class UnknownMember(NotFound):
    code = "member.unknown"
    message = N_("There is no member “{member}”.")


class DuplicateMember(Conflict):
    code = "member.duplicate"
    message = N_("A member “{slug}” exists already.")


class DuplicateDelegation(Conflict):
    code = "member.duplicate_delegation"
    message = N_("{country} already has a country delegation: “{slug}”.")


class BadMember(Invalid):
    code = "member.invalid"
    message = N_("The member is not valid: {reason}")


class BadStanding(Conflict):
    code = "member.bad_standing"
    message = N_("Member “{member}” is {status}; it cannot be {action}.")


class MemberNotActive(Conflict):
    code = "member.not_active"
    message = N_("Member “{member}” is {status} and cannot act.")


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member with its country's facts, as the API and pages show it."""

    member: Member
    country: Country
    blocs: list[str]


def admit(
    session: Session, *, slug: str, name: str, kind: str, country_code: str, reason: str = ""
) -> Member:
    """Admits a new member; one country delegation per country."""
    slug = slug.strip().lower()
    if not SLUG.match(slug):
        raise BadMember(
            reason=N_("the handle uses lowercase letters, digits and hyphens (2 to 63)")
        )
    if kind not in KINDS:
        raise BadMember(
            reason=N_("the kind must be country, university, ministry, lab, company or ngo")
        )
    if not name.strip() or len(name) > 200:
        raise BadMember(reason=N_("the name must have 1 to 200 characters"))
    c = country(country_code)
    if session.scalars(select(Member).where(Member.slug == slug)).first():
        raise DuplicateMember(slug=slug)
    if kind == "country":
        existing = session.scalars(
            select(Member).where(
                Member.kind == "country",
                Member.country_code == c.iso2,
                Member.status != "withdrawn",
            )
        ).first()
        if existing:
            raise DuplicateDelegation(country=c.name, slug=existing.slug)
    now = utcnow()
    member = Member(
        slug=slug,
        name=name.strip(),
        kind=kind,
        country_code=c.iso2,
        status="active",
        admitted_at=now,
    )
    session.add(member)
    session.flush()
    _record(session, member, "admitted", reason)
    return member


def _record(session: Session, member: Member, action: str, reason: str) -> None:
    entry = append(
        session,
        f"member.{action}",
        {
            "member": member.id,
            "slug": member.slug,
            "name": member.name,
            "kind": member.kind,
            "country": member.country_code,
            "reason": reason,
        },
        member_id=member.id,
    )
    session.add(
        MemberStatusChange(
            member_id=member.id,
            action=action,
            at=entry.created_at,
            reason=reason,
            log_index=entry.index,
        )
    )
    session.flush()


def suspend(session: Session, member: Member, reason: str = "") -> Member:
    """Suspends an active member: it keeps its records but cannot act."""
    _require_status(member, "active", N_("suspended"))
    member.status = "suspended"
    member.suspended_at = utcnow()
    end_sessions(session, member_id=member.id)  # its delegates' browsers are signed out now
    _record(session, member, "suspended", reason)
    return member


def reinstate(session: Session, member: Member, reason: str = "") -> Member:
    """Lifts a suspension."""
    _require_status(member, "suspended", N_("reinstated"))
    member.status = "active"
    member.suspended_at = None
    _record(session, member, "reinstated", reason)
    return member


def withdraw(session: Session, member: Member, reason: str = "") -> Member:
    """Records a member's withdrawal; final."""
    if member.status == "withdrawn":
        raise BadStanding(member=member.slug, status=member.status, action=N_("withdrawn"))
    member.status = "withdrawn"
    member.withdrawn_at = utcnow()
    end_sessions(session, member_id=member.id)
    _record(session, member, "withdrawn", reason)
    return member


def _require_status(member: Member, status: str, action: str) -> None:
    if member.status != status:
        raise BadStanding(member=member.slug, status=member.status, action=action)


def require_active(member: Member) -> None:
    """Raises unless `member` may act (vote, train, publish)."""
    if member.status != "active":
        raise MemberNotActive(member=member.slug, status=member.status)


def get_member(session: Session, ref: str | int) -> Member:
    """A member by id or handle."""
    member: Member | None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        member = session.get(Member, int(ref))
    else:
        member = session.scalars(select(Member).where(Member.slug == ref.lower())).first()
    if member is None:
        raise UnknownMember(member=str(ref))
    return member


def get_members(session: Session, refs: list[str] | list[int] | list[str | int]) -> list[Member]:
    """The members named by id or handle, in one query (`get_member` for each would be a query
    each, and a node's long poll asks this of every job); raises for the first unknown one."""
    named = [str(ref) for ref in refs]
    ids = {int(ref) for ref in named if ref.isdigit()}
    slugs = {ref.lower() for ref in named if not ref.isdigit()}
    rows = session.scalars(select(Member).where(or_(Member.id.in_(ids), Member.slug.in_(slugs))))
    found = list(rows)
    by_id = {member.id: member for member in found}
    by_slug = {member.slug: member for member in found}
    members = []
    for ref in named:
        member = by_id.get(int(ref)) if ref.isdigit() else by_slug.get(ref.lower())
        if member is None:
            raise UnknownMember(member=ref)
        members.append(member)
    return members


def view(session: Session, member: Member) -> MemberView:
    """The member with its country and blocs."""
    return MemberView(member, country(member.country_code), member_blocs(session, member))


def list_members(
    session: Session,
    *,
    query: str = "",
    region: str = "",
    income_group: str = "",
    status: str = "",
    kind: str = "",
) -> list[MemberView]:
    """Members ordered by name, filtered by text, region, income group, standing or kind."""
    stmt = select(Member).order_by(func.lower(Member.name))
    if query:
        pattern = f"%{query.lower()}%"
        stmt = stmt.where(or_(func.lower(Member.name).like(pattern), Member.slug.like(pattern)))
    if status:
        stmt = stmt.where(Member.status == status)
    if kind:
        stmt = stmt.where(Member.kind == kind)
    views = [view(session, m) for m in session.scalars(stmt).all()]
    if region:
        views = [
            v
            for v in views
            if region.lower() in (v.country.region.lower(), v.country.sub_region.lower())
        ]
    if income_group:
        views = [v for v in views if v.country.income_group == income_group]
    return views
