"""Decision methods: pure functions from plain ballots to a result with the full arithmetic.

One module a method — `consent`, `irv` (ranked choice, one seat), `stv` (committees, Scottish
STV rules), `score` (0–5), `approval` (approval and dot votes) — each taking ballots as frozen
dataclasses of member ids, preferences and weights, and returning a frozen result whose
`to_json()` is what the log and the decision page show. Nothing here touches the database:
the same ballots give the same result on any machine, so anyone can recount from the log.
Shared parts: `blocs` (bloc conditions), `result` (JSON, tie-breaks, the lot), `ranked`
(ranked ballots and the plain and array piles that IRV and STV count with).
"""

from __future__ import annotations

from concord.errors import N_
from concord.governance.methods.approval import ApprovalResult, DotBallot, approval, approve
from concord.governance.methods.blocs import BlocCheck, BlocCondition
from concord.governance.methods.consent import ConsentResult, Response, consent
from concord.governance.methods.irv import IrvResult, irv
from concord.governance.methods.ranked import RankedBallot
from concord.governance.methods.result import draw_lot
from concord.governance.methods.score import ScoreBallot, ScoreResult, score
from concord.governance.methods.stv import StvResult, stv

# The names a page or a charter shows for each method.
LABELS = {
    "consent": N_("Consent (passes unless blocked)"),
    "irv": N_("Ranked choice (instant run-off)"),
    "stv": N_("Single transferable vote (Scottish rules)"),
    "score": N_("Score vote (0–5)"),
    "approval": N_("Approval vote"),
    "dots": N_("Dot vote"),
}
# The words a result uses for its outcome and for what happened in a round or stage.
OUTCOMES = {
    "adopted": N_("adopted"),
    "blocked": N_("blocked"),
    "elected": N_("elected"),
    "bloc_condition_failed": N_("a bloc condition was not met"),
    "no_valid_ballots": N_("no valid ballots"),
    "consent": N_("consent"),
    "stand_aside": N_("stand aside"),
    "block": N_("block"),
    "exhausted": N_("exhausted"),
    "surplus": N_("transfer of a surplus"),
    "exclusion": N_("exclusion"),
    "first_preferences": N_("first preferences"),
    "last_vacancies": N_("elected to the last vacancies"),
    "quota": N_("reached the quota"),
    "lot": N_("by lot"),
}

__all__ = [
    "LABELS",
    "OUTCOMES",
    "ApprovalResult",
    "BlocCheck",
    "BlocCondition",
    "ConsentResult",
    "DotBallot",
    "IrvResult",
    "RankedBallot",
    "Response",
    "ScoreBallot",
    "ScoreResult",
    "StvResult",
    "approval",
    "approve",
    "consent",
    "draw_lot",
    "irv",
    "score",
    "stv",
]
