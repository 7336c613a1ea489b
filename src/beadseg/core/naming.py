"""Parse source frame, dilution and tile position from tile file names.

Tile names look like ``<dilution>x_<timestamp>[_NNN]_grid_r<row>_c<col>.png``. Tiles of one
source frame share the part before ``_grid_`` and overlap their neighbours.

The dilution rule (:data:`DILUTION_RULE`): a leading token of digits followed by ``x`` or ``X`` and
then ``_`` or the end of the name, read as a whole number: ``160x_a.png`` and ``160X_a.png`` are
160, ``320x`` is 320 (never 20); ``320xyz_a``, ``x160_a`` and ``a_160x`` carry no dilution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_DILUTION = re.compile(r"^(\d+)[xX](?=_|$)")

DILUTION_RULE = (
    "the leading <number>x token of the file name, x or X, then _ or the end: 160x_... and "
    "160X_... are 160, 320x is 320; names without it have none"
)
_GRID = re.compile(r"_grid_r(\d+)_c(\d+)$")


@dataclass(frozen=True)
class TileName:
    """What a tile's file name says about it."""

    stem: str
    source_frame: str
    dilution: int | None
    row: int | None
    col: int | None


def parse_name(name: str | Path) -> TileName:
    """Parse a tile file name.

    Parameters
    ----------
    name : str or Path
        File name or path; the extension is ignored.

    Returns
    -------
    TileName
        ``source_frame`` is the stem before ``_grid_`` (else the whole stem); ``dilution`` the
        leading ``<number>x`` (or ``<number>X``) token as a whole number (None when absent);
        ``row``/``col`` from ``_grid_r<r>_c<c>`` (None when absent).

    Examples
    --------
    >>> parse_name("320x_2025-05-16_00-59-00_grid_r3_c1.png").dilution
    320
    >>> parse_name("10240x_a_002_grid_r3_c1.png").source_frame
    '10240x_a_002'
    """
    stem = Path(name).stem
    source = stem.split("_grid_")[0] if "_grid_" in stem else stem
    d = _DILUTION.match(stem)
    g = _GRID.search(stem)
    return TileName(
        stem=stem,
        source_frame=source,
        dilution=int(d.group(1)) if d else None,
        row=int(g.group(1)) if g else None,
        col=int(g.group(2)) if g else None,
    )


def source_frame(name: str | Path) -> str:
    """Source frame of a tile: the stem before ``_grid_``, else the stem."""
    return parse_name(name).source_frame


def dilution(name: str | Path) -> int | None:
    """Dilution factor from the leading ``<number>x`` / ``<number>X`` token, or None."""
    return parse_name(name).dilution


#: the record ``beadseg synth`` writes beside the tiles it generates (``images/``, ``masks/``):
#: their names, so the dataset doctor and ``evaluate`` know them as synthetic whatever they are
#: called (a synthetic dilution series is named like real frames)
SYNTHETIC_RECORD = "synthetic.json"


def read_synthetic_names(folder: str | Path) -> frozenset[str]:
    """The names ``beadseg synth`` recorded as generated in ``folder`` (empty: none, or no
    readable record)."""
    import json

    path = Path(folder) / SYNTHETIC_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return frozenset(str(n) for n in record.get("synthetic", []))
    except (OSError, ValueError, AttributeError):
        return frozenset()


def record_synthetic_names(folder: str | Path, names: list[str], generator: str) -> Path:
    """Add ``names`` to ``folder``'s record of generated tiles (:data:`SYNTHETIC_RECORD`)."""
    import json

    from .files import write_text

    names = sorted(read_synthetic_names(folder) | set(names))
    record = {
        "about": "tiles of this folder made by beadseg synth: the dataset doctor reports them as synthetic",
        "generator": generator,
        "synthetic": names,
    }
    return write_text(Path(folder) / SYNTHETIC_RECORD, json.dumps(record, indent=1) + "\n")
