"""Process memory settings: glibc malloc's tunables, set from Python (``mallopt``).

Two workloads want opposite things: the doctor's thousands of 1-2 MB temporaries are faster when
malloc keeps freed memory (:func:`beadseg.analysis.fingerprint.keep_freed_memory`), and streaming
4K frames through several threads peaks lower with fewer malloc arenas
(:func:`beadseg.inference.pipeline.predict_images`).
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
