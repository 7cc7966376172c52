"""`creditflow serve` and `creditflow worker` cap glibc's malloc arenas at start (kit/process.py).

Each check runs in a new interpreter: glibc fixes the cap when a second thread first allocates,
so it can only be seen in a process that sets it before its threads start.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from creditflow.kit import process

pytestmark = pytest.mark.skipif(not process._on_glibc(), reason="malloc arenas are glibc's")

# Twenty threads allocate at once (so that they contend for the allocator), then the process
# counts its arenas in malloc_info's report, one <heap> element each.
PROGRAM = textwrap.dedent("""
    import ctypes, re, sys, tempfile, threading
    from creditflow.kit.process import limit_malloc_arenas

    print("set" if sys.argv[1] == "limit" and limit_malloc_arenas() else "not set")
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    start = threading.Barrier(20)

    def allocate():
        start.wait()
        for _ in range(50):
            blocks = [libc.malloc(50_000) for _ in range(20)]
            for block in blocks:
                libc.free(block)

    threads = [threading.Thread(target=allocate) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile() as report:
        stream = libc.fopen(report.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        print(len(re.findall(rb"<heap nr=", report.read())))
""")


def arenas_after_threads(mode: str, **env: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], env=environment, capture_output=True,
                         text=True, check=True).stdout.split()
    return " ".join(out[:-1]), int(out[-1])


def test_the_cap_holds_the_arenas_to_two_where_threads_would_otherwise_take_more():
    said, arenas = arenas_after_threads("limit")
    assert (said, arenas) == ("set", process.MALLOC_ARENAS)
    said, uncapped = arenas_after_threads("none")
    assert said == "not set"
    assert uncapped > process.MALLOC_ARENAS  # glibc's default: up to eight per core


def test_an_operators_own_malloc_arena_max_is_left_as_it_is():
    said, arenas = arenas_after_threads("limit", MALLOC_ARENA_MAX="3")
    assert (said, arenas) == ("not set", 3)
