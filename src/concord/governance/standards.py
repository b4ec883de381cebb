"""Standards become checks: CEL rules of adopted standards evaluated against a context.

CONTRACT used by the commons and the federation (keep the signatures):

    evaluate(session, subject, context) -> ConformanceReport

`subject` is "model" (context: the model card's metadata as `card.*`, the files as `files`)
or "job" (context: `JobSpec.context()`, i.e. `job.*`). The report lists every rule of every
adopted standard that applies to the subject, with pass / fail / error and the explanation;
`report.blocking_failures` are the failed rules of standards marked blocking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

Subject = Literal["model", "job"]


@dataclass(frozen=True, slots=True)
class RuleResult:
    standard: str  # the standard's reference, e.g. "CS-2026-1"
    rule: str  # the rule's id inside the standard
    explanation: str  # what the rule asks, for people
    outcome: Literal["pass", "fail", "error"]
    blocking: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ConformanceReport:
    subject: Subject
    results: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.outcome == "pass" for r in self.results)

    @property
    def blocking_failures(self) -> list[RuleResult]:
        return [r for r in self.results if r.blocking and r.outcome != "pass"]

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "passed": self.passed,
            "results": [
                {
                    "standard": r.standard,
                    "rule": r.rule,
                    "explanation": r.explanation,
                    "outcome": r.outcome,
                    "blocking": r.blocking,
                    "detail": r.detail,
                }
                for r in self.results
            ],
        }


def evaluate(session: Session, subject: Subject, context: dict[str, Any]) -> ConformanceReport:
    """Evaluates every adopted standard's rules for `subject` against `context`.

    Placeholder until governance lands adopted standards: with none adopted, the report is
    empty and passes, which is the truth for a hub with no standards.
    """
    return ConformanceReport(subject=subject, results=[])
