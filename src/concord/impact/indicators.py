"""The dashboard's indicators, computed from the records of the domains below.

Each domain exposes read-only `stats` functions; a domain not installed on this hub yet
contributes no data rather than an error, so the dashboard works as capabilities arrive.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import N_, NotFound
from concord.impact.equity import gini, share
from concord.members.blocs import slugify
from concord.members.countries import Country, country
from concord.members.tables import Member


class UnknownIndicator(NotFound):
    code = "impact.unknown_indicator"
    message = N_("There is no indicator “{indicator}”.")


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    label: str
    unit: str
    module: str
    function: str
    field: str | None  # a key of the per-member dict, or None for a plain number
    by: str = "member"  # "member" or "country"


SOURCES = [
    Source(
        "deliberation",
        N_("Members taking part in deliberation"),
        N_("statements and votes"),
        "concord.governance.stats",
        "participation",
        "statements+statement_votes",
    ),
    Source(
        "ballots",
        N_("Ballots cast"),
        N_("ballots"),
        "concord.governance.stats",
        "participation",
        "ballots",
    ),
    Source(
        "training",
        N_("Members contributing to federated jobs"),
        N_("examples"),
        "concord.federation.stats",
        "contributions",
        "examples",
    ),
    Source(
        "energy",
        N_("Energy used by federated training"),
        N_("kWh"),
        "concord.federation.stats",
        "contributions",
        "energy_kwh",
    ),
    Source(
        "emissions",
        N_("Emissions of federated training"),
        N_("kg CO2e"),
        "concord.federation.stats",
        "contributions",
        "emissions_kg",
    ),
    Source(
        "downloads",
        N_("Downloads from the commons"),
        N_("downloads"),
        "concord.commons.stats",
        "downloads",
        None,
        by="country",
    ),
    Source(
        "seats",
        N_("Seats filled in programmes"),
        N_("seats"),
        "concord.capacity.stats",
        "seats_filled",
        None,
    ),
    Source(
        "completions",
        N_("Completed programmes"),
        N_("participants"),
        "concord.capacity.stats",
        "completions",
        None,
    ),
    Source(
        "needs",
        N_("Needs met through the exchange"),
        N_("needs"),
        "concord.capacity.stats",
        "needs_met",
        None,
    ),
]
BY_NAME = {s.name: s for s in SOURCES}


@dataclass
class Group:
    key: str
    label: str
    members: int = 0
    value: float = 0.0


@dataclass
class Indicator:
    source: Source
    available: bool
    by_member: dict[int, float] = field(default_factory=dict)
    by_country: dict[str, float] = field(default_factory=dict)
    anonymous: float = 0.0
    total: float = 0.0
    participants: int = 0
    gini: float = 0.0
    south_share: float = 0.0
    south_membership: float = 0.0
    poorer_share: float = 0.0
    poorer_membership: float = 0.0
    by_region: list[Group] = field(default_factory=list)
    by_income: list[Group] = field(default_factory=list)
    by_bloc: list[Group] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows for CSV and JSON downloads."""
        out = []
        for dimension, groups in (
            ("region", self.by_region),
            ("income", self.by_income),
            ("bloc", self.by_bloc),
        ):
            for g in groups:
                out.append(
                    {
                        "indicator": self.source.name,
                        "dimension": dimension,
                        "group": g.key,
                        "members": g.members,
                        "value": round(g.value, 6),
                    }
                )
        return out


def _fetch(
    session: Session, source: Source, since: datetime | None, until: datetime | None
) -> tuple[bool, dict[Any, Any]]:
    if importlib.util.find_spec(source.module.rsplit(".", 1)[0]) is None:
        return False, {}
    if importlib.util.find_spec(source.module) is None:
        return False, {}
    function: Callable[..., dict[Any, Any]] = getattr(
        importlib.import_module(source.module), source.function
    )
    return True, function(session, since=since, until=until)


def _value(raw: Any, field_name: str | None) -> float:
    if field_name is None:
        return float(raw)
    return float(sum(raw.get(part, 0) for part in field_name.split("+")))


def compute(
    session: Session, name: str, year: int | None = None, members: list[Member] | None = None
) -> Indicator:
    """One indicator, broken down by region, income group and bloc, with its equity figures."""
    source = BY_NAME.get(name)
    if source is None:
        raise UnknownIndicator(indicator=name)
    since = datetime(year, 1, 1, tzinfo=UTC) if year else None
    until = datetime(year + 1, 1, 1, tzinfo=UTC) if year else None
    available, raw = _fetch(session, source, since, until)
    members = (
        members
        if members is not None
        else list(session.scalars(select(Member).where(Member.status != "withdrawn")).all())
    )
    countries = {m.id: country(m.country_code) for m in members}
    result = Indicator(source, available)
    if source.by == "country":
        result.by_country = {k: float(v) for k, v in raw.items() if k}
        result.anonymous = float(raw.get(None, 0))
        # Spread a country's figure over the number of its members for per-member shares.
        per_country_members: dict[str, int] = {}
        for c in countries.values():
            per_country_members[c.iso2] = per_country_members.get(c.iso2, 0) + 1
        result.by_member = {
            m.id: result.by_country.get(countries[m.id].iso2, 0.0)
            / per_country_members[countries[m.id].iso2]
            for m in members
        }
        result.total = sum(result.by_country.values()) + result.anonymous
    else:
        result.by_member = {
            mid: _value(v, source.field) for mid, v in raw.items() if mid in countries
        }
        result.total = sum(result.by_member.values())
    values = [result.by_member.get(m.id, 0.0) for m in members]
    result.participants = sum(1 for v in values if v > 0)
    result.gini = gini(values)
    attributed = sum(values)
    south = [m.id for m in members if countries[m.id].global_south]
    poorer = [m.id for m in members if countries[m.id].income_group in ("low", "lower-middle")]
    result.south_share = share(sum(result.by_member.get(i, 0.0) for i in south), attributed)
    result.south_membership = share(len(south), len(members))
    result.poorer_share = share(sum(result.by_member.get(i, 0.0) for i in poorer), attributed)
    result.poorer_membership = share(len(poorer), len(members))
    result.by_region = _groups(
        members, countries, result.by_member, lambda c: (slugify(c.region), c.region)
    )
    result.by_income = _groups(
        members,
        countries,
        result.by_member,
        lambda c: (c.income_group or "unclassified", c.income_group or "unclassified"),
    )
    result.by_bloc = _groups(
        members,
        countries,
        result.by_member,
        lambda c: (
            ("global-south", "Global South") if c.global_south else ("global-north", "Global North")
        ),
    )
    return result


def _groups(
    members: list[Member],
    countries: dict[int, Country],
    values: dict[int, float],
    key: Callable[[Country], tuple[str, str]],
) -> list[Group]:
    groups: dict[str, Group] = {}
    for m in members:
        k, label = key(countries[m.id])
        g = groups.setdefault(k, Group(k, label))
        g.members += 1
        g.value += values.get(m.id, 0.0)
    return sorted(groups.values(), key=lambda g: g.key)


def dashboard(session: Session, year: int | None = None) -> list[Indicator]:
    """Every indicator at once (members are read once)."""
    members = list(session.scalars(select(Member).where(Member.status != "withdrawn")).all())
    return [compute(session, s.name, year, members) for s in SOURCES]


def jobs_energy(session: Session) -> tuple[bool, dict[int, dict[str, float]]]:
    """Energy and emissions per federated job, when the federation reports them."""
    if importlib.util.find_spec("concord.federation") is None:
        return False, {}
    if importlib.util.find_spec("concord.federation.stats") is None:
        return False, {}
    module = importlib.import_module("concord.federation.stats")
    return True, dict(module.jobs_energy(session))


def model_equity(session: Session) -> tuple[bool, list[Any]]:
    """How each evaluated commons model performs for its worst-served member and by income
    group (federation's evaluation campaigns), when the federation reports it."""
    if importlib.util.find_spec("concord.federation") is None:
        return False, []
    if importlib.util.find_spec("concord.federation.stats") is None:
        return False, []
    module = importlib.import_module("concord.federation.stats")
    if not hasattr(module, "model_performance"):
        return False, []
    return True, list(module.model_performance(session))
