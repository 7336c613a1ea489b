"""Files: finding images, pairing images with masks, atomic writes, CSV tables, and records
without the paths of the machine that wrote them (:func:`strip_machine_paths`).

Every file beadseg writes goes through :func:`atomic_path` (a temporary name beside the target,
renamed onto it on success), so a killed command never leaves a half-written file under a real
name.
"""

from __future__ import annotations

import glob
import os
import re
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BeadsegWarning, InputError

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Pair:
    """One image and its mask, matched by file stem."""

    name: str
    image: Path
    mask: Path


def _image_files(folder: Path) -> dict[str, Path]:
    """Files with a known image extension in ``folder``, by stem; others are skipped with a warning."""
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            warnings.warn(
                f"skipped {p}: unknown extension {p.suffix!r} (use one of {', '.join(IMAGE_EXTENSIONS)})",
                BeadsegWarning,
                stacklevel=3,
            )
            continue
        if p.stem in files:
            raise InputError(
                f"{folder} holds two images with the stem {p.stem!r} ({files[p.stem].name}, "
                f"{p.name}); keep one"
            )
        files[p.stem] = p
    return files


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find_images(path: str | Path) -> list[Path]:
    """Image files given as a file, a folder (its ``images/`` subfolder if present) or a glob.

    Raises
    ------
    InputError
        If nothing readable is found.
    """
    p = Path(path)
    if any(ch in str(path) for ch in "*?["):
        # glob.glob, not Path.glob: a quoted absolute pattern ("/data/frames/*.png", as job
        # scripts pass it) is valid; "**" matches any depth
        matched = glob.glob(os.path.expanduser(str(path)), recursive=True)
        if not matched:
            raise InputError(f"no file matches {path}; check the pattern (beadseg expands quoted ones)")
        found = (Path(q) for q in matched)
        files = sorted(q for q in found if q.suffix.lower() in IMAGE_EXTENSIONS and q.is_file())
    elif p.is_file():
        files = [p]
    elif p.is_dir():
        folder = p / "images" if (p / "images").is_dir() else p
        files = list(_image_files(folder).values())
    else:
        raise InputError(f"{path} does not exist; give an image file, a folder or a glob")
    if not files:
        raise InputError(f"no images found in {path} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    return files


def find_pairs(
    data: str | Path | None = None,
    images_dir: str | Path | None = None,
    masks_dir: str | Path | None = None,
) -> list[Pair]:
    """Find image/mask pairs matched by file stem.

    Parameters
    ----------
    data : path, optional
        A folder holding ``images/`` and ``masks/``.
    images_dir, masks_dir : path, optional
        The two folders, given explicitly (instead of ``data``).

    Returns
    -------
    list of Pair
        Sorted by name.

    Raises
    ------
    InputError
        Missing folders, empty folders, or images and masks that do not pair up (the unpaired names
        are listed).
    """
    if data is not None:
        data = Path(data)
        if not data.is_dir():
            raise InputError(f"{data} is not a folder; give a folder with images/ and masks/")
        images_dir = images_dir or data / "images"
        masks_dir = masks_dir or data / "masks"
        missing = [str(d) for d in (images_dir, masks_dir) if not Path(d).is_dir()]
        if missing:
            raise InputError(
                f"{data} has no {' and no '.join(Path(m).name + '/' for m in missing)} folder; "
                "put images in DATA/images and masks with the same names in DATA/masks"
            )
    if images_dir is None or masks_dir is None:
        raise InputError("give a data folder, or both an images folder and a masks folder")
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise InputError(f"{d} is not a folder")
    images, masks = _image_files(images_dir), _image_files(masks_dir)
    if not images and not masks:
        raise InputError(f"{images_dir} and {masks_dir} hold no images; add image/mask pairs")
    no_mask = sorted(set(images) - set(masks))
    no_image = sorted(set(masks) - set(images))
    if no_mask or no_image:
        parts = []
        if no_mask:
            parts.append(f"images without a mask in {masks_dir}: {_names(no_mask)}")
        if no_image:
            parts.append(f"masks without an image in {images_dir}: {_names(no_image)}")
        raise InputError("; ".join(parts) + " (names must match by stem)")
    return [Pair(s, images[s], masks[s]) for s in sorted(images)]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name is unique (uuid4), so concurrent writers never share one; the writer
    creates the file itself, so it gets the usual mode from the umask (no umask juggling,
    which is not thread-safe).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{uuid.uuid4().hex[:12]}{path.suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv(path: str | Path, rows: list[dict], fields: list[str] | None = None) -> Path:
    """Write dict rows as CSV atomically (columns: ``fields``, else the first row's keys)."""
    import csv
    import io as _io

    buf = _io.StringIO()
    cols = fields if fields is not None else (list(rows[0].keys()) if rows else [])
    if cols:
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return write_text(path, buf.getvalue())


def write_columns_csv(path: str | Path, columns: dict[str, np.ndarray], digits: int = 3) -> Path:
    """Write equal-length column arrays as CSV atomically: float columns rounded to ``digits``
    decimals, the others as integers. Column-wise: 4x faster than dict rows through
    :func:`write_csv` (19 vs 76 ms for the 12,000 beads of a 4K frame)."""
    import csv
    import io as _io

    cols = []
    for v in columns.values():
        v = np.asarray(v)
        cols.append(
            np.round(v.astype(np.float64), digits).tolist()
            if v.dtype.kind == "f"
            else v.astype(np.int64).tolist()
        )
    buf = _io.StringIO()
    w = csv.writer(buf)
    w.writerow(list(columns))
    w.writerows(zip(*cols))
    return write_text(path, buf.getvalue())


#: an absolute path inside a string: POSIX (``/data/x``), home (``~/x``) or Windows (``C:\\x``,
#: ``\\\\server\\x``), starting the string or after a space, quote, bracket, ``=``, ``,`` or ``;``
#: (so ``a/b``, ``1/2`` and the ``//`` of a URL are left alone), up to the next such character
_ABSOLUTE_PATH = re.compile(r"""(?<![^\s'"(\[{=,;])(?:~|[A-Za-z]:)?[/\\][^\s'"()\[\]{},;]+""")
#: a string that is one absolute path (spaces allowed: ``/srv/lab/My beads``)
_ONE_PATH = re.compile(r"(?:~|[A-Za-z]:)?[/\\][^\n]*[^/\\\n]")


def _last_name(path: str) -> str:
    return re.split(r"[/\\]", path.rstrip("/\\"))[-1]


def strip_machine_paths(obj):
    """``obj`` with every absolute path inside its strings replaced by the path's last name.

    For records that leave the machine (shipped and exported checkpoints, ONNX metadata,
    bioimage.io packages): ``/data/ana/beads/run3/images`` -> ``images``, so a shared file names
    the data set's folders without the user's directory layout. Relative paths, URLs and
    fractions (``1/2``) are kept.

    Parameters
    ----------
    obj : str, dict, list, tuple or any
        A string, or nested dicts/lists/tuples of them (keys are kept; other values are
        returned unchanged).

    Returns
    -------
    Same type as ``obj``
        A new object; ``obj`` is not modified.

    Examples
    --------
    >>> strip_machine_paths({"path": ["/data/beads/real_all", "C:\\\\scans\\\\day2"], "n": 3})
    {'path': ['real_all', 'day2'], 'n': 3}
    >>> strip_machine_paths("trained on ['/data/a/x', 'y/z']")
    "trained on ['x', 'y/z']"
    >>> strip_machine_paths("/srv/lab/My beads/")
    'My beads'
    """
    if isinstance(obj, str):
        if _ONE_PATH.fullmatch(obj.rstrip("/\\")):
            return _last_name(obj)
        return _ABSOLUTE_PATH.sub(lambda m: _last_name(m.group()), obj)
    if isinstance(obj, dict):
        return {k: strip_machine_paths(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(strip_machine_paths(v) for v in obj)
    return obj
