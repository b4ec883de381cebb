"""Consent: a text passes unless members block it — today's formal objection, generalised.

Each member answers *consent*, *stand aside* (does not agree, will not stop it) or *block*; a
block must carry a written reason (`BlockWithoutReason` otherwise). The text passes when

- at least one member consents (nothing passes on silence alone, as in the charter), and
- the blocks, counted by weight (a proxy blocks once for every vote it carries), are at most
  `cap` — `cap=0` is the WTO rule: any block stops it; and
- with a `BlocCondition`, inside each named bloc: at most `max_blocks` blocks (when set) and
  consents ÷ the bloc's responses meeting `threshold` (0 by default). A bloc that did not
  answer at all does not carry the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from concord.governance.methods import errors
from concord.governance.methods.blocs import (
    BlocCheck,
    BlocCondition,
    Membership,
    check,
    member_blocs,
)
from concord.governance.methods.errors import BallotInvalid, BlockWithoutReason, MethodInvalid
from concord.governance.methods.result import Check, Jsonable

Stance = Literal["consent", "stand_aside", "block"]
STANCES: tuple[Stance, ...] = ("consent", "stand_aside", "block")


@dataclass(frozen=True)
class Response(Jsonable):
    member: str
    stance: Stance
    reason: str = ""
    weight: int = 1


@dataclass(frozen=True)
class ConsentResult(Jsonable):
    method: str
    cap: int
    counts: dict[str, int]  # stance → total weight
    blocks: tuple[Response, ...]  # every block with its reason, by member
    checks: tuple[Check, ...]
    bloc_checks: tuple[BlocCheck, ...]
    passed: bool
    outcome: str  # "adopted" or "blocked"


def _validate(responses: Sequence[Response]) -> None:
    seen: set[str] = set()
    for r in responses:
        if r.member in seen:
            raise BallotInvalid(member=r.member, reason=errors.TWICE)
        seen.add(r.member)
        if r.stance not in STANCES:
            raise BallotInvalid(member=r.member, reason=errors.UNKNOWN_STANCE)
        if isinstance(r.weight, bool) or not isinstance(r.weight, int) or r.weight < 1:
            raise BallotInvalid(member=r.member, reason=errors.WEIGHT)
        if r.stance == "block" and not r.reason.strip():
            raise BlockWithoutReason(member=r.member)


def consent(
    responses: Sequence[Response],
    *,
    cap: int = 0,
    condition: BlocCondition | None = None,
    membership: Membership | None = None,
) -> ConsentResult:
    """Whether the text passes under consent with at most `cap` blocks, with every figure."""
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        raise MethodInvalid(reason=errors.CAP)
    _validate(responses)
    blocs = member_blocs(condition, membership)
    counts: dict[str, int] = {s: sum(r.weight for r in responses if r.stance == s) for s in STANCES}
    checks = [
        Check("at_least_one_consent", counts["consent"] >= 1, {"consent": counts["consent"]}),
        Check("max_blocks", counts["block"] <= cap, {"blocks": counts["block"], "allowed": cap}),
    ]
    bloc_checks: list[BlocCheck] = []
    if condition is not None:
        for bloc, members in blocs.items():
            inside = [r for r in responses if r.member in members]
            agreed = sum(r.weight for r in inside if r.stance == "consent")
            blocked = sum(r.weight for r in inside if r.stance == "block")
            judged = check(condition, bloc, "text", agreed, sum(r.weight for r in inside))
            cap_met = condition.max_blocks is None or blocked <= condition.max_blocks
            bloc_checks.append(replace(judged, met=judged.met and cap_met, blocks=blocked))
    passed = all(c.met for c in checks) and all(b.met for b in bloc_checks)
    return ConsentResult(
        method="consent",
        cap=cap,
        counts=counts,
        blocks=tuple(sorted((r for r in responses if r.stance == "block"), key=lambda r: r.member)),
        checks=tuple(checks),
        bloc_checks=tuple(bloc_checks),
        passed=passed,
        outcome="adopted" if passed else "blocked",
    )
