"""No path parameter promises what a fixed path beside it answers.

Starlette routes `/api/impact/models` to the route declared first, but the schema of
`/api/impact/{name}` also described `name=models` as an indicator (an object) while the answer
was the models' list: Schemathesis found it in CI. Every parameter segment with a fixed sibling
(same method, same shape) must exclude the sibling's word by an `enum` or a `pattern`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI


def _parameter_schema(operation: dict[str, Any], name: str) -> dict[str, Any]:
    for parameter in operation.get("parameters", []):
        if parameter["name"] == name and parameter["in"] == "path":
            return dict(parameter.get("schema", {}))
    return {}


def _excludes(schema: dict[str, Any], word: str) -> bool:
    if "enum" in schema:
        return word not in schema["enum"]
    return "pattern" in schema and re.search(schema["pattern"], word) is None


def _taken(segment: str, word: str) -> tuple[str, str] | None:
    """(parameter, value) if the parametric `segment` (`{name}`, `{name}.csv`) matches the
    fixed `word`; None if the segment is fixed or cannot match it."""
    names = re.findall(r"\{([^}]+)\}", segment)
    if len(names) != 1 or word.startswith("{"):
        return None
    before, _sep, after = segment.partition("{" + names[0] + "}")
    matched = re.fullmatch(re.escape(before) + "(.+)" + re.escape(after), word)
    return (names[0], matched.group(1)) if matched else None


def _shadowed(paths: dict[str, dict[str, Any]]) -> list[str]:
    found = []
    for path, operations in paths.items():
        segments = path.strip("/").split("/")
        for other, other_operations in paths.items():
            words = other.strip("/").split("/")
            if other == path or len(words) != len(segments):
                continue
            for position, segment in enumerate(segments):
                taken = _taken(segment, words[position])
                same_elsewhere = all(
                    a == b or a.startswith("{")
                    for i, (a, b) in enumerate(zip(segments, words, strict=True))
                    if i != position
                )
                if taken is None or not same_elsewhere:
                    continue
                name, value = taken
                for method in set(operations) & set(other_operations):
                    if not _excludes(_parameter_schema(operations[method], name), value):
                        found.append(f"{method.upper()} {path} would take {other}")
    return found


def test_no_path_parameter_promises_a_fixed_siblings_answer(app: FastAPI) -> None:
    # Prepare
    paths = app.openapi()["paths"]
    # Execute
    shadowed = _shadowed(paths)
    # Assert
    assert not shadowed, shadowed


def test_the_check_sees_a_shadowed_parameter() -> None:
    # Prepare: the fault as it was, an indicator route beside the fixed `models` route
    get = {"get": {"parameters": [{"name": "name", "in": "path", "schema": {"type": "string"}}]}}
    paths = {"/api/impact/models": {"get": {}}, "/api/impact/{name}": get}
    # Execute
    shadowed = _shadowed(paths)
    # Assert
    assert shadowed == ["GET /api/impact/{name} would take /api/impact/models"]
