"""Settings for a long-lived process (`creditflow serve`, `creditflow worker`), made once at start.

glibc's allocator gives a thread that finds the allocator busy an arena of its own, up to eight
per core. Each arena keeps the memory its threads freed for later, and a server's thread pool
(40 threads under uvicorn) spreads its work over all of them. Measured on `creditflow serve`
under a steady load of spends on SQLite (bench/memory.py): with the default, the memory free but
kept in arenas grew from 5 to 22 MiB in eight minutes and the process's RSS grew 7% over the
run; with two arenas, the free memory stayed between 1 and 4 MiB and the process started 14 MiB
smaller. Python's own objects don't go through these arenas (its allocator has its own, under
the interpreter lock); SQLite's page caches and statements, and large buffers, do.
"""

from __future__ import annotations

import ctypes
import os

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's arenas at `arenas`, before the process starts its threads (glibc fixes the
    cap when a second thread first allocates). True if the cap was set here. An operator's own
    `MALLOC_ARENA_MAX` is left as it is, and so is an allocator that is not glibc's."""
    if os.environ.get("MALLOC_ARENA_MAX") or not _on_glibc():
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the allocator the process runs on
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_ARENA_MAX, arenas) == 1


def _on_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):  # the name is unknown off glibc (macOS, musl)
        return False
