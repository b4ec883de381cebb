"""Score vote: each member gives each option 0–5; options ranked by their total.

An option a member leaves unscored gets 0 from that member — as in score voting generally, so
that an option cannot top the list on a handful of fives. Weights multiply (a proxy's scores
count once for each vote it carries). Per option the result shows the total, the mean over
every voter (total ÷ voters' weight), the mean over those who scored it, and how many gave
each score.

Ranking: by total; equal totals by more 5s, then more 4s, … (the option fewer members rated
low loses), then the lot (earlier in the lot ranks higher).

Bloc condition: an option meets it when its mean score among each named bloc's voters
(unscored = 0) meets the threshold (a score, e.g. 3 for "at least 'good' on average").
`top` is the best-ranked option that meets it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from concord.governance.methods import errors
from concord.governance.methods.blocs import (
    BlocCheck,
    BlocCondition,
    Membership,
    check,
    member_blocs,
)
from concord.governance.methods.errors import BallotInvalid, MethodInvalid
from concord.governance.methods.ranked import check_candidates
from concord.governance.methods.result import Jsonable, lot_order

LOWEST, HIGHEST = 0, 5


@dataclass(frozen=True)
class ScoreBallot(Jsonable):
    member: str
    scores: Mapping[str, int] = field(default_factory=dict)
    weight: int = 1


@dataclass(frozen=True)
class OptionScore(Jsonable):
    option: str
    rank: int
    total: int
    mean: Fraction  # total ÷ the weight of all voters
    mean_of_raters: Fraction  # total ÷ the weight of voters who scored it
    raters: int
    distribution: tuple[int, ...]  # weight that gave 0, 1, …, 5 (unscored counts as 0)
    bloc_checks: tuple[BlocCheck, ...]
    conditions_met: bool


@dataclass(frozen=True)
class ScoreResult(Jsonable):
    method: str
    options: tuple[str, ...]
    lot: tuple[str, ...]
    voters: int
    ranking: tuple[OptionScore, ...]
    top: str | None  # the best-ranked option that meets the bloc condition


def _validate(options: Sequence[str], ballots: Sequence[ScoreBallot]) -> None:
    seen: set[str] = set()
    for b in ballots:
        if b.member in seen:
            raise BallotInvalid(member=b.member, reason=errors.TWICE)
        seen.add(b.member)
        if isinstance(b.weight, bool) or not isinstance(b.weight, int) or b.weight < 1:
            raise BallotInvalid(member=b.member, reason=errors.WEIGHT)
        for option, value in b.scores.items():
            if option not in options:
                raise BallotInvalid(member=b.member, reason=errors.UNKNOWN_OPTION)
            if isinstance(value, bool) or not isinstance(value, int):
                raise BallotInvalid(member=b.member, reason=errors.SCORE_RANGE)
            if not LOWEST <= value <= HIGHEST:
                raise BallotInvalid(member=b.member, reason=errors.SCORE_RANGE)


def score(
    options: Sequence[str],
    ballots: Sequence[ScoreBallot],
    *,
    lot: Sequence[str] | None = None,
    condition: BlocCondition | None = None,
    membership: Membership | None = None,
) -> ScoreResult:
    """The options ranked by total score, with every figure."""
    names = tuple(options)
    check_candidates(names)
    _validate(names, ballots)
    if condition is not None and not LOWEST <= condition.threshold <= HIGHEST:
        raise MethodInvalid(reason=errors.SCORE_THRESHOLD)
    order = lot_order(names, lot)
    blocs = member_blocs(condition, membership)
    voters = sum(b.weight for b in ballots)
    rows = []
    for option in names:
        distribution = [0] * (HIGHEST + 1)
        for b in ballots:
            distribution[b.scores.get(option, 0)] += b.weight
        total = sum(s * w for s, w in enumerate(distribution))
        raters = sum(b.weight for b in ballots if option in b.scores)
        checks = []
        if condition is not None:
            for bloc, members in blocs.items():
                inside = [b for b in ballots if b.member in members]
                bloc_total = sum(b.scores.get(option, 0) * b.weight for b in inside)
                weight = sum(b.weight for b in inside)
                checks.append(check(condition, bloc, option, bloc_total, weight))
        rows.append((option, total, raters, tuple(distribution), tuple(checks)))
    # Higher total first; then more top scores (the distribution read from 5 down); then lot.
    rows.sort(key=lambda r: (-r[1], tuple(-n for n in reversed(r[3])), order.index(r[0])))
    ranking = tuple(
        OptionScore(
            option=option,
            rank=i + 1,
            total=total,
            mean=Fraction(total, voters) if voters else Fraction(0),
            mean_of_raters=Fraction(total, raters) if raters else Fraction(0),
            raters=raters,
            distribution=distribution,
            bloc_checks=checks,
            conditions_met=all(c.met for c in checks),
        )
        for i, (option, total, raters, distribution, checks) in enumerate(rows)
    )
    top = next((r.option for r in ranking if r.conditions_met), None) if voters else None
    return ScoreResult("score", names, order, voters, ranking, top)
