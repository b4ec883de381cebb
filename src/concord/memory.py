"""Keep a long-running hub's memory from creeping up after large transfers.

Streaming a model reads blocks of a few MiB. glibc serves blocks that size from its heap arenas
and keeps them after `free`, so a hub that has served a few large files sits hundreds of MB
above what it uses. Asking glibc to map anything from 1 MiB up directly (and so to return it
at once) costs a system call per block, which is nothing next to the block's I/O.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
THRESHOLD = 1024 * 1024


def release_large_blocks() -> bool:
    """Sets glibc's mmap threshold; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl, macOS: nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    log.debug("mallopt(M_MMAP_THRESHOLD, %d) -> %s", THRESHOLD, done)
    return done
