"""Standards become checks: CEL rules of adopted standards evaluated against a context.

CONTRACT used by the commons and the federation (keep the signatures):

    evaluate(session, subject, context) -> ConformanceReport

`subject` is "model" (context: the model card's metadata as `card.*`, the files as `files`),
"job" (context: `JobSpec.context()`, i.e. `job.*`) or "campaign" (an evaluation campaign about
to open: `campaign.*`, from `federation.evaluation.standards_context`). The report lists every
rule of every adopted standard that applies to the subject, with pass / fail / error and the
explanation; `report.blocking_failures` are the failed rules of standards marked blocking.

Bounded evaluation. CEL has no loops or recursion; the only iteration is the comprehension
macros (`all`, `exists`, `exists_one`, `map`, `filter`) over lists in the context. The Rust
evaluator cannot be interrupted from Python, so instead of a timeout we bound the work up
front: an expression has at most 1,000 characters, brackets nest at most 12 deep, it holds
at most 4 comprehensions and none inside another (so the cost is linear in the context), and
the context is at most 256 KB of JSON. A rule breaking these is refused when it is proposed;
an oversized context gives `error` outcomes rather than running.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import cel
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import N_, Invalid

Subject = Literal["model", "job", "campaign"]


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


MAX_EXPRESSION = 1000
MAX_NESTING = 12
MAX_COMPREHENSIONS = 4
MAX_CONTEXT_BYTES = 256_000
MACROS = ("all", "exists", "exists_one", "map", "filter")
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class RuleInvalid(Invalid):
    code = "standard.rule_invalid"
    message = N_("Rule “{rule}” does not compile: {reason}")


class RuleUnbounded(Invalid):
    code = "standard.rule_unbounded"
    message = N_("Rule “{rule}” could run unbounded: {reason}")


class RuleSpec(BaseModel):
    """One machine-checkable rule of a standard."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=RULE_ID.pattern, description="Unique inside the standard")
    subject: Subject
    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION * 4)
    explanation: str = Field(min_length=1, max_length=1000)


class StandardSpec(BaseModel):
    """What a `standard` proposal carries: its rules, and whether failing them blocks."""

    model_config = ConfigDict(extra="forbid")

    blocking: bool = True
    rules: list[RuleSpec] = Field(default_factory=list, max_length=100)


def check_bounds(rule: str, expression: str) -> None:
    """Refuses expressions that are too long, too deep, or nest comprehensions."""
    if len(expression) > MAX_EXPRESSION:
        raise RuleUnbounded(rule=rule, reason=f"longer than {MAX_EXPRESSION} characters")
    depth = 0
    stack: list[bool] = []  # per open bracket: does it open a comprehension?
    comprehensions = 0
    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch in "\"'":  # skip string literals
            j = i + 1
            while j < n and expression[j] != ch:
                j += 2 if expression[j] == "\\" else 1
            i = j + 1
            continue
        if ch in "([{":
            macro = False
            if ch == "(":
                match = re.search(r"\.\s*([a-z_]+)\s*$", expression[:i])
                macro = bool(match and match.group(1) in MACROS)
            if macro:
                comprehensions += 1
                if any(stack):
                    raise RuleUnbounded(rule=rule, reason="a comprehension inside another")
            stack.append(macro)
            depth = len(stack)
            if depth > MAX_NESTING:
                raise RuleUnbounded(rule=rule, reason=f"brackets nest deeper than {MAX_NESTING}")
        elif ch in ")]}" and stack:
            stack.pop()
        i += 1
    if comprehensions > MAX_COMPREHENSIONS:
        raise RuleUnbounded(rule=rule, reason=f"more than {MAX_COMPREHENSIONS} comprehensions")


@lru_cache(maxsize=512)
def _program(expression: str) -> Any:
    return cel.compile(expression)


def compile_rule(rule: str, expression: str) -> Any:
    """The compiled program, or a coded error; used when a standard is proposed."""
    check_bounds(rule, expression)
    try:
        return _program(expression)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise RuleInvalid(rule=rule, reason=str(exc).splitlines()[0][:300]) from exc


def validate_spec(spec: StandardSpec) -> None:
    seen: set[str] = set()
    for r in spec.rules:
        if r.id in seen:
            raise RuleInvalid(rule=r.id, reason="the id is used twice")
        seen.add(r.id)
        compile_rule(r.id, r.expression)


def run_rule(expression: str, context: dict[str, Any]) -> tuple[str, str]:
    """(outcome, detail) of one rule on a context already checked for size."""
    try:
        value = _program(expression).execute(context)
    except Exception as exc:  # CEL raises several types for missing fields and bad types
        return "error", f"{type(exc).__name__}: {exc}"[:300]
    if value is True:
        return "pass", ""
    if value is False:
        return "fail", ""
    return "error", f"the rule gave {type(value).__name__}, not true or false"


def evaluate(session: Session, subject: Subject, context: dict[str, Any]) -> ConformanceReport:
    """Evaluates every adopted standard's rules for `subject` against `context`."""
    from concord.governance.tables import Proposal

    standards = session.scalars(
        select(Proposal)
        .where(Proposal.kind == "standard", Proposal.status == "adopted")
        .order_by(Proposal.id)
    ).all()
    try:
        size = len(json.dumps(context, default=str))
    except (TypeError, ValueError):
        size = MAX_CONTEXT_BYTES + 1
    results: list[RuleResult] = []
    for standard in standards:
        spec = StandardSpec.model_validate(standard.body)
        for rule in spec.rules:
            if rule.subject != subject:
                continue
            if size > MAX_CONTEXT_BYTES:
                outcome, detail = "error", f"context larger than {MAX_CONTEXT_BYTES} bytes"
            else:
                outcome, detail = run_rule(rule.expression, context)
            results.append(
                RuleResult(
                    standard=standard.reference,
                    rule=rule.id,
                    explanation=rule.explanation,
                    outcome=outcome,  # type: ignore[arg-type]
                    blocking=spec.blocking,
                    detail=detail,
                )
            )
    return ConformanceReport(subject=subject, results=results)
