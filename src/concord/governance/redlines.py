"""Amendments as edits of a text: line diffs, their order of voting, and the adopted text.

Every amendment to a proposal is an edit of the text *as proposed* (the original, in the
amendment's language; a language the proposal lacked has the empty text as original). Its
change is the line diff original → amendment (`difflib`, no junk heuristics), shown as tracked
changes: deleted lines in <del>, inserted ones in <ins>, each also marked “−” / “+” in text so
that nothing rests on colour alone.

Order: the amendments to one text are decided furthest from the original first — *furthest*
being the size of the change, the number of lines deleted plus lines inserted; equal sizes in
the order proposed. (Parliaments vote the amendment that departs most from the text first, so
that a smaller one is not adopted and then overtaken.)

Adopted text: the original with every adopted amendment's changes applied — a three-way merge
over the common original. Two amendments conflict when they change a common line of the
original, or insert at the same place, or one inserts where the other replaces; the later one
is refused with the lines named. Changes to neighbouring lines merge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher


@dataclass(frozen=True)
class Change:
    """Lines [start, end) of the original replaced by `lines` (an insertion when start == end)."""

    start: int
    end: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Conflict:
    """The change of the amendment at `index` (in adoption order) overlaps an earlier one's."""

    index: int
    earlier: int
    first_line: int  # 1-based, in the original
    last_line: int


def lines(text: str) -> list[str]:
    return text.splitlines()


def changes(original: str, text: str) -> list[Change]:
    old, new = lines(original), lines(text)
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    return [
        Change(i1, i2, tuple(new[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def distance(original: str, text: str) -> int:
    """The size of the change: lines deleted plus lines inserted."""
    return sum((c.end - c.start) + len(c.lines) for c in changes(original, text))


def diff(original: str, text: str) -> list[dict[str, str]]:
    """The text with tracked changes, line by line: {"op": "equal" | "delete" | "insert",
    "line": …}, deletions before the insertions that replace them."""
    old, new = lines(original), lines(text)
    out: list[dict[str, str]] = []
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += [{"op": "equal", "line": line} for line in old[i1:i2]]
            continue
        out += [{"op": "delete", "line": line} for line in old[i1:i2]]
        out += [{"op": "insert", "line": line} for line in new[j1:j2]]
    return out


def _touch(a: Change, b: Change) -> bool:
    """Whether two changes of the original overlap: common lines, or an insertion at the same
    place as another insertion or at (or inside) the lines another replaces."""
    if a.start == a.end and b.start == b.end:
        return a.start == b.start
    if a.start == a.end:
        return b.start <= a.start < b.end
    if b.start == b.end:
        return a.start <= b.start < a.end
    return a.start < b.end and b.start < a.end


def conflict(original: str, texts: Sequence[str]) -> Conflict | None:
    """The first amendment (in adoption order) whose change touches an earlier one's."""
    seen: list[tuple[int, Change]] = []
    for index, text in enumerate(texts):
        mine = changes(original, text)
        for change in mine:
            for earlier, other in seen:
                if _touch(change, other):
                    return Conflict(
                        index, earlier, change.start + 1, max(change.end, change.start + 1)
                    )
        seen += [(index, c) for c in mine]
    return None


def merge(original: str, texts: Sequence[str]) -> str:
    """The original with the changes of `texts` applied (they must not conflict)."""
    every = sorted((c for t in texts for c in changes(original, t)), key=lambda c: -c.start)
    out = lines(original)
    for change in every:
        out[change.start : change.end] = change.lines
    return "\n".join(out)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def digests(texts: dict[str, str]) -> dict[str, str]:
    """Language → SHA-256 of the text: what a decision entry records of the adopted text."""
    return {language: digest(text) for language, text in sorted(texts.items())}
