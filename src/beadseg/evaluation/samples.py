"""Which dilution each image has: the name's ``<number>x`` token, or a sample sheet (CSV of
image / source frame / prefix / sample -> dilution); reading a predict run's counts.csv.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from ..core.files import csv_header, read_csv_rows
from ..core.limits import MAX_DILUTION
from ..core.naming import parse_name

_KEY_COLUMNS = ("image", "source_frame", "prefix", "sample")


_DILUTION_VALUE = re.compile(r"^\s*(?:1\s*:\s*)?(\d+(?:\.\d+)?)\s*[xX]?\s*$")


def parse_dilution_value(text: str, where: str = "") -> int:
    """``"160"``, ``"160x"``, ``"160X"``, ``"160.0"`` or ``"1:160"`` -> 160.

    Raises
    ------
    InputError
        Not one of those forms, not a whole number (a 2.5x dilution is refused, never rounded),
        or outside 1 (undiluted) to :data:`beadseg.core.limits.MAX_DILUTION`.
    """
    m = _DILUTION_VALUE.match(str(text))
    if not m:
        raise InputError(f"{where}dilution {text!r} is not a dilution factor; write e.g. 160, 160x or 1:160")
    return checked_dilution(float(m.group(1)), f"{where}dilution {text!r}")


def checked_dilution(value: float, what: str) -> int:
    """``value`` as a whole dilution factor from 1 (undiluted) to ``MAX_DILUTION``.

    Raises
    ------
    InputError
        Naming ``what``: below 1, above the maximum, or not a whole number.
    """
    if not 1 <= value <= MAX_DILUTION:
        raise InputError(
            f"{what} is not a dilution factor from 1 (undiluted) to {MAX_DILUTION:.0e}; "
            "give the factor the sample was diluted by (e.g. 160)"
        )
    if not float(value).is_integer():
        raise InputError(
            f"{what} is not a whole number; beadseg takes whole dilution factors (e.g. 160) and "
            "never rounds them"
        )
    return int(value)


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
    if not path.is_file():
        raise InputError(
            f"sample sheet {path} {'is not a file' if path.exists() else 'does not exist'}; give the "
            "CSV file with a dilution column"
        )
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
        raise InputError(
            f"sample sheet {path} has no row with a dilution and a key; fill the dilution and one of "
            f"{', '.join(keys)} on each row"
        )
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
        raise InputError(f"{path} has no rows (no image was counted); run `beadseg predict` on images first")
    out = []
    for i, r in enumerate(rows, start=2):
        name = parse_name(r["image"])
        if samples is not None:
            dil = samples.dilution_of(r["image"])
        elif r.get("dilution") not in (None, "", "None"):
            dil = parse_dilution_value(r["dilution"], f"{path} line {i}: ")
        elif name.dilution is not None:
            said = f"{path} line {i}: the name {r['image']!r} says dilution {name.dilution}, which"
            dil = checked_dilution(name.dilution, said)
        else:
            dil = None
        count, area = _count_and_area(r, f"{path} line {i}")
        low, high = _interval(r, count, f"{path} line {i}")
        out.append(
            {
                "image": r["image"],
                "source_frame": r.get("source_frame") or name.source_frame,
                "dilution": dil,
                "count": count,
                "area_mp": area,
                "beads_per_mp": count / area if area > 0 else float("nan"),
                "count_low": low,
                "count_high": high,
            }
        )
    return out


def _interval(row: dict, count: float, where: str) -> tuple[float | None, float | None]:
    """The ``count_low`` / ``count_high`` of a counts.csv row (None, None when absent or empty:
    a model without a count calibration, or an older run), checked."""
    text = (row.get("count_low") or "", row.get("count_high") or "")
    if "" in text or "None" in text:
        return None, None
    try:
        low, high = float(text[0]), float(text[1])
    except ValueError:
        low = high = float("nan")
    if not (0 <= low <= high <= _MAX_COUNT):
        raise InputError(
            f"{where}: count_low {text[0]!r} / count_high {text[1]!r} must be numbers with "
            f"0 <= low <= high (as `beadseg predict` writes them), or both empty"
        )
    return low, high


#: the largest count of one image and the range of its area (MP) that a counts table may hold:
#: a gigapixel frame packed with beads, down to one pixel (densities then stay finite)
_MAX_COUNT, _AREA_MP = 1e12, (1e-6, 1e6)


def _count_and_area(row: dict, where: str) -> tuple[float, float]:
    """The ``count`` and ``area_mp`` of a counts.csv row, checked."""
    try:
        count, area = float(row["count"]), float(row["area_mp"])
    except ValueError:
        count = area = float("nan")
    if not (0 <= count <= _MAX_COUNT and _AREA_MP[0] <= area <= _AREA_MP[1]):
        raise InputError(
            f"{where}: count {row['count']!r} / area_mp {row['area_mp']!r} must be numbers, count "
            f"0-{_MAX_COUNT:.0e} and area_mp {_AREA_MP[0]:g}-{_AREA_MP[1]:g} (as `beadseg predict` "
            "writes them)"
        )
    return count, area


def _no_dilution_error(counts_csv, samples: SampleSheet | None, points: list[dict]) -> InputError:
    if samples is not None:
        return InputError(
            f"{counts_csv}: no image matches a row of {samples.path} (first images: "
            f"{', '.join(p['image'] for p in points[:3])}); add rows naming them by image, "
            "source_frame, prefix or sample"
        )
    return InputError(
        f"{counts_csv}: no image has a dilution in its name (a leading <number>x "
        "token such as 160x_...); give one with --samples SHEET.csv"
    )
