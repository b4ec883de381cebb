"""Approval and dot votes: rank options (priorities of a plan, say) by the marks they get.

*Approval*: each member approves any number of options (one mark each). *Dots*: each member
spreads at most `dots` dots over the options, several on one option if it likes (at most
`max_per_option`, when set). Both are counted the same way: an option's total is the marks it
got, times each ballot's weight.

Ranking: by total; equal totals by more voters who marked it at all (breadth of support),
then the lot (earlier in the lot ranks higher).

Bloc condition: an option meets it when, in each named bloc, the weight of the bloc's voters
who marked it ÷ the weight of the bloc's voters meets the threshold (a share). `top` is the
best-ranked option that meets it.
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


@dataclass(frozen=True)
class DotBallot(Jsonable):
    member: str
    marks: Mapping[str, int] = field(default_factory=dict)  # option → dots (approval: 1)
    weight: int = 1


def approve(member: str, options: Sequence[str], weight: int = 1) -> DotBallot:
    """An approval ballot: one mark on each of `options`."""
    return DotBallot(member, dict.fromkeys(options, 1), weight)


@dataclass(frozen=True)
class OptionMarks(Jsonable):
    option: str
    rank: int
    total: int  # marks × weight
    voters: int  # weight of the voters who marked it at all
    share: Fraction  # voters ÷ all voters
    bloc_checks: tuple[BlocCheck, ...]
    conditions_met: bool


@dataclass(frozen=True)
class ApprovalResult(Jsonable):
    method: str  # "approval" or "dots"
    options: tuple[str, ...]
    dots: int | None
    lot: tuple[str, ...]
    voters: int
    ranking: tuple[OptionMarks, ...]
    top: str | None


def _validate(
    options: Sequence[str],
    ballots: Sequence[DotBallot],
    dots: int | None,
    max_per_option: int | None,
) -> None:
    seen: set[str] = set()
    for b in ballots:
        if b.member in seen:
            raise BallotInvalid(member=b.member, reason=errors.TWICE)
        seen.add(b.member)
        if isinstance(b.weight, bool) or not isinstance(b.weight, int) or b.weight < 1:
            raise BallotInvalid(member=b.member, reason=errors.WEIGHT)
        for option, marks in b.marks.items():
            if option not in options:
                raise BallotInvalid(member=b.member, reason=errors.UNKNOWN_OPTION)
            if isinstance(marks, bool) or not isinstance(marks, int) or marks < 0:
                raise BallotInvalid(member=b.member, reason=errors.MARKS)
            if dots is None and marks > 1:
                raise BallotInvalid(member=b.member, reason=errors.APPROVE_ONCE)
            if max_per_option is not None and marks > max_per_option:
                raise BallotInvalid(member=b.member, reason=errors.DOTS_EACH)
        if dots is not None and sum(b.marks.values()) > dots:
            raise BallotInvalid(member=b.member, reason=errors.DOTS_TOTAL)


def approval(
    options: Sequence[str],
    ballots: Sequence[DotBallot],
    *,
    dots: int | None = None,
    max_per_option: int | None = None,
    lot: Sequence[str] | None = None,
    condition: BlocCondition | None = None,
    membership: Membership | None = None,
) -> ApprovalResult:
    """The options ranked by approvals (`dots=None`) or by dots (`dots=N` per member)."""
    names = tuple(options)
    check_candidates(names)
    for limit in (dots, max_per_option):
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise MethodInvalid(reason=errors.DOTS)
    _validate(names, ballots, dots, max_per_option)
    order = lot_order(names, lot)
    blocs = member_blocs(condition, membership)
    voters = sum(b.weight for b in ballots)
    rows = []
    for option in names:
        total = sum(b.marks.get(option, 0) * b.weight for b in ballots)
        marked = sum(b.weight for b in ballots if b.marks.get(option, 0) > 0)
        checks = []
        if condition is not None:
            for bloc, members in blocs.items():
                inside = [b for b in ballots if b.member in members]
                support = sum(b.weight for b in inside if b.marks.get(option, 0) > 0)
                checks.append(
                    check(condition, bloc, option, support, sum(b.weight for b in inside))
                )
        rows.append((option, total, marked, tuple(checks)))
    rows.sort(key=lambda r: (-r[1], -r[2], order.index(r[0])))
    ranking = tuple(
        OptionMarks(
            option=option,
            rank=i + 1,
            total=total,
            voters=marked,
            share=Fraction(marked, voters) if voters else Fraction(0),
            bloc_checks=checks,
            conditions_met=all(c.met for c in checks),
        )
        for i, (option, total, marked, checks) in enumerate(rows)
    )
    top = next((r.option for r in ranking if r.conditions_met), None) if voters else None
    method = "approval" if dots is None else "dots"
    return ApprovalResult(method, names, dots, order, voters, ranking, top)
