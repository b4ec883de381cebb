"""Ranked choice for one seat: instant run-off (IRV).

Round by round, each valid ballot counts for its highest-ranked continuing candidate. A
candidate with more than half of the ballots still counting (weights summed) wins. Otherwise
the candidate with the fewest is eliminated, one per round, and its ballots move to their next
continuing preference; a ballot with none left is *exhausted* — counted and shown each round,
and no longer part of the majority's base. The last continuing candidate wins.

Ties for elimination: the candidate with fewer votes in the most recent earlier round where the
tied candidates differed is eliminated; level in every round, the lot decides (the candidate
latest in the lot goes; see `result.py`).

Bloc condition (`BlocCondition`): in each named bloc, the winner's share of the bloc's valid
ballots — its first preferences (basis "first") or the ballots with it in the final round
("final") — must meet the threshold; otherwise the result names the bloc that failed and the
outcome is "bloc_condition_failed".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from concord.governance.methods.blocs import BlocCheck, BlocCondition, Membership, member_blocs
from concord.governance.methods.ranked import RankedBallot, bloc_support, make_pile
from concord.governance.methods.result import Jsonable, TieBreak, break_tie, lot_order


@dataclass(frozen=True)
class IrvRound(Jsonable):
    round: int
    tallies: dict[str, int]  # continuing candidates → weight of ballots counting for them
    continuing: int  # ballots still counting (the majority's base)
    exhausted: int  # ballots exhausted so far (blank ballots not included)
    majority: int  # the smallest weight that is more than half of `continuing`
    elected: str | None = None
    eliminated: str | None = None
    tie: TieBreak | None = None
    transfers: dict[str, int] | None = None  # eliminated's ballots → candidate or "exhausted"


@dataclass(frozen=True)
class IrvResult(Jsonable):
    method: str
    candidates: tuple[str, ...]
    lot: tuple[str, ...]
    valid: int
    blank: int
    rounds: tuple[IrvRound, ...]
    winner: str | None
    bloc_checks: tuple[BlocCheck, ...]
    conditions_met: bool
    outcome: str  # "elected", "bloc_condition_failed" or "no_valid_ballots"


def irv(
    candidates: Sequence[str],
    ballots: Sequence[RankedBallot],
    *,
    lot: Sequence[str] | None = None,
    condition: BlocCondition | None = None,
    membership: Membership | None = None,
    fast: bool = True,
) -> IrvResult:
    """The instant run-off count of `ballots`, round by round. `fast=False`: the plain pile."""
    names = tuple(candidates)
    order = lot_order(names, lot)
    blocs = member_blocs(condition, membership)
    pile, groups = make_pile(names, ballots, 1, fast)
    continuing = [True] * len(names)
    history: list[dict[str, int]] = []
    rounds: list[IrvRound] = []
    exhausted = 0
    winner: str | None = None
    while groups.valid:
        totals = pile.totals()
        tallies = {names[c]: totals[c] for c in range(len(names)) if continuing[c]}
        history.append(tallies)
        base = sum(tallies.values())
        majority = base // 2 + 1
        top = max(tallies.values())
        number = len(rounds) + 1
        if top >= majority or len(tallies) == 1:
            # A majority is unique, and the last candidate standing has every counting ballot.
            winner = next(c for c, v in tallies.items() if v == top)
            rounds.append(IrvRound(number, tallies, base, exhausted, majority, elected=winner))
            break
        low = min(tallies.values())
        tied = [c for c, v in tallies.items() if v == low]
        tie = break_tie(tied, history, order, lowest=True) if len(tied) > 1 else None
        out = tie.chosen if tie else tied[0]
        source = names.index(out)
        continuing[source] = False
        moved = pile.transfer(source, continuing, None, totals[source])
        transfers = {names[c]: v for c, v in enumerate(moved.received) if v}
        transfers["exhausted"] = moved.non_transferable
        rounds.append(
            IrvRound(number, tallies, base, exhausted, majority, None, out, tie, transfers)
        )
        exhausted += moved.non_transferable
    checks: list[BlocCheck] = []
    if winner is not None:
        final = condition is not None and condition.basis == "final"
        held = set(pile.held(names.index(winner))) if final else set()
        checks = bloc_support(condition, blocs, ballots, groups, winner, held)
    met = all(c.met for c in checks)
    outcome = (
        "no_valid_ballots" if winner is None else "elected" if met else "bloc_condition_failed"
    )
    return IrvResult(
        method="irv",
        candidates=names,
        lot=order,
        valid=groups.valid,
        blank=groups.blank,
        rounds=tuple(rounds),
        winner=winner,
        bloc_checks=tuple(checks),
        conditions_met=met,
        outcome=outcome,
    )
