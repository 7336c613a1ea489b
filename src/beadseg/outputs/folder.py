"""The output-folder rule: one command and one set of settings per folder, owned by the library.

An output folder belongs to one command and one set of settings, recorded in a small manifest
(``OUT/.beadseg-output.json``) together with the names the command writes (its *outputs*, e.g.
``counts.csv``, ``masks/``). Every workflow function (:mod:`beadseg.workflows`: what the command
line and a notebook call) holds its folder through :meth:`OutputFolder.claim`, so the Python API
refuses exactly where the command line refuses:

- a folder that holds another command's output, or this command's with other settings, is an
  error naming the difference, unless ``overwrite``: then the command's own outputs are removed
  first (only the names its manifest lists, never through a link); a folder that also holds
  anything else (a user's ``notes.txt``) is refused with the list, and nothing is removed
  unless everything can be;
- a folder that holds exactly this command and these settings is continued (a killed
  ``predict`` resumes), or refused with the command's own hint (``train``: ``resume=``);
- while a command writes, it holds ``OUT/.beadseg.lock`` (``flock``: released by the kernel
  when the process dies); a second writer gets an error naming the first;
- before anything is computed the folder is checked: ``out`` that is a file, a parent that
  cannot be written, a link inside the folder, an input inside the folder;
- when the command fails on bad input (a :class:`~beadseg.core.errors.BeadsegError`) it leaves
  the folder as it was: a folder it created goes, what it added to an empty one goes.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import BeadsegError, InputError
from .locks import LOCK, acquire_lock, release_lock
from .settings import normalised, settings_difference, unrecorded  # noqa: F401  (settings_difference: re-exported)

MANIFEST = ".beadseg-output.json"
#: the temporary names of :func:`beadseg.core.files.atomic_path`: ``.NAME.<12 hex>.ext``
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?$")
#: beadseg's own bookkeeping in every output folder
OWN = (MANIFEST, LOCK)

__all__ = ["LOCK", "MANIFEST", "OutputFolder", "acquire_lock", "default_output", "release_lock"]


@dataclass(frozen=True)
class OutputFolder:
    """A command's hold on its output folder (see the module docstring).

    Attributes
    ----------
    path : Path
        The folder.
    command : str
        The command whose output it holds, e.g. ``"predict"``.
    continued : bool
        It already held this command's output with these settings: resume what is there.
    """

    path: Path
    command: str
    continued: bool

    @staticmethod
    @contextmanager
    def claim(
        out: str | Path,
        command: str,
        settings: Any,
        *,
        outputs: Iterable[str] = (),
        overwrite: bool = False,
        inputs=(),
        shared: bool = False,
        continue_hint: str = "",
    ) -> Iterator[OutputFolder]:
        """Hold ``out`` for ``command`` while the block runs.

        Parameters
        ----------
        out : path
            The output folder (created when missing).
        command : str
            The command's name, e.g. ``"predict"``.
        settings : dict or None
            Everything that decides the folder's content; None continues whatever ``command``
            recorded there (``train`` with ``resume``), and the folder must already hold it.
        outputs : names
            The top-level names the command writes (``"counts.csv"``, ``"masks"``,
            ``"fold_*"``: shell patterns): what ``overwrite`` may remove.
        overwrite : bool
            Replace a folder that holds other output instead of refusing.
        inputs : paths
            The command's inputs; ``out`` may not be one of them nor hold one.
        shared : bool
            Several processes write into the folder at once, each its own subfolder (the fold
            jobs of ``cv``): no lock, and a refused job never removes what others wrote.
        continue_hint : str
            When set, a folder holding this very output is refused with this text (``train``:
            "continue it with resume=").

        Raises
        ------
        InputError
            Any of the conditions of the module docstring, as one line naming the folder and
            the way on.
        """
        out = Path(out)
        check_writable(out)
        check_not_input(out, inputs)
        if _is_secondary_rank():
            yield OutputFolder(out, command, True)
            return
        created = _make_folder(out)
        fd, held, before, had_manifest = None, False, set(), False
        try:
            fd = None if shared else acquire_lock(out, command)
            held, before = True, set(os.listdir(out))  # what the folder held before this command
            had_manifest = MANIFEST in before
            if overwrite:
                _clear_own_outputs(out, command, tuple(outputs))
                before = set(os.listdir(out))  # replaced: a failure now leaves it as cleared
                had_manifest = False
            else:
                problem = _conflict(out, command, settings, continue_hint)
                if problem:
                    fix = "give another --out, or overwrite (--overwrite) to replace it"
                    raise InputError(f"{problem}; {fix}" if settings is not None else problem)
            _refuse_links(out)
            if not shared:  # left by killed writes: we hold the folder, so no live writer owns them
                for t in _temp_files(out):
                    t.unlink(missing_ok=True)
            continued = read_manifest(out) is not None
            if not continued:
                write_manifest(out, command, settings if settings is not None else {}, outputs)
            yield OutputFolder(out, command, continued)
        except BeadsegError:
            if held:
                _undo(out, created, before, shared, had_manifest)
            raise
        finally:
            if fd is not None:
                release_lock(out, fd)


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
    """Refuse an output folder that is one of the inputs or holds one (``overwrite`` would
    delete it, and outputs would land among the inputs)."""
    out_r = Path(out).resolve()
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


def check_free_space(folder: str | Path, needed_bytes: float, what: str) -> None:
    """Refuse to start writing ``what`` into ``folder`` when its file system has less than
    ``needed_bytes`` free (a full disk half-way through a run leaves a broken folder).

    Raises
    ------
    InputError
        Naming the folder, the space needed and the space free.
    """
    base = Path(folder)
    while not base.exists() and base.parent != base:
        base = base.parent
    free = shutil.disk_usage(base).free
    if free < needed_bytes:
        raise InputError(
            f"{folder} has {_size(free)} free but {what} needs about {_size(needed_bytes)}; free "
            "some space or give --out on another disk"
        )


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _refuse_links(out: Path) -> None:
    for root, dirs, files in os.walk(out):
        for name in dirs + files:
            p = Path(root) / name
            if p.is_symlink():
                raise InputError(
                    f"{p} is a link (to {os.readlink(p)}); beadseg writes only inside --out, never "
                    "through links: remove the link or give another --out"
                )


def _temp_files(out: Path) -> list[Path]:
    """Leftover temporary files of killed atomic writes, anywhere inside ``out``."""
    return [
        Path(root) / name
        for root, _, files in os.walk(out)
        for name in files
        if TEMP_NAME.match(name) and not (Path(root) / name).is_symlink()
    ]


def _entries(out: Path) -> list[str]:
    """What ``out`` holds besides beadseg's own bookkeeping (manifest, lock, temporary files).
    Hidden files count: a folder holding only ``.git`` is not empty."""
    if not out.is_dir():
        return []
    return sorted(e.name for e in os.scandir(out) if e.name not in OWN and not TEMP_NAME.match(e.name))


# ----------------------------------------------------------------------------- manifest


def read_manifest(out: str | Path) -> dict | None:
    """The manifest of an output folder (None when it has none)."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "command" not in data:
            raise ValueError("no command")
    except (ValueError, OSError, UnicodeDecodeError):
        raise InputError(
            f"{path} is damaged; give another --out, or overwrite to replace the folder"
        ) from None
    return data


def write_manifest(out: Path, command: str, settings: Any, outputs: Iterable[str] = ()) -> None:
    from ..core.files import write_text

    info = {
        "command": command,
        "settings": normalised(settings),
        "outputs": sorted(outputs),
        "beadseg_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_text(out / MANIFEST, json.dumps(info, indent=1) + "\n")


def _legacy_command(out: Path) -> str | None:
    """The command named by the provenance.json of a folder written before manifests."""
    try:
        return str(json.loads((out / "provenance.json").read_text())["command"]).split()[0]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


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
        return (
            f"{out} holds `beadseg {legacy}` output from beadseg < 0.1 (no record of its settings, "
            "so it cannot be continued)"
        )
    if manifest["command"] != command:
        return f"{out} holds the output of `beadseg {manifest['command']}`, not of `beadseg {command}`"
    if settings is None:
        return None
    if manifest.get("settings") != normalised(settings):
        missing = unrecorded(manifest.get("settings"), settings)
        if missing:
            named = ", ".join(f"{k} (now {v})" for k, v in missing.items())
            return (
                f"{out} holds `beadseg {command}` output from an earlier beadseg that did not record "
                f"the setting{'s' * (len(missing) > 1)} {named}, so it cannot be resumed with them"
            )
        diff = settings_difference(manifest.get("settings"), settings)
        return f"{out} holds `beadseg {command}` output made with other settings ({diff})"
    return continue_hint or None


# ----------------------------------------------------------------------------- overwrite


def _clear_own_outputs(out: Path, command: str, outputs: tuple[str, ...]) -> None:
    """Remove what beadseg wrote in ``out``: the names its manifest lists (or, for a folder of
    this same command, ``outputs``), after checking that nothing else is there and that every
    one of them can be removed; links are removed as links."""
    if not _entries(out):
        return
    manifest = read_manifest(out)
    if manifest is None and _legacy_command(out) is None:
        raise InputError(
            f"{out} holds files beadseg did not write ({', '.join(_entries(out)[:5])}); overwrite "
            "replaces only beadseg output folders: give another --out"
        )
    if manifest is None or "outputs" not in manifest:  # written by beadseg < 0.1.1
        older = _legacy_command(out) if manifest is None else manifest["command"]
        if older != command:
            raise InputError(
                f"{out} holds `beadseg {older}` output from an older beadseg that did not record "
                "which files are its own; remove the folder yourself or give another --out"
            )
        manifest = {"outputs": ["provenance.json"]}
    patterns = tuple(manifest["outputs"]) + outputs
    ours = [e for e in _entries(out) if any(fnmatch.fnmatch(e, p) for p in patterns)]
    foreign = sorted(set(_entries(out)) - set(ours))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(
            f"{out} holds files beadseg did not write ({shown}); overwrite removes only beadseg's own "
            "output: move them out of the folder, or give another --out"
        )
    stuck = _not_removable(out, ours)
    if stuck:
        raise InputError(
            f"{stuck} cannot be removed (permission denied), so nothing was replaced; fix its "
            "permissions or give another --out"
        )
    for name in ours:
        path = out / name
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    (out / MANIFEST).unlink(missing_ok=True)


def _not_removable(out: Path, names: list[str]) -> Path | None:
    """The first of ``names`` (or a file inside one) that cannot be removed: removing an entry
    takes write and search permission on the folder that holds it."""
    dirs = [out]
    for name in names:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            dirs += [Path(root) for root, _, _ in os.walk(p)]
    for d in dirs:
        if not os.access(d, os.W_OK | os.X_OK):
            return d
    return None


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


def _undo(out: Path, created: Path | None, before: set[str], shared: bool, had_manifest: bool) -> None:
    """After bad input: leave the folder as it was before the command (nothing half-written).

    A folder this command created goes; in a folder that held nothing but beadseg's bookkeeping
    before, what the command added goes. In a shared folder only the manifest this job wrote
    goes, and only while nothing else is there: other jobs may be writing into it.
    """
    if not out.is_dir():
        return
    if shared:
        if had_manifest or _entries(out):
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
    elif not had_manifest:  # a folder with other output keeps it; this one held none
        for name in set(os.listdir(out)) - before - {LOCK}:
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
    current folder because the input's own folder may be read-only or shared.

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
