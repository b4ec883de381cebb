"""Blocs: named sets of members that the charter can refer to.

Built-in blocs follow from each member's country (Global South / North, UN regions and
sub-regions, World Bank income groups, LDC / LLDC / SIDS); custom blocs are stored lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import N_, Conflict, Invalid, NotFound
from concord.members.countries import INCOME_GROUPS, REGIONS, Country, all_countries, country
from concord.members.tables import CustomBloc, CustomBlocMember, Member

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class UnknownBloc(NotFound):
    code = "bloc.unknown"
    message = N_("There is no bloc called “{name}”.")


class BlocExists(Conflict):
    code = "bloc.exists"
    message = N_("A bloc called “{name}” exists already.")


class BadBlocName(Invalid):
    code = "bloc.bad_name"
    message = N_(
        "A bloc name uses lowercase letters, digits and hyphens (2 to 63), and may not "
        "contain a colon: “{name}”."
    )


@dataclass(frozen=True, slots=True)
class BlocInfo:
    name: str
    title: str
    kind: str
    member_ids: frozenset[int]


def slugify(text: str) -> str:
    """`Latin America and the Caribbean` → `latin-america-and-the-caribbean`."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def country_blocs(c: Country) -> list[str]:
    """Names of the built-in blocs a country belongs to."""
    names = ["global-south" if c.global_south else "global-north"]
    if c.region:
        names.append(f"region:{slugify(c.region)}")
    if c.sub_region:
        names.append(f"sub-region:{slugify(c.sub_region)}")
    if c.income_group:
        names.append(f"income:{c.income_group}")
    names += [flag for flag, on in (("ldc", c.ldc), ("lldc", c.lldc), ("sids", c.sids)) if on]
    return names


def builtin_bloc_titles() -> dict[str, tuple[str, str]]:
    """Every built-in bloc name with its title and kind."""
    titles: dict[str, tuple[str, str]] = {
        "global-south": (N_("Global South (G77 and China)"), "south-north"),
        "global-north": (N_("Global North"), "south-north"),
        "ldc": (N_("Least developed countries"), "development"),
        "lldc": (N_("Landlocked developing countries"), "development"),
        "sids": (N_("Small island developing states"), "development"),
    }
    for region in REGIONS:
        titles[f"region:{slugify(region)}"] = (region, "region")
    for c in all_countries().values():
        if c.sub_region:
            titles[f"sub-region:{slugify(c.sub_region)}"] = (c.sub_region, "sub-region")
    income_titles = {
        "low": N_("Low income"),
        "lower-middle": N_("Lower-middle income"),
        "upper-middle": N_("Upper-middle income"),
        "high": N_("High income"),
    }
    for group in INCOME_GROUPS:
        titles[f"income:{group}"] = (income_titles[group], "income")
    return titles


def member_blocs(session: Session, member: Member) -> list[str]:
    """Every bloc `member` belongs to, built-in and custom."""
    names = country_blocs(country(member.country_code))
    custom = session.scalars(
        select(CustomBloc.name)
        .join(CustomBlocMember, CustomBlocMember.bloc_id == CustomBloc.id)
        .where(CustomBlocMember.member_id == member.id)
    ).all()
    return names + sorted(custom)


def bloc_member_ids(session: Session, name: str, *, active_only: bool = True) -> frozenset[int]:
    """The ids of a bloc's members (active ones unless told otherwise)."""
    query = select(Member)
    if active_only:
        query = query.where(Member.status == "active")
    if name in builtin_bloc_titles():
        members = session.scalars(query).all()
        return frozenset(m.id for m in members if name in country_blocs(country(m.country_code)))
    bloc = session.scalars(select(CustomBloc).where(CustomBloc.name == name)).first()
    if bloc is None:
        raise UnknownBloc(name=name)
    query = query.join(CustomBlocMember, CustomBlocMember.member_id == Member.id).where(
        CustomBlocMember.bloc_id == bloc.id
    )
    return frozenset(m.id for m in session.scalars(query).all())


def require_bloc(session: Session, name: str) -> None:
    """Raises `UnknownBloc` unless `name` is a built-in or custom bloc."""
    if name in builtin_bloc_titles():
        return
    if session.scalars(select(CustomBloc.id).where(CustomBloc.name == name)).first() is None:
        raise UnknownBloc(name=name)


def list_blocs(session: Session) -> list[BlocInfo]:
    """Every bloc with at least one active member, plus every custom bloc."""
    members = session.scalars(select(Member).where(Member.status == "active")).all()
    by_bloc: dict[str, set[int]] = {}
    for m in members:
        for name in country_blocs(country(m.country_code)):
            by_bloc.setdefault(name, set()).add(m.id)
    titles = builtin_bloc_titles()
    blocs = [
        BlocInfo(name, titles[name][0], titles[name][1], frozenset(ids))
        for name, ids in sorted(by_bloc.items())
    ]
    for bloc in session.scalars(select(CustomBloc).order_by(CustomBloc.name)).all():
        blocs.append(BlocInfo(bloc.name, bloc.title, "custom", bloc_member_ids(session, bloc.name)))
    return blocs


def create_custom_bloc(
    session: Session, name: str, title: str, member_ids: list[int], description: str = ""
) -> CustomBloc:
    """Creates a custom bloc of the given members."""
    if not SLUG.match(name) or ":" in name:
        raise BadBlocName(name=name)
    if (
        name in builtin_bloc_titles()
        or session.scalars(select(CustomBloc).where(CustomBloc.name == name)).first()
    ):
        raise BlocExists(name=name)
    bloc = CustomBloc(name=name, title=title, description=description)
    session.add(bloc)
    session.flush()
    for member_id in sorted(set(member_ids)):
        if session.get(Member, member_id) is None:
            from concord.members.directory import UnknownMember

            raise UnknownMember(member=str(member_id))
        session.add(CustomBlocMember(bloc_id=bloc.id, member_id=member_id))
    session.flush()
    return bloc
