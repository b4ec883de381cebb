"""Bloc conditions: a decision must also carry each named bloc, whatever the method.

The charter's `bloc_majority` asks for yes > no inside the Global South and the Global North;
every method here generalises that as a `BlocCondition` — each named bloc must give the outcome
at least `threshold` of its support (more than it, when `strict`). What "support" is depends on
the method, and each method's module says it in one line:

| method   | support inside a bloc                                        | threshold is |
|----------|--------------------------------------------------------------|--------------|
| consent  | blocks from the bloc ≤ `max_blocks`; consents ÷ its responses | a share      |
| irv, stv | the bloc's ballots for the winner ÷ the bloc's valid ballots  | a share      |
|          | (`basis`: "first" preferences, or "final": held when elected) |              |
| score    | the bloc's mean score for the option                          | a score 0–5  |
| approval | the bloc's approvals (dots) for the option ÷ its voters       | a share      |

Membership is plain data — bloc name → member ids — as `concord.members.blocs` gives it; a
ballot belongs to a bloc when its member does. Weights (a proxy carrying several votes) count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from concord.governance.methods import errors
from concord.governance.methods.errors import MethodInvalid
from concord.governance.methods.result import Jsonable

Membership = Mapping[str, Collection[str]]
Basis = Literal["first", "final"]


@dataclass(frozen=True)
class BlocCondition(Jsonable):
    """Each bloc in `blocs` must give at least `threshold` (more, when `strict`) support."""

    blocs: tuple[str, ...]
    threshold: Fraction = Fraction(0)
    strict: bool = False
    basis: Basis = "first"  # ranked methods: first preferences, or the ballots that elected
    max_blocks: int | None = None  # consent: blocks allowed from inside each bloc

    def __post_init__(self) -> None:
        if not self.blocs or len(set(self.blocs)) != len(self.blocs):
            raise MethodInvalid(reason=errors.BLOCS)
        if self.threshold < 0:
            raise MethodInvalid(reason=errors.THRESHOLD)
        if self.basis not in ("first", "final"):
            raise MethodInvalid(reason=errors.BASIS)
        if self.max_blocks is not None and self.max_blocks < 0:
            raise MethodInvalid(reason=errors.MAX_BLOCKS)

    def required(self) -> str:
        return ("> " if self.strict else "≥ ") + str(self.threshold)

    def meets(self, support: Fraction) -> bool:
        return support > self.threshold if self.strict else support >= self.threshold


@dataclass(frozen=True)
class BlocCheck(Jsonable):
    """One bloc's figure for one option or winner, and whether it met the condition."""

    bloc: str
    subject: str
    support: Fraction  # the share or mean compared with the threshold
    numerator: Fraction  # what the support was computed from (weights, scores)
    denominator: Fraction
    required: str
    met: bool
    blocks: int | None = None  # consent only: blocks from inside the bloc


def ratio(numerator: Fraction | int, denominator: Fraction | int) -> Fraction:
    """numerator ÷ denominator, 0 when nothing was counted (a silent bloc supports nothing)."""
    return Fraction(numerator) / Fraction(denominator) if denominator else Fraction(0)


def check(
    condition: BlocCondition,
    bloc: str,
    subject: str,
    numerator: Fraction | int,
    denominator: Fraction | int,
) -> BlocCheck:
    """The condition judged on one bloc's figures (support = numerator ÷ denominator)."""
    support = ratio(numerator, denominator)
    met = bool(denominator) and condition.meets(support)
    return BlocCheck(
        bloc=bloc,
        subject=subject,
        support=support,
        numerator=Fraction(numerator),
        denominator=Fraction(denominator),
        required=condition.required(),
        met=met,
    )


def member_blocs(
    condition: BlocCondition | None, membership: Membership | None
) -> dict[str, frozenset[str]]:
    """The condition's blocs → their member ids; every named bloc must be in `membership`."""
    if condition is None:
        return {}
    membership = membership or {}
    missing = [b for b in condition.blocs if b not in membership]
    if missing:
        raise MethodInvalid(reason=errors.MEMBERSHIP, bloc=", ".join(missing))
    return {b: frozenset(membership[b]) for b in condition.blocs}


def weight_in(members: frozenset[str], ballots: Iterable[tuple[str, int]]) -> int:
    """The total weight of the (member, weight) ballots cast by members of a bloc."""
    return sum(w for m, w in ballots if m in members)
