"""Recognising a pickle stream without ever loading it.

`pickletools.genops` only parses opcodes; it never imports or calls anything. Parsing alone is
not enough to tell a pickle from other bytes (ordinary text is full of opcode letters), so the
stack is followed as the unpickler would follow it, counting items and marks: a stream is a
pickle when it reaches STOP with one object left, or when a well-formed prefix would call
something (the unpickler runs REDUCE, INST, OBJ… as it reads them, before any later error), or
when it stays well-formed for longer than any other format could.
"""

from __future__ import annotations

import pickletools
from typing import IO, BinaryIO, cast

# Opcodes that make the unpickler import or call: what turns a pickle into code.
CALLS = frozenset({"REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD", "EXT1", "EXT2", "EXT4"})
IMPORTS = frozenset({"GLOBAL", "STACK_GLOBAL", "INST"})
MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
MEMO_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
OPCODES = 200_000  # a well-formed stream this long is a pickle, whatever else it claims
READ_LIMIT = 64 * 1024 * 1024  # bytes looked at from the start, so memory stays bounded
LONG_RUN = 1000  # well-formed opcodes before the read limit: a pickle, not a long length field


def _importable(arg: str) -> bool:
    """Whether GLOBAL's "module name" could name something to import: dotted identifiers.
    Lines of ordinary text often parse as GLOBAL, but rarely with two identifiers."""
    module, _space, name = arg.partition(" ")
    return all(part.isidentifier() for part in [*module.split("."), *name.split(".")])


class _Limited:
    """At most `limit` bytes of `handle` from its position, read only as asked (an opcode's
    announced length never allocates more); remembers whether the limit cut a read short."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self._handle = handle
        self._left = limit
        self.cut = False

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._handle.read(want) if want > 0 else b""
        self._left -= len(data)
        self.cut = self.cut or (len(data) < size and self._left <= 0)
        return data

    def readline(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._handle.readline(want) if want > 0 else b""
        self._left -= len(data)
        self.cut = self.cut or (self._left <= 0 and not data.endswith(b"\n"))
        return data


def is_pickle(
    handle: BinaryIO, opcodes: int = OPCODES, limit: int = READ_LIMIT, *, whole: bool = False
) -> bool:
    """Whether the bytes from `handle`'s position are a pickle (or would run code if loaded).

    `whole` asks for more: a complete pickle (up to STOP) that imports and calls. That is the
    test for pickles hidden at line starts inside text, where word lists and shell snippets
    often parse as a few opcodes but never as a whole pickle that calls something."""
    stream = _Limited(handle, limit)
    depth = 0  # items on the stack above the lowest mark
    marks: list[int] = []  # the depth at which each open mark was pushed
    memo: set[object] = set()
    imported = called = False
    count = 0
    try:
        for opcode, arg, _position in pickletools.genops(cast(IO[bytes], stream)):
            count += 1
            name = opcode.name
            before, after = opcode.stack_before, opcode.stack_after
            if pickletools.markobject in before:
                if not marks:
                    return False
                below = before.index(pickletools.markobject)
                floor = marks.pop()
                if floor < below:
                    return False
                depth = floor - below
            elif name == "POP" and marks and marks[-1] == depth:
                marks.pop()
                continue
            else:
                if depth - len(before) < (marks[-1] if marks else 0):
                    return False
                depth -= len(before)
            if name in MEMO_GETS and arg not in memo:
                return False
            if name in MEMO_PUTS and len(memo) < OPCODES:
                memo.add(arg if name != "MEMOIZE" else len(memo))
            if name in ("GLOBAL", "INST") and not _importable(str(arg)):
                return False  # the unpickler would stop here: no such module or attribute
            if name in IMPORTS:
                imported = True
            if name in CALLS and (imported or name.startswith("EXT")):
                called = True
                if not whole:
                    return True  # loading would call something before it could fail
            if pickletools.markobject in after:
                marks.append(depth)
            else:
                depth += len(after)
            if name == "STOP":
                return depth == 0 and not marks and (called or not whole)
            if count >= opcodes:
                return not whole
    except (ValueError, UnicodeDecodeError, EOFError, OverflowError, IndexError):
        # Not well-formed; or cut short by the read limit after a long well-formed run.
        return stream.cut and count >= LONG_RUN and not whole
    return False
