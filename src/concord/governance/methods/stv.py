"""Single transferable vote for committees, under the Scottish STV rules.

The rules are those of the Scottish Local Government Elections Order 2007 (SSI 2007/42,
schedule 1, rules 45–52) — weighted inclusive Gregory, five decimal places — chosen because
they are published law, simple to check by hand, and reproducible: every value is an integer
count of 1/100000 of a vote, so two machines always agree (no floats anywhere).

1. Quota (Droop, rule 46): ⌊valid ÷ (seats + 1)⌋ + 1, valid = the weight of ballots that
   rank someone.
2. A candidate with votes ≥ quota is elected (rule 47); several at once: most votes first.
3. While seats remain, the largest surplus (votes − quota) is transferred (rules 48–49): every
   paper the candidate holds moves to its next continuing preference at the transfer value
   ⌊surplus × its value ÷ the candidate's votes⌋ (5 d.p., remainder ignored); papers with
   no next preference are non-transferable. What truncation drops is shown as `rounding`.
   Equal surpluses: the candidate with more votes at the most recent stage where they differed
   goes first, then the lot.
4. With no surplus to transfer, the candidate with the fewest votes is excluded and all its
   papers move at their current value (rule 50). Ties: fewer votes at the most recent stage
   where they differed, then the lot (rule 51; the latest in the lot is excluded).
5. When the continuing candidates are no more than the seats left, all are elected and no
   further transfer is made (rule 52). So the count elects exactly min(seats, candidates).

Bloc condition: for each elected candidate, in each named bloc, its first preferences
(basis "first") or the ballots it held when elected ("final") ÷ the bloc's valid ballots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from concord.governance.methods import errors
from concord.governance.methods.blocs import BlocCheck, BlocCondition, Membership, member_blocs
from concord.governance.methods.errors import MethodInvalid
from concord.governance.methods.ranked import RankedBallot, bloc_support, make_pile
from concord.governance.methods.result import (
    SCALE,
    Jsonable,
    TieBreak,
    break_tie,
    fixed,
    lot_order,
)

RULE = "scottish-stv-2007"


@dataclass(frozen=True)
class Election(Jsonable):
    candidate: str
    stage: int
    by: str  # "quota" (rule 47) or "last_vacancies" (rule 52)
    votes: str
    tie: TieBreak | None = None  # when elected in the same stage with equal votes


@dataclass(frozen=True)
class Stage(Jsonable):
    stage: int
    action: str  # "first_preferences", "surplus" or "exclusion"
    source: str | None  # the candidate whose papers moved
    surplus: str | None  # a surplus transfer: surplus and total give the transfer value
    source_votes: str | None
    received: dict[str, str]  # candidate → value credited in this stage
    non_transferable: str
    rounding: str
    votes: dict[str, str]  # every candidate's votes at the end of the stage
    exhausted: str  # non-transferable value so far
    elected: tuple[str, ...]
    tie: TieBreak | None = None  # a tie for exclusion or for the order of surpluses


@dataclass(frozen=True)
class StvResult(Jsonable):
    method: str
    rule: str
    seats: int
    candidates: tuple[str, ...]
    lot: tuple[str, ...]
    valid: int
    blank: int
    quota: int
    stages: tuple[Stage, ...]
    elected: tuple[Election, ...]
    excluded: tuple[str, ...]
    bloc_checks: tuple[BlocCheck, ...]
    conditions_met: bool
    outcome: str  # "elected" or "bloc_condition_failed"

    @property
    def winners(self) -> tuple[str, ...]:
        return tuple(e.candidate for e in self.elected)


def quota(valid: int, seats: int) -> int:
    """The Droop quota of rule 46, in whole votes."""
    return valid // (seats + 1) + 1


def stv(
    candidates: Sequence[str],
    ballots: Sequence[RankedBallot],
    seats: int,
    *,
    lot: Sequence[str] | None = None,
    condition: BlocCondition | None = None,
    membership: Membership | None = None,
    fast: bool = True,
) -> StvResult:
    """The Scottish STV count of `ballots` for `seats`, stage by stage."""
    if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
        raise MethodInvalid(reason=errors.SEATS)
    names = tuple(candidates)
    order = lot_order(names, lot)
    blocs = member_blocs(condition, membership)
    pile, groups = make_pile(names, ballots, SCALE, fast)
    q = quota(groups.valid, seats) * SCALE
    continuing = [True] * len(names)
    elected: list[Election] = []
    held: dict[str, set[int]] = {}
    transferred: set[int] = set()
    excluded: list[str] = []
    stages: list[Stage] = []
    history: list[dict[str, int]] = []
    exhausted = 0

    def votes_now() -> dict[str, int]:
        totals = pile.totals()
        return {names[c]: totals[c] for c in range(len(names))}

    def elect(candidates_now: list[int], by: str, number: int) -> tuple[str, ...]:
        """Deems `candidates_now` elected, most votes first (ties: earlier stages, the lot)."""
        totals = pile.totals()
        pool = [names[c] for c in candidates_now]
        done: list[str] = []
        while pool:
            top = max(totals[names.index(c)] for c in pool)
            tied = [c for c in pool if totals[names.index(c)] == top]
            tie = break_tie(tied, history, order, lowest=False) if len(tied) > 1 else None
            chosen = tie.chosen if tie else tied[0]
            pool.remove(chosen)
            index = names.index(chosen)
            continuing[index] = False
            if condition is not None and condition.basis == "final":
                held[chosen] = set(pile.held(index))
            elected.append(Election(chosen, number, by, fixed(totals[index]), tie))
            done.append(chosen)
        return tuple(done)

    def record(
        number: int,
        action: str,
        source: str | None,
        moved: tuple[str | None, str | None, dict[str, str], str, str],
        tie: TieBreak | None = None,
    ) -> None:
        """Closes a stage: its figures, then rule 47 (elected at the quota)."""
        surplus, source_votes, received, non_transferable, rounding = moved
        votes = votes_now()
        history.append(votes)
        reached = [c for c in range(len(names)) if continuing[c] and votes[names[c]] >= q]
        # Rule 47 at the end of every stage, but never past the seats (rule 52 fills the last).
        new = elect(reached, "quota", number) if len(elected) < seats else ()
        stages.append(
            Stage(
                stage=number,
                action=action,
                source=source,
                votes={c: fixed(v) for c, v in votes.items()},
                exhausted=fixed(exhausted),
                elected=new,
                surplus=surplus,
                source_votes=source_votes,
                received=received,
                non_transferable=non_transferable,
                rounding=rounding,
                tie=tie,
            )
        )

    record(1, "first_preferences", None, (None, None, {}, fixed(0), fixed(0)))
    while len(elected) < seats:
        number = len(stages) + 1
        remaining = [c for c in range(len(names)) if continuing[c]]
        if len(remaining) <= seats - len(elected):
            stages[-1] = _with_last(stages[-1], elect(remaining, "last_vacancies", number - 1))
            break
        totals = pile.totals()
        pending = [
            e.candidate
            for e in elected
            if names.index(e.candidate) not in transferred and totals[names.index(e.candidate)] > q
        ]
        tie: TieBreak | None = None
        if pending:
            top = max(totals[names.index(c)] for c in pending)
            tied = [c for c in pending if totals[names.index(c)] == top]
            tie = break_tie(tied, history, order, lowest=False) if len(tied) > 1 else None
            source = names.index(tie.chosen if tie else tied[0])
            transferred.add(source)
            surplus = totals[source] - q
            moved = pile.transfer(source, continuing, surplus, totals[source])
            action, surplus_text = "surplus", fixed(surplus)
        else:
            low = min(totals[c] for c in remaining)
            tied = [names[c] for c in remaining if totals[c] == low]
            tie = break_tie(tied, history, order, lowest=True) if len(tied) > 1 else None
            source = names.index(tie.chosen if tie else tied[0])
            continuing[source] = False
            excluded.append(names[source])
            moved = pile.transfer(source, continuing, None, totals[source])
            action, surplus_text = "exclusion", None
        exhausted += moved.non_transferable
        figures = (
            surplus_text,
            fixed(totals[source]),
            {names[c]: fixed(v) for c, v in enumerate(moved.received) if v},
            fixed(moved.non_transferable),
            fixed(moved.rounding),
        )
        record(number, action, names[source], figures, tie)
    checks: list[BlocCheck] = []
    for e in elected:
        checks += bloc_support(
            condition, blocs, ballots, groups, e.candidate, held.get(e.candidate, set())
        )
    met = all(c.met for c in checks)
    return StvResult(
        method="stv",
        rule=RULE,
        seats=seats,
        candidates=names,
        lot=order,
        valid=groups.valid,
        blank=groups.blank,
        quota=q // SCALE,
        stages=tuple(stages),
        elected=tuple(elected),
        excluded=tuple(excluded),
        bloc_checks=tuple(checks),
        conditions_met=met,
        outcome="elected" if met else "bloc_condition_failed",
    )


def _with_last(stage: Stage, elected: tuple[str, ...]) -> Stage:
    """`stage` also naming the candidates elected to the last vacancies after it."""
    return replace(stage, elected=stage.elected + elected)
