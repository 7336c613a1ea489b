"""Settings of the ``beadseg`` process: glibc malloc's tunables (``mallopt``).

They belong to the process, not to a library call: the command line sets them for the one
command it runs (a notebook that calls the library keeps its own). Two workloads want opposite
things: the doctor's thousands of 1-2 MB temporaries are faster when malloc keeps freed memory
(:func:`tune_for_analysis`), and streaming 4K frames through several threads peaks lower with
fewer malloc arenas (:func:`tune_for_streaming`).
"""

from __future__ import annotations

import sys

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def mallopt(**settings: int) -> bool:
    """Set glibc malloc parameters of this process (``mallopt(M_ARENA_MAX=2)``).

    Returns True where every one was applied; False elsewhere (not Linux, or not glibc: musl,
    macOS), where nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return False
    params = {
        "M_TRIM_THRESHOLD": M_TRIM_THRESHOLD,
        "M_MMAP_THRESHOLD": M_MMAP_THRESHOLD,
        "M_ARENA_MAX": M_ARENA_MAX,
    }
    return all(bool(libc.mallopt(params[name], int(value))) for name, value in settings.items())


def tune_for_analysis() -> bool:
    """Ask glibc's malloc to serve the doctor's many 1-2 MB temporaries from its heap and to keep
    what is freed, instead of mapping and unmapping each one (measured on the 79 dev tiles, one
    process: 366k page faults and 0.6 s of system time without, 30k and 0.1 s with; 3.5 -> 3.0 s
    wall). True where applied (glibc)."""
    return mallopt(M_MMAP_THRESHOLD=32 << 20, M_TRIM_THRESHOLD=256 << 20)


def tune_for_streaming() -> bool:
    """Let glibc's malloc keep at most 2 arenas. Each thread that allocates (network, lookahead,
    writers) otherwise gets its own arena, and freed frame-sized buffers stay spread over them:
    streaming 100 4K frames peaked at 1.50 GB RSS with the default and at 1.19 GB with 2 arenas,
    in the same time (203 vs 207 s; measured, BENCHMARKS.md). Call it before the threads exist.
    True where applied (glibc)."""
    return mallopt(M_ARENA_MAX=2)
