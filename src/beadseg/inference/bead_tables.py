"""The run's one bead table, ``beads.csv``: every bead of every image, an ``image`` column
first, from the per-image tables ``beads/NAME.csv`` (:func:`concat_bead_tables`) or from the
``beads.csv`` of shard folders (:func:`merge_bead_tables`). Rows are streamed, never all held
in memory (a run of thousands of 4K frames holds millions of beads)."""

from __future__ import annotations

import csv
import heapq
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..core.errors import BeadsegWarning
from ..core.files import atomic_path, csv_header, iter_csv_rows

BEADS_CSV = "beads.csv"


def _header(path: Path) -> list[str]:
    return csv_header(path, "bead table")


def _columns(headers: Iterable[list[str]]) -> list[str]:
    """``image``, then every column of the tables in first-seen order (images with and without
    a pixel size have different columns; cells a table lacks stay empty)."""
    cols = ["image"]
    for header in headers:
        cols += [c for c in header if c not in cols]
    return cols


def _rows(path: Path, image: str | None) -> Iterator[dict]:
    for row in iter_csv_rows(path, what="bead table"):
        yield {"image": image, **row} if image is not None else row


def _write(dest: Path, columns: list[str], rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(dest) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


def concat_bead_tables(dest: str | Path, images: list[tuple[str, Path]]) -> int:
    """Write ``dest`` (atomically) from the per-image bead tables ``(image name, CSV path)``, in
    the order given; returns the number of beads. A missing table is left out with a warning
    naming it."""
    present = [(name, Path(p)) for name, p in images if Path(p).is_file()]
    missing = [name for name, p in images if not Path(p).is_file()]
    if missing:
        warnings.warn(
            f"{dest}: no bead table for {len(missing)} images ({', '.join(missing[:5])}); "
            "their beads are not in it (predict them again with --overwrite)",
            BeadsegWarning,
            stacklevel=2,
        )
    columns = _columns(_header(p) for _, p in present)
    rows = (row for name, p in present for row in _rows(p, name))
    return _write(Path(dest), columns, rows)


def merge_bead_tables(dest: str | Path, tables: list[Path]) -> int:
    """Write ``dest`` (atomically) from several ``beads.csv`` (e.g. of the shards of a job
    array), sorted by image as each input is (a heap merge; an image's rows stay together);
    returns the number of beads."""
    columns = _columns(_header(Path(p))[1:] for p in tables)
    rows = heapq.merge(*(_rows(Path(p), None) for p in tables), key=lambda r: r["image"])
    return _write(Path(dest), columns, rows)
