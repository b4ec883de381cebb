"""Bounds on what a request may carry, checked at the edge before any domain sees it.

Every number a client sends ends up in a database column (64-bit at most), a log entry
(canonical JSON, finite numbers only) or a loop: an id of 10^20, a `NaN` or a JSON body nested
100,000 deep must be refused with a coded 400/422, never reach a query or a serializer and
come back as a 500. Routes declare their parameters with the types below instead of bare
`int`/`float`, so that the bound is stated once and shows in the OpenAPI schema.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from fastapi import Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from concord.errors import N_, ConcordError, Invalid

# Every table's id (and a round's number) is an INTEGER column, the log's indexes and sizes
# BIGINT: a value past these cannot exist, and PostgreSQL refuses to even compare with it.
MAX_ID = 2**31 - 1
MAX_INDEX = 2**63 - 1
# Nesting a JSON body may have: our models are a few levels deep; 32 leaves room for
# provenance and metadata while keeping every recursive walk over it far from Python's limit.
MAX_JSON_DEPTH = 32
# A JSON header is a small object (a node's local metrics), never a document.
MAX_JSON_HEADER_BYTES = 4096
MAX_JSON_HEADER_KEYS = 64

Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive id")]
"""A database id in the path."""
Number = Annotated[int, Path(ge=0, le=MAX_ID, description="A round's number")]
"""A small counter in the path (a round's number)."""
Index = Annotated[int, Path(ge=0, le=MAX_INDEX, description="A zero-based log index")]
"""A position in the transparency log, in the path."""
QueryIndex = Annotated[int, Query(ge=0, le=MAX_INDEX)]
OptionalQueryIndex = Annotated[int | None, Query(ge=0, le=MAX_INDEX)]
OptionalQuerySize = Annotated[int | None, Query(ge=1, le=MAX_INDEX)]
YearPath = Annotated[int, Path(ge=1900, le=2200, description="A calendar year")]
OptionalYear = Annotated[int | None, Query(ge=1900, le=2200, description="A calendar year")]
Counter = Annotated[int, Query(ge=0, le=MAX_ID, description="A small counter")]
"""A small counter in the query (a round's attempt)."""
QueryId = Annotated[int, Query(ge=0, le=MAX_ID, description="An id")]
"""A database id in the query (0 where none)."""
Timestamp = Annotated[int, Query(ge=0, le=MAX_INDEX, description="Seconds since 1970")]
QuerySize = Annotated[int, Query(ge=0, le=MAX_INDEX, description="A size in bytes")]
Seconds = Annotated[float, Query(ge=0, le=86400, allow_inf_nan=False, description="Seconds")]
"""A duration in the query (a long poll's wait); `inf` and `nan` are refused."""
FiniteHeader = Annotated[float, Header(allow_inf_nan=False, ge=0, le=1e12)]
"""A non-negative measurement in a header (energy, emissions); `inf` and `nan` are refused."""


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable dotted code, e.g. `request.invalid`")
    message: str = Field(description="What went wrong, in the request's language")
    details: dict[str, Any] = Field(description="The error's parameters")


class ErrorBody(BaseModel):
    """Every error the API answers has this body."""

    error: ErrorDetail


# Declared on every operation: FastAPI would otherwise document its own 422 body, which this
# API never sends (`problems_response` answers instead).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed request (`request.malformed_json`)"},
    422: {"model": ErrorBody, "description": "Invalid request (`request.invalid`, …)"},
}


class MalformedJson(ConcordError):
    code = "request.malformed_json"
    status = 400
    message = N_(
        "The request body is not valid JSON: it must be UTF-8 text, not nested too deeply."
    )


class NotFinite(Invalid):
    code = "request.not_finite"
    message = N_("Numbers must be finite: NaN and Infinity are not accepted.")


class MalformedHeader(Invalid):
    code = "request.malformed_header"
    message = N_("The header {header} is not valid: {reason}")


def json_depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (a scalar is 0), without recursion. A
    non-finite number anywhere in it (Python's JSON reads `NaN` and `Infinity`) is refused."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise NotFinite()
        # PostgreSQL's text columns cannot hold NUL, and no person's words contain one.
        if isinstance(item, str) and "\x00" in item:
            raise MalformedJson()
        if isinstance(item, dict):
            if any("\x00" in str(key) for key in item):
                raise MalformedJson()
            item = list(item.values())
        if isinstance(item, list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:  # no need to walk the rest
                return depth
            stack.extend((child, depth) for child in item)
    return deepest


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def number_map(header: str, text: str) -> dict[str, float]:
    """Parses a header that carries a flat JSON object of finite numbers (a node's metrics).
    Bounded in size and keys; anything else (null, lists, nesting, NaN) is refused."""
    reason = N_("a JSON object of at most 64 finite numbers is expected")
    if len(text) > MAX_JSON_HEADER_BYTES:
        raise MalformedHeader(header=header, reason=reason)
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedHeader(header=header, reason=reason) from exc
    if not isinstance(parsed, dict) or len(parsed) > MAX_JSON_HEADER_KEYS:
        raise MalformedHeader(header=header, reason=reason)
    numbers: dict[str, float] = {}
    for key, value in parsed.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or len(key) > 100:
            raise MalformedHeader(header=header, reason=reason)
        try:
            number = float(value)
        except OverflowError as exc:  # an integer too large for a float
            raise MalformedHeader(header=header, reason=reason) from exc
        if not math.isfinite(number):
            raise MalformedHeader(header=header, reason=reason)
        numbers[key] = number
    return numbers


async def bounded_json(request: Request) -> None:
    """An app-wide dependency: a JSON body that parsed but nests deeper than `MAX_JSON_DEPTH`
    or holds a non-finite number is refused before any model or domain walks it (one `inf`
    stored would stop whatever later writes it to the log, which takes finite JSON only).
    Runs after FastAPI has read the body, and only for routes that declare one (an upload's
    stream is never touched)."""
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None:
        return
    kind = request.headers.get("content-type", "")
    if (kind and "json" not in kind) or not await request.body():  # read already: cached
        return
    try:
        parsed = await request.json()  # FastAPI parsed it already; this is the cached value
    except (ValueError, RecursionError) as exc:
        raise MalformedJson() from exc
    if json_depth(parsed) > MAX_JSON_DEPTH:
        raise MalformedJson()


def problems_response(exc: RequestValidationError) -> JSONResponse:
    """The answer to a request whose parameters or body did not validate: 400
    `request.malformed_json` when the body is not JSON at all, else 422 `request.invalid`
    naming every problem."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        error = MalformedJson()
        return JSONResponse(error.to_json(), status_code=error.status)
    problems = [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
        for e in errors
    ]
    body = {
        "error": {
            "code": "request.invalid",
            "message": "; ".join(f"{p['where']}: {p['problem']}" for p in problems),
            "details": {"problems": problems},
        }
    }
    return JSONResponse(body, status_code=422)
