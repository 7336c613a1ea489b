"""Which dilution each image has: the name's ``<number>x`` token, or a sample sheet (CSV of
image / source frame / prefix / sample -> dilution); reading a predict run's counts.csv.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.files import csv_header, read_csv_rows
from ..core.naming import parse_name

_KEY_COLUMNS = ("image", "source_frame", "prefix", "sample")


_DILUTION_VALUE = re.compile(r"^\s*(?:1\s*:\s*)?(\d+(?:\.\d+)?)\s*[xX]?\s*$")


def parse_dilution_value(text: str, where: str = "") -> int:
    """``"160"``, ``"160x"``, ``"160X"`` or ``"1:160"`` -> 160."""
    m = _DILUTION_VALUE.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise InputError(f"{where}dilution {text!r} is not a dilution factor; write e.g. 160, 160x or 1:160")
    return int(round(float(m.group(1))))


@dataclass(frozen=True)
class SampleSheet:
    """A table mapping images, source frames, name prefixes or sample ids to dilutions.

    Matching an image name, in this order: its whole stem (``image``), its source frame
    (``source_frame``), the longest ``prefix`` its stem starts with, then a ``sample`` id that
    appears as a ``_``-separated token of the stem.
    """

    path: str
    entries: tuple[tuple[str, str, int], ...]  # (column, key, dilution)

    def dilution_of(self, name: str) -> int | None:
        stem = parse_name(name).stem
        frame = parse_name(name).source_frame
        tokens = set(stem.split("_"))
        tests = {
            "image": lambda k: k == stem,
            "source_frame": lambda k: k == frame,
            "prefix": stem.startswith,
            "sample": lambda k: k in tokens,
        }
        for column in _KEY_COLUMNS:
            hits = [(len(k), d) for c, k, d in self.entries if c == column and tests[column](k)]
            if hits:
                longest = max(h[0] for h in hits)
                values = {d for n, d in hits if n == longest}
                if len(values) > 1:
                    raise InputError(
                        f"{self.path}: {name} matches {column} rows with dilutions "
                        f"{sorted(values)}; make the sheet unambiguous"
                    )
                return values.pop()
        return None


def read_sample_sheet(path: str | Path) -> SampleSheet:
    """Read a sample sheet CSV (UTF-8, a byte-order mark is fine).

    It needs a ``dilution`` column and one or more key columns: ``image`` (the image name
    without extension), ``source_frame``, ``prefix`` (the start of image names) or ``sample`` (a
    ``_``-separated token of image names). Each row fills one key column.
    """
    path = Path(path)
    raw = read_csv_rows(path, what="sample sheet")
    columns = [c.strip().lower() for c in csv_header(path, "sample sheet")]
    rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in raw]
    keys = [c for c in _KEY_COLUMNS if c in columns]
    if "dilution" not in columns or not keys:
        raise InputError(
            f"sample sheet {path} has columns {columns}; it needs 'dilution' and one "
            f"of {', '.join(_KEY_COLUMNS)}"
        )
    entries = []
    for i, r in enumerate(rows, start=2):
        filled = [(c, r[c]) for c in keys if r.get(c)]
        if not r.get("dilution") or not filled:
            continue
        d = parse_dilution_value(r["dilution"], f"{path} line {i}: ")
        entries += [(c, Path(k).stem if c == "image" else k, d) for c, k in filled]
    if not entries:
        raise InputError(f"sample sheet {path} has no row with a dilution and a key")
    return SampleSheet(str(path), tuple(entries))


def counts_file(path: str | Path) -> Path:
    """The counts table of ``path``: the file itself, or ``counts.csv`` of a `beadseg predict`
    output folder.

    Raises
    ------
    InputError
        Neither exists.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "counts.csv").is_file():
            raise InputError(
                f"{path} is a folder without counts.csv; give a `beadseg predict` output folder "
                "or its counts.csv"
            )
        return path / "counts.csv"
    if not path.is_file():
        raise InputError(f"{path} does not exist; give the counts.csv written by `beadseg predict`")
    return path


def read_counts(path: str | Path, samples: SampleSheet | None = None) -> list[dict]:
    """Rows of a counts.csv (``image``, ``count``, ``area_mp``; ``source_frame`` and
    ``dilution`` optional) with the dilution from the sheet when given, else from the names;
    ``path`` may also be the `beadseg predict` output folder holding it."""
    path = counts_file(path)
    fix = "give the counts.csv `beadseg predict` writes (columns image, count, area_mp)"
    rows = read_csv_rows(path, ("image", "count", "area_mp"), "counts table", fix)
    if not rows:
        raise InputError(f"counts table {path} has no rows; {fix}")
    out = []
    for i, r in enumerate(rows, start=2):
        name = parse_name(r["image"])
        if samples is not None:
            dil = samples.dilution_of(r["image"])
        elif r.get("dilution") not in (None, "", "None"):
            dil = parse_dilution_value(r["dilution"], f"{path} line {i}: ")
        else:
            dil = name.dilution
        try:
            count, area = float(r["count"]), float(r["area_mp"])
        except ValueError:
            count = area = float("nan")
        if not (np.isfinite(count) and count >= 0 and np.isfinite(area) and area > 0):
            raise InputError(
                f"{path} line {i}: count {r['count']!r} / area_mp {r['area_mp']!r} must be numbers, "
                "count >= 0 and area_mp > 0 (as `beadseg predict` writes them)"
            )
        out.append(
            {
                "image": r["image"],
                "source_frame": r.get("source_frame") or name.source_frame,
                "dilution": dil,
                "count": count,
                "area_mp": area,
                "beads_per_mp": count / area if area > 0 else float("nan"),
            }
        )
    return out


def _no_dilution_error(counts_csv, samples: SampleSheet | None, points: list[dict]) -> InputError:
    if samples is not None:
        return InputError(
            f"{counts_csv}: no image matches a row of {samples.path} (first images: "
            f"{', '.join(p['image'] for p in points[:3])})"
        )
    return InputError(
        f"{counts_csv}: no image has a dilution in its name (a leading <number>x "
        "token such as 160x_...); give one with --samples SHEET.csv"
    )
