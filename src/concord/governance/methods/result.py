"""What every method shares: turning a result into JSON, and breaking ties reproducibly.

Ties are never broken by `random()`. The rule, in every method that can tie:

1. look back over the earlier rounds (most recent first) and favour the candidate that had more
   there — the Scottish STV rule (SSI 2007/42, rules 49(2) and 51(2)), used for IRV as well;
2. if they were level in every round, draw by *lot*: an order of the candidates fixed before
   the count. The caller passes it (`lot=`), usually as `draw_lot(candidates, seed)` with a seed
   that is published with the ballot (for example the ballot's log index), so anyone can redo it.
   Without one, the order in which the candidates were listed is the lot.

Earlier in the lot is favoured: it is elected or transferred first, and excluded last.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

# STV counts in units of 1/100000 of a vote (five decimal places, any remainder ignored).
SCALE = 100_000


def fixed(units: int) -> str:
    """`units` (1/100000 of a vote) as an exact decimal string: 1234500 → "12.34500"."""
    sign = "-" if units < 0 else ""
    whole, part = divmod(abs(units), SCALE)
    return f"{sign}{whole}.{part:05d}"


def jsonable(value: Any) -> Any:
    """`value` with dataclasses, tuples, Fractions and Decimals made plain JSON.

    Fractions become exact strings ("2/3"), never floats, so a recount compares equal."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Fraction | Decimal):
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted(jsonable(v) for v in value)
    return value


class Jsonable:
    """Mixin: `to_json()` for the frozen result dataclasses."""

    def to_json(self) -> dict[str, Any]:
        out = jsonable(self)
        assert isinstance(out, dict)
        return out


def draw_lot(candidates: Sequence[str], seed: str) -> tuple[str, ...]:
    """The candidates in an order anyone can recompute from `seed`: by SHA-256 of seed and name."""
    return tuple(
        sorted(candidates, key=lambda c: hashlib.sha256(f"{seed}\x00{c}".encode()).hexdigest())
    )


def lot_order(candidates: Sequence[str], lot: Sequence[str] | None) -> tuple[str, ...]:
    """The lot to use: `lot` when given (it must hold every candidate once), else the listing."""
    if lot is None:
        return tuple(candidates)
    from concord.governance.methods import errors

    if sorted(lot) != sorted(candidates):
        raise errors.MethodInvalid(reason=errors.LOT)
    return tuple(lot)


@dataclasses.dataclass(frozen=True)
class TieBreak(Jsonable):
    """How a tie was broken: among `tied`, `chosen` by `by` ("round" N's figures, or "lot")."""

    tied: tuple[str, ...]
    chosen: str
    by: str
    round: int | None = None


def break_tie(
    tied: Sequence[str],
    history: Sequence[Mapping[str, Any]],
    lot: Sequence[str],
    *,
    lowest: bool,
) -> TieBreak:
    """One of `tied`: the lowest (`lowest=True`, for exclusion) or highest by earlier rounds.

    `history[i]` holds the figures of round i + 1 (any ordered numbers per candidate). Going back
    from the most recent round, only the candidates lowest (or highest) there stay in the tie;
    when one is left it is chosen. Level throughout: the lot decides (earlier = favoured)."""
    pool = sorted(tied, key=lot.index)
    for index in range(len(history) - 1, -1, -1):
        figures = history[index]
        values = [figures[c] for c in pool]
        pick = min(values) if lowest else max(values)
        kept = [c for c, v in zip(pool, values, strict=True) if v == pick]
        if len(kept) < len(pool):
            pool = kept
            if len(pool) == 1:
                return TieBreak(tuple(sorted(tied, key=lot.index)), pool[0], "round", index + 1)
    chosen = pool[-1] if lowest else pool[0]
    return TieBreak(tuple(sorted(tied, key=lot.index)), chosen, "lot")


@dataclasses.dataclass(frozen=True)
class Check(Jsonable):
    """One condition of an outcome, with the figures that decided it."""

    name: str
    met: bool
    figures: Mapping[str, Any]
