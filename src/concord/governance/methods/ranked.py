"""Ranked ballots and the piles they sit in while IRV and STV count them.

A ballot ranks some candidates, most preferred first; it carries a weight (1, or more for a
proxy). Identical rankings always travel together — every rule here moves a ballot by its
ranking alone — so they are grouped first: a *group* is one ranking, its total weight, and
the value each of its papers carries (1 vote = `unit`).

A pile knows which candidate holds each group (the next *continuing* preference) and moves
the groups of one candidate on: at full value (an exclusion) or at a transfer value
surplus × value ÷ total, any remainder ignored (a surplus, SSI 2007/42 rule 48(3)).

Two piles do the same arithmetic: `PlainPile` reads top to bottom in Python; `ArrayPile`
keeps the rankings in one NumPy array with a pointer per group and moves every group of a
candidate at once. `tests/governance/test_methods.py` checks that they agree on every count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Protocol

import numpy as np

from concord.governance.methods import errors
from concord.governance.methods.blocs import BlocCheck, BlocCondition, check
from concord.governance.methods.errors import BallotInvalid, MethodInvalid
from concord.governance.methods.result import Jsonable


@dataclass(frozen=True)
class RankedBallot(Jsonable):
    member: str
    ranking: tuple[str, ...]
    weight: int = 1


class Grouped(Protocol):
    """What a count needs to know of the ballots besides the pile."""

    @property
    def valid(self) -> int: ...  # total weight of ballots that rank someone
    @property
    def blank(self) -> int: ...  # total weight of ballots that rank no one
    def group_of(self, ballot: int) -> int: ...  # the group of ballots[ballot]; -1 if blank


@dataclass(frozen=True)
class Groups:
    """The ballots grouped by ranking (as candidate indices), in Python lists."""

    rankings: list[tuple[int, ...]]
    weights: list[int]
    of_ballot: list[int]
    valid: int
    blank: int

    def group_of(self, ballot: int) -> int:
        return self.of_ballot[ballot]


@dataclass(frozen=True)
class GroupArrays:
    """The same groups as arrays: prefs (groups × longest + 1), padded with the sentinel."""

    prefs: np.ndarray  # (groups, width) int32
    weights: np.ndarray  # (groups,) int64
    keys: list[tuple[str, ...]]  # the ranking of each group
    rankings: list[tuple[str, ...]]  # the ranking of each ballot
    valid: int
    blank: int

    index: dict[tuple[str, ...], int] = field(default_factory=dict)  # ranking → group

    def group_of(self, ballot: int) -> int:
        # Only bloc conditions ask, so the ranking → group index is built on first use.
        if not self.index:
            self.index.update(zip(self.keys, range(len(self.keys)), strict=True))
        return self.index.get(self.rankings[ballot], -1)


def check_candidates(candidates: Sequence[str]) -> None:
    if not candidates:
        raise MethodInvalid(reason=errors.NO_CANDIDATES)
    if len(set(candidates)) != len(candidates):
        raise MethodInvalid(reason=errors.LISTED_TWICE)


def group(candidates: Sequence[str], ballots: Sequence[RankedBallot]) -> Groups:
    """The ballots by ranking; refuses unknown or repeated candidates, bad weights, and voters
    who cast twice."""
    check_candidates(candidates)
    position = {c: i for i, c in enumerate(candidates)}
    members = [b.member for b in ballots]
    if len(set(members)) != len(members):
        seen: set[str] = set()
        twice = next(m for m in members if m in seen or seen.add(m))  # type: ignore[func-returns-value]
        raise BallotInvalid(member=twice, reason=errors.TWICE)
    given = [b.weight for b in ballots]
    if set(map(type, given)) - {int} or min(given, default=1) < 1:
        bad = next(b for b in ballots if type(b.weight) is not int or b.weight < 1)
        raise BallotInvalid(member=bad.member, reason=errors.WEIGHT)
    # Counting identical rankings is the one pass over every ballot: Counter runs it in C.
    if given.count(1) == len(given):
        weights: dict[tuple[str, ...], int] = Counter(b.ranking for b in ballots)
    else:
        weights = {}
        for b in ballots:
            weights[b.ranking] = weights.get(b.ranking, 0) + b.weight
    blank = weights.pop((), 0)
    rankings: list[tuple[int, ...]] = []
    index: dict[tuple[str, ...], int] = {(): -1}
    for ranking in weights:
        try:
            as_ints = tuple(map(position.__getitem__, ranking))
        except KeyError as exc:
            member = next(b.member for b in ballots if b.ranking == ranking)
            raise BallotInvalid(member=member, reason=errors.UNKNOWN_CANDIDATE) from exc
        if len(set(as_ints)) != len(as_ints):
            member = next(b.member for b in ballots if b.ranking == ranking)
            raise BallotInvalid(member=member, reason=errors.RANKED_TWICE)
        index[ranking] = len(rankings)
        rankings.append(as_ints)
    return Groups(
        rankings=rankings,
        weights=list(weights.values()),
        of_ballot=[index[b.ranking] for b in ballots],
        valid=sum(weights.values()),
        blank=blank,
    )


def group_arrays(candidates: Sequence[str], ballots: Sequence[RankedBallot]) -> GroupArrays:
    """`group` without a Python loop per ballot: rankings are counted by `Counter` and mapped to
    indices by `map` (both in C), then laid into one padded matrix. Any fault sends the ballots
    through `group`, which names the faulty ballot."""
    check_candidates(candidates)
    sentinel = len(candidates)
    position = {c: i for i, c in enumerate(candidates)}
    rankings = list(map(attrgetter("ranking"), ballots))
    given = list(map(attrgetter("weight"), ballots))
    members = set(map(attrgetter("member"), ballots))
    if len(members) != len(ballots) or set(map(type, given)) - {int} or min(given, default=1) < 1:
        group(candidates, ballots)  # raises
    if given.count(1) == len(given):
        counts: dict[tuple[str, ...], int] = Counter(rankings)
    else:
        counts = {}
        for ranking, weight in zip(rankings, given, strict=True):
            counts[ranking] = counts.get(ranking, 0) + weight
    blank = counts.pop((), 0)
    keys = list(counts)  # one per group
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))  # (groups,)
    try:
        flat = np.fromiter(  # (preferences,) every group's ranking, end to end
            map(position.__getitem__, chain.from_iterable(keys)),
            dtype=np.int32,
            count=int(lengths.sum()),
        )
    except KeyError:
        group(candidates, ballots)  # raises: an unknown candidate
        raise
    prefs = np.full((len(keys), int(lengths.max(initial=0)) + 1), sentinel, dtype=np.int32)
    starts = np.cumsum(lengths) - lengths
    rows = np.repeat(np.arange(len(keys)), lengths)
    prefs[rows, np.arange(flat.size) - np.repeat(starts, lengths)] = flat  # (groups, width)
    ordered = np.sort(prefs, axis=1)
    if ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] < sentinel)).any():
        group(candidates, ballots)  # raises: a candidate ranked twice
    weights = np.fromiter(counts.values(), dtype=np.int64, count=len(keys))
    return GroupArrays(
        prefs=prefs,
        weights=weights,
        keys=keys,
        rankings=rankings,
        valid=int(weights.sum()),
        blank=blank,
    )


@dataclass(frozen=True)
class Moved:
    """What one transfer did: per candidate index the value received, and what was lost."""

    received: list[int]
    non_transferable: int
    rounding: int


class Pile(Protocol):
    def totals(self) -> list[int]: ...
    def transfer(
        self, source: int, continuing: Sequence[bool], surplus: int | None, total: int
    ) -> Moved: ...
    def held(self, candidate: int) -> list[int]: ...


class PlainPile:
    """Groups in Python lists: the reference the fast pile is tested against."""

    def __init__(self, groups: Groups, candidates: int, unit: int) -> None:
        self.rankings = groups.rankings
        self.weights = groups.weights
        self.values = [unit] * len(self.rankings)
        self.pointer = [0] * len(self.rankings)
        self.holding: list[list[int]] = [[] for _ in range(candidates)]
        for g, ranking in enumerate(self.rankings):
            self.holding[ranking[0]].append(g)
        self._totals = [sum(self.weights[g] * unit for g in gs) for gs in self.holding]

    def totals(self) -> list[int]:
        return list(self._totals)

    def held(self, candidate: int) -> list[int]:
        return sorted(self.holding[candidate])

    def transfer(
        self, source: int, continuing: Sequence[bool], surplus: int | None, total: int
    ) -> Moved:
        received = [0] * len(self._totals)
        lost = 0
        for g in self.holding[source]:
            value = self.values[g] if surplus is None else surplus * self.values[g] // total
            self.values[g] = value
            ranking, p = self.rankings[g], self.pointer[g] + 1
            while p < len(ranking) and not continuing[ranking[p]]:
                p += 1
            self.pointer[g] = p
            if p < len(ranking):
                received[ranking[p]] += self.weights[g] * value
                self.holding[ranking[p]].append(g)
            else:
                lost += self.weights[g] * value
        self.holding[source] = []
        return _settle(self._totals, source, received, lost, surplus, total)


class ArrayPile:
    """The same groups as arrays: rankings (groups × longest + 1), a pointer and value each."""

    def __init__(self, groups: GroupArrays, candidates: int, unit: int) -> None:
        n = len(groups.weights)
        # prefs[g, k]: the k-th preference of group g; `candidates` (the sentinel) pads the rest.
        self.prefs = groups.prefs  # (n, width)
        self.weights = groups.weights  # (n,)
        self.values = np.full(n, unit, dtype=np.int64)  # (n,)
        self.pointer = np.zeros(n, dtype=np.int64)  # (n,)
        self.holder = self.prefs[:, 0].copy()  # (n,), `candidates` once exhausted
        self.candidates = candidates
        self._totals = [int(x) for x in self._sum(self.holder, self.weights * unit)[:candidates]]

    def _sum(self, at: np.ndarray, amounts: np.ndarray) -> np.ndarray:
        counted = np.bincount(at, weights=amounts, minlength=self.candidates + 1)
        return np.rint(counted).astype(np.int64)

    def totals(self) -> list[int]:
        return list(self._totals)

    def held(self, candidate: int) -> list[int]:
        return list(np.flatnonzero(self.holder == candidate).tolist())

    def transfer(
        self, source: int, continuing: Sequence[bool], surplus: int | None, total: int
    ) -> Moved:
        keep = np.append(np.asarray(continuing, dtype=bool), True)  # the sentinel stops a walk
        moving = np.flatnonzero(self.holder == source)  # (m,) groups that move
        if surplus is not None:
            self.values[moving] = surplus * self.values[moving] // total
        pointer = self.pointer[moving] + 1
        holder = self.prefs[moving, pointer]
        walking = np.flatnonzero(~keep[holder])  # groups still on a candidate that is not in
        while walking.size:
            pointer[walking] += 1
            holder[walking] = self.prefs[moving[walking], pointer[walking]]
            walking = walking[~keep[holder[walking]]]
        self.pointer[moving], self.holder[moving] = pointer, holder
        counted = self._sum(holder, self.weights[moving] * self.values[moving])
        received = [int(x) for x in counted[: self.candidates]]
        return _settle(self._totals, source, received, int(counted[-1]), surplus, total)


def _settle(
    totals: list[int],
    source: int,
    received: list[int],
    lost: int,
    surplus: int | None,
    total: int,
) -> Moved:
    """Credits what was received; the source keeps the quota (a surplus) or nothing."""
    for c, amount in enumerate(received):
        totals[c] += amount
    moved = total if surplus is None else surplus
    totals[source] -= moved
    return Moved(received, lost, moved - sum(received) - lost)


def make_pile(
    candidates: Sequence[str], ballots: Sequence[RankedBallot], unit: int, fast: bool
) -> tuple[Pile, Grouped]:
    """The ballots grouped and piled: with arrays when asked for and when int64 / float64 stay
    exact (surplus × value < 2**63, sums < 2**53); in Python integers otherwise."""
    if fast:
        arrays = group_arrays(candidates, ballots)
        if arrays.valid * unit * unit < 2**62 and arrays.valid * unit < 2**52:
            return ArrayPile(arrays, len(candidates), unit), arrays
    groups = group(candidates, ballots)
    return PlainPile(groups, len(candidates), unit), groups


def bloc_support(
    condition: BlocCondition | None,
    blocs: Mapping[str, frozenset[str]],
    ballots: Sequence[RankedBallot],
    groups: Grouped,
    winner: str,
    held: set[int],
) -> list[BlocCheck]:
    """The condition judged for `winner` in each bloc: its first preferences (basis "first") or
    the ballots it held when elected ("final"), ÷ the bloc's valid ballots, by weight."""
    if condition is None:
        return []
    out = []
    for bloc, members in blocs.items():
        inside = [i for i, b in enumerate(ballots) if b.member in members and b.ranking]
        if condition.basis == "first":
            support = sum(ballots[i].weight for i in inside if ballots[i].ranking[0] == winner)
        else:
            support = sum(ballots[i].weight for i in inside if groups.group_of(i) in held)
        inside_weight = sum(ballots[i].weight for i in inside)
        out.append(check(condition, bloc, winner, support, inside_weight))
    return out
