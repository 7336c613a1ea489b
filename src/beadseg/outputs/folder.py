"""The output-folder rule shared by every command that writes a folder (``--out``).

An output folder belongs to one command and one set of settings, recorded in a small manifest
(``OUT/.beadseg-output.json``). Running a command into a folder that holds another command's
output, or the same command's with other settings, is an error naming the difference, unless
``overwrite`` is given: then the folder's contents are removed first (only inside ``--out``,
never through a link). A folder that holds exactly this command and these settings is
continued (a killed ``predict`` resumes; ``train`` continues only with ``--resume``).

While a command writes, it holds ``OUT/.beadseg.lock`` (an OS lock, ``flock``: released by the
kernel when the process dies, so the lock file of a killed run is simply taken over); a second
writer gets an error naming the first. Before anything is computed the folder is checked:
``--out`` that is a file, a parent that cannot be written, a link inside the folder, or an input
inside the folder are errors. When the command fails on bad input (a
:class:`~beadseg.core.errors.BeadsegError`) in a folder it created, it leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import BeadsegError, InputError

MANIFEST = ".beadseg-output.json"
LOCK = ".beadseg.lock"
#: the temporary names of :func:`beadseg.core.files.atomic_path`: ``.NAME.<12 hex>.ext``
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?$")


@dataclass(frozen=True)
class OutputClaim:
    """A command's hold on its output folder.

    Attributes
    ----------
    path : Path
        The folder.
    continued : bool
        It already held this command's output with these settings (resume what is there).
    """

    path: Path
    continued: bool


# ----------------------------------------------------------------------------- checks


def check_writable(out: str | Path) -> None:
    """Raise :class:`InputError` unless ``out`` is (or can be made) a folder this process can
    write: not a file, no file among its parents, write permission on the nearest existing
    folder. Nothing is created."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder; give a folder path")
    base = out
    while not base.exists():
        if base.parent == base:
            break
        base = base.parent
    if not base.is_dir():
        raise InputError(f"--out {out}: {base} is a file, so no folder can be made under it")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(
            f"--out {out}: {base} is not writable (permission denied); give --out in a folder you can write"
        )


def check_not_input(out: Path, inputs) -> None:
    """Refuse an output folder that is one of the inputs or holds one (``--overwrite`` would
    delete it, and outputs would land among the inputs)."""
    out_r = out.resolve()
    flat = []
    for item in inputs:
        flat += list(item) if isinstance(item, (list, tuple)) else [item]
    for item in flat:
        if item is None or any(ch in str(item) for ch in "*?["):
            continue
        inp = Path(item).resolve()
        if out_r == inp or out_r in inp.parents:
            raise InputError(
                f"--out {out} is (or holds) the input {item}; write the output to another folder"
            )


def _links_and_temp_files(out: Path) -> tuple[list[Path], list[Path]]:
    """Links anywhere inside ``out`` and leftover temporary files of killed atomic writes."""
    links, temps = [], []
    for root, dirs, files in os.walk(out):
        for name in dirs + files:
            p = Path(root) / name
            if p.is_symlink():
                links.append(p)
            elif name in files and TEMP_NAME.match(name):
                temps.append(p)
    return links, temps


def _entries(out: Path) -> list[str]:
    """What ``out`` holds besides beadseg's own bookkeeping (manifest, lock, temporary files).

    Hidden files count: a folder holding only ``.git`` is not empty.
    """
    if not out.is_dir():
        return []
    own = (MANIFEST, LOCK)
    return sorted(e.name for e in os.scandir(out) if e.name not in own and not TEMP_NAME.match(e.name))


# ----------------------------------------------------------------------------- manifest


def _normalised(settings: Any) -> Any:
    from .provenance import to_jsonable

    return json.loads(json.dumps(to_jsonable(settings), sort_keys=True))


def read_manifest(out: str | Path) -> dict | None:
    """The manifest of an output folder (None when it has none)."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "command" not in data:
            raise ValueError("no command")
    except (ValueError, OSError):
        raise InputError(
            f"{path} is damaged; give another --out, or --overwrite to replace the folder"
        ) from None
    return data


def _legacy_command(out: Path) -> str | None:
    """The command named by the provenance.json of a folder written before manifests."""
    try:
        return str(json.loads((out / "provenance.json").read_text())["command"]).split()[0]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def settings_difference(old: Any, new: Any, limit: int = 3) -> str:
    """The keys whose values differ, as ``key old -> new`` (at most ``limit`` of them)."""

    def short(v: Any) -> str:
        text = json.dumps(v)
        return text if len(text) <= 48 else text[:45] + "..."

    a, b = _flat(_normalised(old)), _flat(_normalised(new))
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, "<unset>") != b.get(k, "<unset>"))
    parts = [f"{k or 'settings'} {short(a.get(k))} -> {short(b.get(k))}" for k in keys[:limit]]
    if len(keys) > limit:
        parts.append(f"and {len(keys) - limit} more")
    return ", ".join(parts)


def write_manifest(out: Path, command: str, settings: Any) -> None:
    from ..core.files import write_text

    info = {
        "command": command,
        "settings": _normalised(settings),
        "beadseg_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_text(out / MANIFEST, json.dumps(info, indent=1) + "\n")


def _conflict(out: Path, command: str, settings: Any, continue_hint: str) -> str | None:
    """Why ``out`` cannot take this command's output (None: it can)."""
    manifest = read_manifest(out)
    if manifest is None:
        if not _entries(out):
            return (
                None
                if settings is not None
                else f"nothing to continue: {out} holds no `beadseg {command}` output"
            )
        legacy = _legacy_command(out)
        if legacy is None:
            return f"{out} holds files beadseg did not write ({', '.join(_entries(out)[:3])})"
        if legacy == command and settings is None:
            return None
        return f"{out} holds the output of `beadseg {legacy}` from a version that did not record its settings"
    if manifest["command"] != command:
        return f"{out} holds the output of `beadseg {manifest['command']}`, not of `beadseg {command}`"
    if settings is None:
        return None
    if manifest.get("settings") != _normalised(settings):
        diff = settings_difference(manifest.get("settings"), settings)
        return f"{out} holds `beadseg {command}` output made with other settings ({diff})"
    return continue_hint or None


# ----------------------------------------------------------------------------- clearing


def clear_folder(out: Path, keep: tuple[str, ...] = (LOCK,)) -> None:
    """Remove everything inside ``out`` (not ``out`` itself, nor the names in ``keep``).

    Links are removed as links: nothing outside ``out`` is ever touched.
    """
    for entry in os.scandir(out):
        if entry.name in keep:
            continue
        if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            os.unlink(entry.path)
        else:
            shutil.rmtree(entry.path)


# ----------------------------------------------------------------------------- the lock


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


# ----------------------------------------------------------------------------- the claim


def _is_secondary_rank() -> bool:
    """A torchrun worker other than rank 0: rank 0 alone owns the folder."""
    return int(os.environ.get("RANK", "0") or 0) > 0


def _make_folder(out: Path) -> Path | None:
    """Create ``out`` (and missing parents); return the topmost folder created (None: existed)."""
    top = None
    for p in [*reversed(out.parents), out]:
        if not p.exists():
            top = top or p
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create --out {out}: {exc.strerror}") from None
    return top


@contextmanager
def claim_output(
    out: str | Path,
    command: str,
    settings: Any,
    *,
    overwrite: bool = False,
    inputs=(),
    exclusive: bool = True,
    continue_hint: str = "",
) -> Iterator[OutputClaim]:
    """Hold ``out`` for ``command`` while the block runs (see the module docstring).

    Parameters
    ----------
    out : path
        The output folder (created when missing).
    command : str
        The command's name, e.g. ``"predict"``.
    settings : dict or None
        Everything that decides the folder's content; None continues whatever ``command``
        recorded there (``train --resume``), and the folder must already hold it.
    overwrite : bool
        Clear a folder that holds other output instead of refusing.
    inputs : paths
        The command's inputs; ``out`` may not be one of them nor hold one.
    exclusive : bool
        Take the lock (False: several processes share the folder, each writing its own
        subfolder, e.g. the fold jobs of ``cv``).
    continue_hint : str
        When set, a folder holding this very output is refused with this text (``train``:
        "continue it with --resume").

    Raises
    ------
    InputError
        Any of the conditions above, as one line naming the folder and the fix.
    """
    out = Path(out)
    check_writable(out)
    check_not_input(out, inputs)
    if _is_secondary_rank():
        yield OutputClaim(out, True)
        return
    created = _make_folder(out)
    fd, held = None, not exclusive
    before: set[str] = set()
    try:
        fd = acquire_lock(out, command) if exclusive else None
        held, before = True, set(os.listdir(out))  # what the folder held before this command
        problem = None if overwrite else _conflict(out, command, settings, continue_hint)
        if problem:
            fix = "give another --out, or --overwrite to replace it" if settings is not None else ""
            raise InputError(f"{problem}; {fix}" if fix else problem)
        if overwrite:
            if read_manifest(out) is None and _entries(out) and _legacy_command(out) is None:
                raise InputError(
                    f"{out} holds files beadseg did not write; --overwrite clears only beadseg "
                    "output folders: give another --out"
                )
            clear_folder(out)
            before = set(os.listdir(out))  # replaced: a failure now leaves the folder empty
        links, temps = _links_and_temp_files(out)
        if links:
            raise InputError(
                f"{links[0]} is a link (to {os.readlink(links[0])}); beadseg writes only inside "
                "--out, never through links: remove the link or give another --out"
            )
        for t in temps if exclusive else ():  # left by killed writes: we hold the folder, so
            t.unlink(missing_ok=True)  # no live writer owns them (shared folders: they may)
        continued = read_manifest(out) is not None and not overwrite
        if not continued:
            write_manifest(out, command, settings if settings is not None else {})
        yield OutputClaim(out, continued)
    except BeadsegError:
        if held:
            _undo(out, created, before, exclusive)
        raise
    finally:
        if fd is not None:
            release_lock(out, fd)


def _undo(out: Path, created: Path | None, before: set[str], exclusive: bool) -> None:
    """After bad input: leave the folder as it was before the command (nothing half-written).

    A folder this command created goes; in a folder that held nothing but beadseg's bookkeeping
    before, what the command added goes. A shared (non-exclusive) folder is touched only while
    it holds nothing but the manifest: other jobs may be writing into it.
    """
    if not out.is_dir():
        return
    if not exclusive:
        if _entries(out):
            return
        (out / MANIFEST).unlink(missing_ok=True)
        folder = out
        while created is not None and not any(os.scandir(folder)):
            folder.rmdir()  # the empty folders this command created, up to the first
            if folder == created:
                break
            folder = folder.parent
        return
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
    elif MANIFEST not in before:  # a folder with other output keeps it; this one held none
        added = set(os.listdir(out)) - before - {LOCK}
        for name in added:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- default folder


def default_output(command: str, source: str | Path | list | tuple | None = None) -> Path:
    """The folder a command writes when no ``--out`` is given: ``<name>-<command>`` in the
    current folder.

    ``name`` is the name of the folder of the command's main input: the input itself when it is
    a folder, the folder holding it when it is a file, the folder part of a glob
    (``frames/*.png``: ``frames``); the first one when several are given; ``beadseg`` when the
    command reads no input. Named after the input so that two inputs get two folders; in the
    current folder because the input's own folder may be read-only or shared. The folder is
    then claimed like any ``--out`` (:func:`claim_output`): one command and settings per folder.

    Parameters
    ----------
    command : str
        The command's name, e.g. ``"analyze"``.
    source : path, str, list of them, or None
        The main input (a folder, a file or a glob).

    Returns
    -------
    Path
        Relative to the current folder, e.g. ``Path("microbeads-analyze")``.

    Examples
    --------
    >>> default_output("analyze", "data/microbeads")
    PosixPath('microbeads-analyze')
    >>> default_output("dilution", "predictions/counts.csv")
    PosixPath('predictions-dilution')
    >>> default_output("demo")
    PosixPath('beadseg-demo')
    """
    if isinstance(source, (list, tuple)):
        source = next((s for s in source if s is not None), None)
    if source is None or str(source) == "":
        return Path(f"beadseg-{command}")
    parts = Path(source).parts
    glob_at = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), len(parts))
    folder = Path(*parts[:glob_at]) if glob_at else Path(".")
    if glob_at == len(parts) and (folder.is_file() or (not folder.exists() and folder.suffix)):
        folder = folder.parent  # a file (or a file-like name that does not exist yet)
    name = folder.resolve().name or "beadseg"
    return Path(f"{name}-{command}")
