"""The error catalogue: codes are stable and unique, messages translate, statuses map once."""

from __future__ import annotations

import importlib
import pkgutil

import concord
from concord.errors import ConcordError, TooLarge


def _all_error_classes() -> list[type[ConcordError]]:
    for module in pkgutil.walk_packages(concord.__path__, "concord."):
        if ".migrations" in module.name or module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    found: list[type[ConcordError]] = []
    stack = [ConcordError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def test_codes_are_unique_per_leaf_class() -> None:
    seen: dict[str, type] = {}
    for cls in _all_error_classes():
        if cls.__subclasses__() or cls.__name__ == "RemoteError":
            continue
        assert cls.code not in seen, f"{cls} reuses code {cls.code} of {seen[cls.code]}"
        seen[cls.code] = cls
        assert 400 <= cls.status < 600


def test_error_renders_json_and_exit_code() -> None:
    exc = TooLarge(limit=10)
    body = exc.to_json("en")
    assert body["error"]["code"] == "request.too_large"
    assert "10" in body["error"]["message"]
    assert exc.exit_code == 2
    assert exc.render("fr") != exc.render("en")
