"""The charter: the organisation's decision rules, as a TOML file the secretariat edits.

    [rules.broad-consensus]
    title = "Broad consensus"
    quorum = "1/2"            # share of active members that cast a ballot (abstentions count)
    threshold = "2/3"         # yes ÷ (yes + no); objections count as no; abstentions excluded
    strict = false            # true: more than the threshold (a simple majority is "1/2", strict)
    max_negative = "1/4"      # ISO: no more than this share of yes + no is negative
    bloc_majority = ["global-south", "global-north"]  # yes > no inside each of these blocs
    max_objections = 1        # formal objections allowed (WTO consensus: 0)

    [kinds]
    standard = "broad-consensus"
    project = "broad-consensus"
    resolution = "un-ga-simple"

    [proxies]
    max_per_holder = 2        # proxies one member may carry in one ballot (default 1)

Every version is stored and logged; the newest one applies to ballots closed after it. Nothing
is adopted without at least one yes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Invalid
from concord.governance.tables import CharterVersion
from concord.ledger.log import append
from concord.members.blocs import UnknownBloc, require_bloc
from concord.members.tables import Person

KINDS = ("standard", "project", "resolution")
RULE_KEYS = {
    "title",
    "quorum",
    "threshold",
    "strict",
    "max_negative",
    "bloc_majority",
    "max_objections",
}
MAX_CHARTER_BYTES = 64_000

DEFAULT_CHARTER = """\
# The Concord charter: decision rules and which rule each kind of proposal uses.
# Shares are fractions ("2/3") or decimals. Objections count as "no" in every share.

[rules.broad-consensus]
title = "Broad consensus (Concord default)"
quorum = "1/2"
threshold = "2/3"
bloc_majority = ["global-south", "global-north"]
max_objections = 1

[rules.un-ga-simple]
title = "UN General Assembly: simple majority of members present and voting"
threshold = "1/2"
strict = true

[rules.un-ga-two-thirds]
title = "UN General Assembly: two-thirds majority of members present and voting"
threshold = "2/3"

[rules.iso]
title = "ISO: two thirds of votes cast in favour, no more than one quarter negative"
threshold = "2/3"
max_negative = "1/4"

[rules.wto-consensus]
title = "WTO consensus: no member present formally objects"
max_objections = 0

[kinds]
standard = "broad-consensus"
project = "broad-consensus"
resolution = "broad-consensus"

[proxies]
max_per_holder = 2
"""


class CharterInvalid(Invalid):
    code = "charter.invalid"
    message = N_("The charter is not valid: {reason}")


class CharterUnparsable(Invalid):
    code = "charter.unparsable"
    message = N_("The charter is not valid TOML: {reason}")


class CharterUnknownBloc(Invalid):
    code = "charter.unknown_bloc"
    message = N_("Rule “{rule}” names the bloc “{bloc}”, which does not exist.")


@dataclass(frozen=True)
class Rule:
    name: str
    title: str = ""
    quorum: Fraction | None = None
    threshold: Fraction | None = None
    strict: bool = False
    max_negative: Fraction | None = None
    bloc_majority: tuple[str, ...] = ()
    max_objections: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "quorum": _text(self.quorum),
            "threshold": _text(self.threshold),
            "strict": self.strict,
            "max_negative": _text(self.max_negative),
            "bloc_majority": list(self.bloc_majority),
            "max_objections": self.max_objections,
        }


@dataclass(frozen=True)
class Charter:
    version: int
    text: str
    rules: dict[str, Rule] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    proxy_cap: int = 1  # proxies one member may carry in one ballot

    def rule_for(self, kind: str) -> Rule:
        return self.rules[self.kinds[kind]]


def _text(value: Fraction | None) -> str | None:
    return None if value is None else str(value)


def _share(rule: str, key: str, value: Any) -> Fraction:
    try:
        if isinstance(value, bool):
            raise ValueError
        share = Fraction(value) if isinstance(value, str | int) else Fraction(str(value))
    except (ValueError, ZeroDivisionError, TypeError) as exc:
        raise CharterInvalid(reason=f"{rule}.{key}: {value!r} is not a share") from exc
    if not 0 <= share <= 1:
        raise CharterInvalid(reason=f"{rule}.{key}: a share lies between 0 and 1")
    return share


def parse(text: str, version: int = 0) -> Charter:
    """The charter in `text`, checked for shape (not for blocs: see `validate`)."""
    if len(text.encode()) > MAX_CHARTER_BYTES:
        raise CharterInvalid(reason=f"longer than {MAX_CHARTER_BYTES} bytes")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CharterUnparsable(reason=str(exc)) from exc
    unknown = set(data) - {"rules", "kinds", "proxies"}
    if unknown:
        raise CharterInvalid(reason="unknown sections: " + ", ".join(sorted(unknown)))
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, dict) or not raw_rules:
        raise CharterInvalid(reason="define at least one rule under [rules.NAME]")
    rules: dict[str, Rule] = {}
    for name, spec in raw_rules.items():
        if not isinstance(spec, dict):
            raise CharterInvalid(reason=f"rules.{name} must be a table")
        extra = set(spec) - RULE_KEYS
        if extra:
            raise CharterInvalid(reason=f"rules.{name}: unknown keys " + ", ".join(sorted(extra)))
        blocs = spec.get("bloc_majority", [])
        if not isinstance(blocs, list) or not all(isinstance(b, str) for b in blocs):
            raise CharterInvalid(reason=f"rules.{name}.bloc_majority is a list of bloc names")
        objections = spec.get("max_objections")
        if objections is not None and (
            isinstance(objections, bool) or not isinstance(objections, int) or objections < 0
        ):
            raise CharterInvalid(reason=f"rules.{name}.max_objections is a whole number ≥ 0")
        strict = spec.get("strict", False)
        if not isinstance(strict, bool):
            raise CharterInvalid(reason=f"rules.{name}.strict is true or false")
        rules[name] = Rule(
            name=name,
            title=str(spec.get("title", name)),
            quorum=_share(name, "quorum", spec["quorum"]) if "quorum" in spec else None,
            threshold=_share(name, "threshold", spec["threshold"]) if "threshold" in spec else None,
            strict=strict,
            max_negative=(
                _share(name, "max_negative", spec["max_negative"])
                if "max_negative" in spec
                else None
            ),
            bloc_majority=tuple(blocs),
            max_objections=objections,
        )
    kinds = data.get("kinds")
    if not isinstance(kinds, dict):
        raise CharterInvalid(reason="a [kinds] table names the rule of each kind of proposal")
    for kind in KINDS:
        if kind not in kinds:
            raise CharterInvalid(reason=f"[kinds] has no rule for “{kind}”")
        if kinds[kind] not in rules:
            raise CharterInvalid(reason=f"[kinds] {kind} names the unknown rule “{kinds[kind]}”")
    if set(kinds) - set(KINDS):
        raise CharterInvalid(reason="[kinds] knows only: " + ", ".join(KINDS))
    return Charter(
        version=version,
        text=text,
        rules=rules,
        kinds={k: kinds[k] for k in KINDS},
        proxy_cap=_proxy_cap(data.get("proxies", {})),
    )


def _proxy_cap(section: Any) -> int:
    if not isinstance(section, dict) or set(section) - {"max_per_holder"}:
        raise CharterInvalid(reason="[proxies] has only max_per_holder")
    cap = section.get("max_per_holder", 1)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        raise CharterInvalid(reason="[proxies] max_per_holder is a whole number ≥ 0")
    return cap


def validate(session: Session, charter: Charter) -> None:
    """Every bloc a rule names exists."""
    for rule in charter.rules.values():
        for bloc in rule.bloc_majority:
            try:
                require_bloc(session, bloc)
            except UnknownBloc as exc:
                raise CharterUnknownBloc(rule=rule.name, bloc=bloc) from exc


def current(session: Session) -> Charter:
    """The newest charter version, or the built-in default (version 0) before any edit."""
    row = session.scalars(
        select(CharterVersion).order_by(CharterVersion.version.desc()).limit(1)
    ).first()
    if row is None:
        return parse(DEFAULT_CHARTER, 0)
    return parse(row.text, row.version)


def versions(session: Session) -> list[CharterVersion]:
    return list(session.scalars(select(CharterVersion).order_by(CharterVersion.version)).all())


def update(session: Session, text: str, person: Person | None, note: str = "") -> CharterVersion:
    """Stores and logs a new version of the charter (the secretariat's act)."""
    from concord.members.people import require_role

    if person is not None:
        require_role(person, "secretariat")
    charter = parse(text)
    validate(session, charter)
    latest = current(session).version
    entry = append(
        session,
        "governance.charter",
        {
            "version": latest + 1,
            "text": text,
            "note": note,
            "rules": {n: r.describe() for n, r in charter.rules.items()},
            "kinds": charter.kinds,
        },
    )
    row = CharterVersion(
        version=latest + 1,
        text=text,
        note=note,
        person_id=person.id if person else None,
        created_at=utcnow(),
        log_index=entry.index,
    )
    session.add(row)
    session.flush()
    return row


# The arithmetic: pure, so a tally can be recomputed from the log alone.


def apply(
    rule: Rule,
    ballots: list[dict[str, Any]],
    eligible: int,
    blocs: dict[str, list[str]],
) -> dict[str, Any]:
    """The outcome of `ballots` under `rule`, with every figure that led to it.

    `ballots`: {"member": slug, "choice": yes|no|abstain|objection, "reason": str};
    `eligible`: active members at close; `blocs`: bloc name → member slugs (for `bloc_majority`).
    """
    count = {c: 0 for c in ("yes", "no", "abstain", "objection")}
    for b in ballots:
        count[b["choice"]] += 1
    cast = sum(count.values())
    yes, negative = count["yes"], count["no"] + count["objection"]
    decisive = yes + negative
    checks: list[dict[str, Any]] = []

    def check(name: str, met: bool, **figures: Any) -> None:
        checks.append({"check": name, "met": met, **figures})

    check("at_least_one_yes", yes >= 1, yes=yes)
    if rule.quorum is not None:
        met = eligible > 0 and Fraction(cast, eligible) >= rule.quorum
        check("quorum", met, cast=cast, eligible=eligible, required=str(rule.quorum))
    if rule.threshold is not None:
        share = Fraction(yes, decisive) if decisive else Fraction(0)
        met = decisive > 0 and (share > rule.threshold if rule.strict else share >= rule.threshold)
        check(
            "threshold",
            met,
            yes=yes,
            decisive=decisive,
            share=str(share),
            required=("> " if rule.strict else "≥ ") + str(rule.threshold),
        )
    if rule.max_negative is not None:
        share = Fraction(negative, decisive) if decisive else Fraction(0)
        check(
            "max_negative",
            share <= rule.max_negative,
            negative=negative,
            decisive=decisive,
            share=str(share),
            required="≤ " + str(rule.max_negative),
        )
    per_bloc: dict[str, dict[str, Any]] = {}
    by_member = {b["member"]: b["choice"] for b in ballots}
    for bloc in rule.bloc_majority:
        inside = [by_member[m] for m in sorted(blocs.get(bloc, [])) if m in by_member]
        b_yes = inside.count("yes")
        b_neg = inside.count("no") + inside.count("objection")
        figures = {
            "members": len(blocs.get(bloc, [])),
            "yes": b_yes,
            "no": inside.count("no"),
            "objection": inside.count("objection"),
            "abstain": inside.count("abstain"),
        }
        per_bloc[bloc] = {**figures, "met": b_yes > b_neg}
        check(f"bloc_majority:{bloc}", b_yes > b_neg, **figures)
    if rule.max_objections is not None:
        check(
            "max_objections",
            count["objection"] <= rule.max_objections,
            objections=count["objection"],
            allowed=rule.max_objections,
        )
    adopted = all(c["met"] for c in checks)
    return {
        "rule": rule.describe(),
        "eligible": eligible,
        "cast": cast,
        "counts": count,
        "checks": checks,
        "blocs": per_bloc,
        "ballots": sorted(
            (
                {
                    "member": b["member"],
                    "choice": b["choice"],
                    "reason": b.get("reason", ""),
                    **({"proxy": b["proxy"]} if b.get("proxy") else {}),
                }
                for b in ballots
            ),
            key=lambda b: b["member"],
        ),
        "outcome": "adopted" if adopted else "rejected",
    }
