"""What predict found: one image's result, the rows of ``counts.csv`` and the run summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ..core.naming import parse_name


@dataclass
class ImageResult:
    """What predict found in one image."""

    name: str
    count: int
    foreground_fraction: float
    height: int
    width: int
    timings: dict[str, float]
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    out_of_domain: bool = False
    domain_reason: str = ""
    pixel_size_um: float | None = None
    count_low: int | None = None  # the 95 % interval of the true count (model calibrated)
    count_high: int | None = None
    beyond_calibration: bool | None = None  # denser than every calibration image
    count_by_area: float | None = None  # foreground area / single-bead area


@dataclass(frozen=True)
class CountRow:
    """One row of ``counts.csv``: the beads of one image."""

    image: str
    source_frame: str | None
    dilution: int | None
    count: int
    foreground_fraction: float
    height: int
    width: int
    area_mp: float
    beads_per_mp: float
    out_of_domain: bool = False  # unlike the model's training images (see beadseg.core.domain)
    domain_reason: str = ""
    pixel_size_um: float | None = None  # None (an empty cell): not known
    beads_per_mm2: float | None = None
    # the 95 % interval of the true count from the model's calibration on exact truth
    # (beadseg.core.intervals); empty for a model without one
    count_low: int | None = None
    count_high: int | None = None
    beyond_calibration: bool | None = None  # denser than the densest calibration image: wider
    count_by_area: float | None = None  # foreground area / single-bead area (core.beads.area_count)

    @classmethod
    def of(cls, r: ImageResult) -> CountRow:
        name = parse_name(r.name)
        mp = r.height * r.width / 1e6
        px = r.pixel_size_um
        area_mm2 = r.height * r.width * (px / 1000) ** 2 if px is not None else None
        return cls(
            r.name,
            name.source_frame,
            name.dilution,
            r.count,
            round(r.foreground_fraction, 6),
            r.height,
            r.width,
            round(mp, 6),
            round(r.count / mp, 3),
            r.out_of_domain,
            r.domain_reason,
            px,
            round(r.count / area_mm2, 3) if area_mm2 else None,
            r.count_low,
            r.count_high,
            r.beyond_calibration,
            None if r.count_by_area is None else round(r.count_by_area, 1),
        )

    def as_dict(self) -> dict:
        return asdict(self)


COUNT_FIELDS = [f.name for f in fields(CountRow)]


#: counts.csv columns older runs did not write (read as empty)
_NEWER_COUNT_FIELDS = (
    "pixel_size_um",
    "beads_per_mm2",
    "count_low",
    "count_high",
    "beyond_calibration",
    "count_by_area",
)


ERROR_FIELDS = ["image", "error"]


@dataclass
class Tally:
    """The running totals of a prediction run (what :class:`PredictSummary` freezes)."""

    counts: list[CountRow] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    n_resumed: int = 0
    megapixels: float = 0.0
    timings_s: dict[str, float] = field(default_factory=dict)

    def add(self, row: CountRow, result: ImageResult | None) -> None:
        """Count a predicted image (``result``) or a resumed one (``result`` None)."""
        self.counts.append(row)
        if result is None:
            self.n_resumed += 1
            return
        self.megapixels += result.height * result.width / 1e6
        for k, v in result.timings.items():
            self.timings_s[k] = self.timings_s.get(k, 0.0) + v

    def freeze(self, out: Path) -> PredictSummary:
        return PredictSummary(
            Path(out),
            len(self.counts),
            len(self.errors),
            self.n_resumed,
            self.megapixels,
            dict(self.timings_s),
            tuple(self.counts),
            tuple(self.errors),
        )


@dataclass(frozen=True)
class PredictSummary:
    """What a prediction run did (also written as ``summary.json``): the rows of counts.csv,
    the frames skipped with their errors, and where the time went."""

    out: Path
    n_images: int = 0
    n_errors: int = 0
    n_resumed: int = 0
    megapixels: float = 0.0
    timings_s: dict[str, float] = field(default_factory=dict)
    counts: tuple[CountRow, ...] = ()
    errors: tuple[dict, ...] = ()

    @property
    def mp_per_s(self) -> dict[str, float]:
        return {k: self.megapixels / v for k, v in self.timings_s.items() if v > 0}

    @property
    def total_count(self) -> int:
        return sum(r.count for r in self.counts)

    def to_dict(self) -> dict:
        """The ``summary.json`` content."""
        return {
            "n_images": self.n_images,
            "n_errors": self.n_errors,
            "n_resumed": self.n_resumed,
            "megapixels": self.megapixels,
            "timings_s": self.timings_s,
            "mp_per_s": self.mp_per_s,
            "counts": [r.as_dict() for r in self.counts],
        }
