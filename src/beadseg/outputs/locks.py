"""The lock of an output folder: one writer at a time (``OUT/.beadseg.lock``, an OS ``flock``
released by the kernel when its process dies, so the lock file of a killed run is taken over)."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import InputError

LOCK = ".beadseg.lock"


def _lock_text(command: str) -> str:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )


def _lock_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"`beadseg {info['command']}` (pid {info['pid']} on {info['host']}, since {info['since_utc']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another beadseg process"


def acquire_lock(out: Path, command: str) -> int:
    """Take ``out``'s lock; returns the open file descriptor that holds it.

    The lock is ``flock``: the kernel releases it when its process dies, so a lock file left by
    a killed run is taken over. After locking, the file at the path must still be the one
    locked (another process may have removed it meanwhile); otherwise try again.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; beadseg's clusters and workstations have it
        return -1
    path = out / LOCK
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"{out} is being written by {_lock_holder(path)}; wait for it to finish or give another --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, _lock_text(command).encode())
            return fd
        os.close(fd)
    raise InputError(f"could not lock {path}; try again")


def release_lock(out: Path, fd: int) -> None:
    if fd < 0:
        return
    try:
        os.unlink(out / LOCK)
    except FileNotFoundError:
        pass
    os.close(fd)
