"""The decision method of a proposal, when it is not the charter's yes / no / abstain rule.

A resolution may be decided by one of the methods of `concord.governance.methods`: its `method`
is a small JSON object fixed when the proposal is drafted and logged with it,

    {"name": "stv", "options": ["amina", "bao", …], "seats": 3}
    {"name": "score", "options": ["compute", "data", "training"]}
    {"name": "approval", "options": […], "dots": 5}          # dots: a dot vote of 5 dots
    {"name": "consent", "cap": 0}                            # blocks allowed (0: any block stops)
    {"name": "irv", "options": […],
     "condition": {"blocs": ["global-south", "global-north"], "threshold": "1/2"}}

A ballot on such a proposal carries, besides the usual fields, a `vote` (see `check_vote`):
consent: "consent" | "stand_aside" | "block" (a block states its reason); irv and stv: the
options ranked, most preferred first; score: {option: 0–5}; approval: the approved options, or
{option: dots} for a dot vote. Its `choice` is the method's name.

Without a `condition`, the charter rule of the kind applies its `bloc_majority` blocs as the
weakest bloc condition: each bloc must give the outcome some support (threshold 0, strict).

Everything here is pure: `count` turns the counted ballots, the bloc memberships and the spec
into the arithmetic the decision entry carries, and the recount calls it again on the ballots
it derives from the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from concord.errors import N_, Invalid
from concord.governance import methods
from concord.governance.methods import errors as method_errors
from concord.governance.methods.errors import BallotInvalid

NAMES = ("consent", "irv", "stv", "score", "approval")
MAX_OPTIONS = 50
MAX_OPTION = 100


class BadMethod(Invalid):
    code = "proposal.method_invalid"
    message = N_("The decision method is not valid: {reason}")


NAME = N_("the method is consent, irv, stv, score or approval")
OPTIONS = N_("the options are 2 to 50 distinct names of 1 to 100 characters")
CONSENT_OPTIONS = N_("a consent decision has no options")
SEATS = N_("stv elects 1 or more seats, fewer than the options")
DOTS = N_("dots is a whole number of at least 1")
CAP = N_("cap is a whole number of at least 0")
CONDITION = N_("the condition names blocs and a threshold like “1/2”")
KEYS = N_("the method has only the keys name, options, seats, dots, cap and condition")
ONLY_RESOLUTIONS = N_("only resolutions are decided by another method than the charter rule")
VOTE_SHAPE = N_("the vote does not have the form this method asks for")


def parse(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The checked, normalised spec of `raw`, or `BadMethod`."""
    if set(raw) - {"name", "options", "seats", "dots", "cap", "condition"}:
        raise BadMethod(reason=KEYS)
    name = raw.get("name")
    if name not in NAMES:
        raise BadMethod(reason=NAME)
    spec: dict[str, Any] = {"name": name}
    options = raw.get("options", [])
    if name == "consent":
        if options:
            raise BadMethod(reason=CONSENT_OPTIONS)
        cap = raw.get("cap", 0)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise BadMethod(reason=CAP)
        spec["cap"] = cap
    else:
        if (
            not isinstance(options, list)
            or not 2 <= len(options) <= MAX_OPTIONS
            or not all(isinstance(o, str) and 0 < len(o.strip()) <= MAX_OPTION for o in options)
            or len({o.strip() for o in options}) != len(options)
        ):
            raise BadMethod(reason=OPTIONS)
        spec["options"] = [o.strip() for o in options]
    if name == "stv":
        seats = raw.get("seats")
        if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats < len(options):
            raise BadMethod(reason=SEATS)
        spec["seats"] = seats
    if name == "approval" and raw.get("dots") is not None:
        dots = raw["dots"]
        if isinstance(dots, bool) or not isinstance(dots, int) or dots < 1:
            raise BadMethod(reason=DOTS)
        spec["dots"] = dots
    if raw.get("condition") is not None:
        spec["condition"] = _condition_json(raw["condition"])
    return spec


def _condition_json(raw: Any) -> dict[str, Any]:
    try:
        condition = condition_of(raw)
    except (TypeError, ValueError, ZeroDivisionError, KeyError, method_errors.MethodInvalid):
        raise BadMethod(reason=CONDITION) from None
    out: dict[str, Any] = {
        "blocs": list(condition.blocs),
        "threshold": str(condition.threshold),
        "strict": condition.strict,
        "basis": condition.basis,
    }
    if condition.max_blocks is not None:
        out["max_blocks"] = condition.max_blocks
    return out


def condition_of(raw: Mapping[str, Any]) -> methods.BlocCondition:
    blocs = raw["blocs"]
    if not isinstance(blocs, list) or not all(isinstance(b, str) for b in blocs):
        raise ValueError
    strict = raw.get("strict", False)
    max_blocks = raw.get("max_blocks")
    if not isinstance(strict, bool) or (
        max_blocks is not None and (isinstance(max_blocks, bool) or not isinstance(max_blocks, int))
    ):
        raise ValueError
    return methods.BlocCondition(
        blocs=tuple(blocs),
        threshold=Fraction(str(raw.get("threshold", "0"))),
        strict=strict,
        basis=raw.get("basis", "first"),
        max_blocks=max_blocks,
    )


def charter_condition(blocs: Sequence[str]) -> dict[str, Any] | None:
    """The weakest condition of the charter's `bloc_majority`: some support in each bloc."""
    if not blocs:
        return None
    return {"blocs": list(blocs), "threshold": "0", "strict": True, "basis": "first"}


def check_vote(spec: Mapping[str, Any], member: str, vote: Any, reason: str) -> None:
    """A ballot's `vote` has the method's form and names only the options; else the coded
    error (`decision.ballot_invalid`, `decision.block_without_reason`)."""
    bare = {k: v for k, v in spec.items() if k != "condition"}
    count(bare, [{"member": member, "vote": vote, "reason": reason}], {})


def _shape(member: str) -> BallotInvalid:
    return BallotInvalid(member=member, reason=VOTE_SHAPE)


def _strings(member: str, vote: Any) -> list[str]:
    if not isinstance(vote, list) or not all(isinstance(v, str) for v in vote):
        raise _shape(member)
    return vote


def _approved(member: str, vote: Any) -> list[str]:
    """An approval ballot's options, each once (a list would otherwise hide a repeat)."""
    options = _strings(member, vote)
    if len(set(options)) != len(options):
        raise BallotInvalid(member=member, reason=method_errors.APPROVE_ONCE)
    return options


def _ints(member: str, vote: Any) -> dict[str, int]:
    if not isinstance(vote, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in vote.values()
    ):
        raise _shape(member)
    return vote


def count(
    spec: Mapping[str, Any],
    ballots: Sequence[Mapping[str, Any]],
    membership: Mapping[str, Sequence[str]],
    seed: str = "",
) -> dict[str, Any]:
    """The method's result over `ballots` ({"member", "vote", "reason"}), as the decision
    entry's arithmetic: the spec, the method's full JSON result, the outcome, and `ranked` —
    the options in the order decided (the elected, the winner, or ranked by score or marks)."""
    name = spec["name"]
    condition = condition_of(spec["condition"]) if spec.get("condition") else None
    options = tuple(spec.get("options", ()))
    lot = methods.draw_lot(options, seed) if options else None
    ranked: list[dict[str, Any]] = []
    result: Any
    if name == "consent":
        responses = []
        for b in ballots:
            if b["vote"] not in ("consent", "stand_aside", "block"):
                raise BallotInvalid(member=b["member"], reason=method_errors.UNKNOWN_STANCE)
            responses.append(methods.Response(b["member"], b["vote"], b.get("reason", "")))
        result = methods.consent(
            responses, cap=spec.get("cap", 0), condition=condition, membership=membership
        )
        adopted = result.passed
    elif name in ("irv", "stv"):
        rankeds = [
            methods.RankedBallot(b["member"], tuple(_strings(b["member"], b["vote"])))
            for b in ballots
        ]
        if name == "irv":
            result = methods.irv(
                options, rankeds, lot=lot, condition=condition, membership=membership
            )
            winners = [result.winner] if result.winner else []
        else:
            result = methods.stv(
                options,
                rankeds,
                spec["seats"],
                lot=lot,
                condition=condition,
                membership=membership,
            )
            winners = [e.candidate for e in result.elected]
        adopted = result.outcome == "elected"
        ranked = [{"option": w, "rank": i + 1} for i, w in enumerate(winners)]
    elif name == "score":
        scores = [methods.ScoreBallot(b["member"], _ints(b["member"], b["vote"])) for b in ballots]
        result = methods.score(options, scores, lot=lot, condition=condition, membership=membership)
        adopted = result.top is not None
        ranked = [
            {"option": r.option, "rank": r.rank, "total": r.total, "mean": str(r.mean)}
            for r in result.ranking
            if r.conditions_met
        ]
    else:
        dots = spec.get("dots")
        marks = [
            methods.DotBallot(b["member"], _ints(b["member"], b["vote"]))
            if dots
            else methods.approve(b["member"], _approved(b["member"], b["vote"]))
            for b in ballots
        ]
        result = methods.approval(
            options, marks, dots=dots, lot=lot, condition=condition, membership=membership
        )
        adopted = result.top is not None
        ranked = [
            {"option": r.option, "rank": r.rank, "total": r.total, "voters": r.voters}
            for r in result.ranking
            if r.conditions_met
        ]
    return {
        "method": dict(spec),
        "result": result.to_json(),
        "ranked": ranked,
        "outcome": "adopted" if adopted else "rejected",
    }
