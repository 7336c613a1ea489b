"""A count's 95 % interval: how far a model's counts stray from the truth at a frame's density.

A model's count of a frame is off by an amount that depends on how packed the frame is
(touching beads are split less surely than single ones). A :class:`CountCalibration` holds
that error, measured on images whose truth is exact (exact-truth composites, or crops a user
clicked: `beadseg audit`), in bins of **foreground fraction** (the share of the frame's pixels
the model calls bead: what makes counting hard, whatever the pixel size). Per bin it keeps the
mean and SD of ``log(true / predicted)`` over the calibration images and their number ``n``;
the interval of a new frame of predicted count ``c`` is the prediction interval

    c * exp(mean +- t(0.975, n - 1) * sqrt(sd^2 * (1 + 1/n) * max(1, A_cal / A) + frame_sd^2))

(``A``: the frame's area, ``A_cal``: the calibration images' median area: a frame smaller
than them scatters more, a larger one is not credited with less scatter; for a calibration
from small crops of the very frames, ``area_model`` "crops", see :func:`calibrate`), widened
to whole beads. ``frame_sd`` is the spread of the model's bias from one source frame to
another among frames it never saw (a random effect of the frame: it does not average out over
a larger frame); a table measured on the user's own frames (`beadseg audit`) has none, the
term ``benchmarks/frame_spread.py`` measures by leaving frames out is for the shipped table
(which carries 0.049, from three folds of the grouped CV: BENCHMARKS.md).
Past the densest calibrated frame (``foreground fraction > max_fraction``) the interval is
marked ``beyond`` and widened: twice the SD of the densest bin, and at least to the area-based
count (:func:`beadseg.core.beads.area_count`).

The shipped model's table is measured by ``benchmarks/calibrate_counts.py`` on ``train``-family
composites of its training frames (another seed) and stored in the checkpoint's
``meta["count_calibration"]``; BENCHMARKS.md reports its coverage on the held-out family.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import InputError

#: what the calibration measures; a table of another kind is refused
KIND = "log_ratio_by_foreground_fraction"


@dataclass(frozen=True)
class CountInterval:
    """A frame's 95 % count interval; ``beyond``: denser than any calibration image."""

    low: int
    high: int
    beyond: bool


@dataclass(frozen=True)
class CalibrationBin:
    """Calibration images with a foreground fraction up to ``upper`` (from the previous bin's):
    mean and SD of ``log(true / predicted)``, ``n`` images."""

    upper: float
    mean: float
    sd: float
    n: int


@dataclass(frozen=True)
class CountCalibration:
    """Count error of a model by foreground fraction (see the module docstring)."""

    bins: tuple[CalibrationBin, ...]
    max_fraction: float
    reference_area_px: float
    beyond_sd_factor: float = 2.0
    source: str = ""
    area_model: str = "tiles"
    frame_sd: float = 0.0

    def bin_of(self, foreground_fraction: float) -> CalibrationBin:
        for b in self.bins:
            if foreground_fraction <= b.upper:
                return b
        return self.bins[-1]

    def interval(
        self, count: float, foreground_fraction: float, area_px: float, area_count: float | None = None
    ) -> CountInterval:
        """The 95 % interval of the true count of a frame (see the module docstring)."""
        from .dilution import t_quantile

        b = self.bin_of(foreground_fraction)
        beyond = foreground_fraction > self.max_fraction
        sd = b.sd * (self.beyond_sd_factor if beyond else 1.0)
        n = max(b.n, 2)
        ratio = self.reference_area_px / max(area_px, 1.0)
        if self.area_model == "crops":  # the crops' scatter averages out over a larger frame
            tile_var = sd**2 * (ratio + 1 / n)
        else:
            tile_var = sd**2 * (1 + 1 / n) * max(1.0, ratio)
        half = t_quantile(0.975, n - 1) * np.sqrt(tile_var + self.frame_sd**2)
        base = max(float(count), 0.5)  # a frame with no bead found may still hold a few
        low, high = base * np.exp(b.mean - half), base * np.exp(b.mean + half)
        if beyond and area_count is not None:
            low, high = min(low, area_count), max(high, area_count)
        low = int(np.floor(low)) if count > 0 else 0
        return CountInterval(low, max(int(np.ceil(high)), low), beyond)

    def to_dict(self) -> dict:
        return {
            "kind": KIND,
            "bins": [asdict(b) for b in self.bins],
            "max_fraction": self.max_fraction,
            "reference_area_px": self.reference_area_px,
            "beyond_sd_factor": self.beyond_sd_factor,
            "source": self.source,
            "area_model": self.area_model,
            "frame_sd": self.frame_sd,
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> CountCalibration | None:
        """A table as :meth:`to_dict` writes it (None stays None).

        Raises
        ------
        InputError
            A table of another kind or without bins.
        """
        if not d:
            return None
        if d.get("kind") != KIND or not d.get("bins"):
            raise InputError(
                f"count calibration of kind {d.get('kind')!r} with {len(d.get('bins') or [])} bins; "
                f"expected {KIND} with at least one bin (rerun benchmarks/calibrate_counts.py)"
            )
        bins = tuple(CalibrationBin(**b) for b in d["bins"])
        return cls(
            bins,
            float(d["max_fraction"]),
            float(d["reference_area_px"]),
            float(d.get("beyond_sd_factor", 2.0)),
            str(d.get("source", "")),
            str(d.get("area_model", "tiles")),
            check_frame_sd(d.get("frame_sd", 0.0)),
        )


def check_frame_sd(value) -> float:
    """``frame_sd`` as a float: finite and at least 0.

    Raises
    ------
    InputError
        Anything else.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not np.isfinite(v) or v < 0:
        raise InputError(
            f"count calibration frame_sd {value!r}: expected a finite number >= 0 (the SD of "
            f"log(true / predicted) between frames; rerun benchmarks/frame_spread.py)"
        )
    return v


def log_ratio(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``log((true + 0.5) / (pred + 0.5))``: the factor a count must be multiplied by (the half
    bead keeps empty images finite)."""
    return np.log((np.asarray(true, float) + 0.5) / (np.asarray(pred, float) + 0.5))


def calibrate(
    pred,
    true,
    foreground_fraction,
    area_px,
    min_per_bin: int = 8,
    source: str = "",
    area_model: str = "tiles",
    frame_sd: float = 0.0,
) -> CountCalibration:
    """A calibration from images whose true count is known: bins of at least ``min_per_bin``
    images, consecutive in foreground fraction; a bin's upper edge lies half-way to the next.

    ``area_model``: ``tiles`` (images like the frames counted, e.g. 512-px exact-truth tiles: a
    larger frame keeps their scatter) or ``crops`` (small crops of the very frames: their
    scatter averages out over a frame's area, the uncertainty of the mean stays, so the
    interval of a frame of area ``A`` uses ``sd * sqrt(A_cal / A + 1 / n)``). ``frame_sd``: the
    spread of the bias between unseen frames, when the images are not of the frames counted.

    Raises
    ------
    InputError
        Fewer than 2 images.
    """
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    frac, area = np.asarray(foreground_fraction, float), np.asarray(area_px, float)
    if len(pred) < 2:
        raise InputError(f"a count calibration needs at least 2 images with a true count; got {len(pred)}")
    order = np.argsort(frac, kind="stable")
    r = log_ratio(pred, true)[order]
    f = frac[order]
    k = max(1, len(f) // max(min_per_bin, 2))
    groups = [g for g in np.array_split(np.arange(len(f)), k) if len(g)]
    bins = []
    for i, g in enumerate(groups):
        upper = (f[g[-1]] + f[groups[i + 1][0]]) / 2 if i + 1 < len(groups) else float(f[g[-1]])
        sd = float(np.std(r[g], ddof=1)) if len(g) > 1 else 0.0
        bins.append(CalibrationBin(float(upper), float(np.mean(r[g])), sd, len(g)))
    return CountCalibration(
        tuple(bins),
        float(f[-1]),
        float(np.median(area)),
        source=source,
        area_model=area_model,
        frame_sd=check_frame_sd(frame_sd),
    )
