"""Bead density against dilution: the log-log fit over source frames and the stock concentration.

For a dilution series, density = stock / dilution, so ``log(density) = a + b log(dilution)``
with slope ``b = -1``. Tiles cut from one source frame overlap and share its sample, so they are
not independent measurements: the fit is made over source frames (density of a frame = its total
count / its total area), and its 95 % confidence interval has ``n_frames - 2`` degrees of
freedom. A fit over single images is kept for comparison only (its interval is too narrow).

Where the dilution comes from: the leading ``<number>x`` token of the image name (``160x_...``
or ``160X_...``; ``320x`` is 320), or a sample sheet (:func:`read_sample_sheet`).

With the pixel size and the chamber depth, densities become concentrations: one megapixel of
``p`` um pixels over a chamber ``d`` um deep holds ``1e6 p^2 d / 1e9`` microlitres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import InputError
from .limits import check_physical


@dataclass(frozen=True)
class DilutionFit:
    """``log10(density) = intercept + slope * log10(dilution)`` (ordinary least squares).

    ``fitted_over`` says what one point is ("source frame" or "image"); ``n_points`` of them,
    from ``n_frames`` source frames (None when not known) and ``n_dilutions`` dilutions.
    """

    slope: float
    slope_ci95: tuple[float, float]
    intercept: float
    r2: float
    n_points: int
    n_dilutions: int
    n_frames: int | None = None
    fitted_over: str = "image"

    def predict(self, dilution) -> np.ndarray:
        return 10 ** (self.intercept + self.slope * np.log10(np.asarray(dilution, float)))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["slope_ci95"] = list(self.slope_ci95)
        return d


def t_quantile(p: float, dof: int) -> float:
    """Student t quantile (scipy.special, which scipy.ndimage loads anyway; scipy.stats takes
    ~0.4 s to import)."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, p))


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Slope, intercept, slope standard error and R^2 of y on x."""
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum() / sxx)
    intercept = float(ym - slope * xm)
    resid = y - (intercept + slope * x)
    sst = float(((y - ym) ** 2).sum())
    n = len(x)
    se = float(np.sqrt((resid**2).sum() / (n - 2) / sxx)) if n > 2 else float("nan")
    r2 = 1 - float((resid**2).sum()) / sst if sst > 0 else 1.0
    return slope, intercept, se, r2


def fit_dilution(
    dilutions, densities, n_frames: int | None = None, fitted_over: str = "image"
) -> DilutionFit | None:
    """Fit the log-log line; points with density <= 0 or no dilution are left out.

    Returns None when fewer than two distinct dilutions remain.

    Examples
    --------
    >>> f = fit_dilution([100, 200, 400], [50, 25, 12.5])
    >>> round(f.slope, 6), round(f.r2, 6)
    (-1.0, 1.0)
    """
    d = np.asarray([np.nan if v is None else v for v in dilutions], float)
    y = np.asarray(densities, float)
    ok = np.isfinite(d) & np.isfinite(y) & (d > 0) & (y > 0)
    d, y = d[ok], y[ok]
    if len(np.unique(d)) < 2:
        return None
    slope, intercept, se, r2 = _ols(np.log10(d), np.log10(y))
    n = len(d)
    half = t_quantile(0.975, n - 2) * se if n > 2 else float("nan")
    return DilutionFit(
        slope, (slope - half, slope + half), intercept, r2, n, int(len(np.unique(d))), n_frames, fitted_over
    )


@dataclass(frozen=True)
class FrameDensity:
    """One source frame: its summed count and area, density and implied stock (density x
    dilution, the stock if the dilution series were ideal)."""

    source_frame: str
    dilution: int
    count: float
    area_mp: float
    n_images: int

    @property
    def beads_per_mp(self) -> float:
        return self.count / self.area_mp if self.area_mp else float("nan")

    @property
    def stock_beads_per_mp(self) -> float:
        return self.beads_per_mp * self.dilution


def frame_densities(points) -> list[FrameDensity]:
    """Sum counts and areas per (source frame, dilution).

    ``points`` are mappings with ``source_frame``, ``dilution``, ``count`` and ``area_mp``; those
    without a dilution are left out.
    """
    acc: dict[tuple, list] = {}
    for p in points:
        if p["dilution"] is None:
            continue
        a = acc.setdefault((p["source_frame"], int(p["dilution"])), [0.0, 0.0, 0])
        a[0] += float(p["count"])
        a[1] += float(p["area_mp"])
        a[2] += 1
    return [
        FrameDensity(f, d, c, a, n)
        for (f, d), (c, a, n) in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def fit_dilution_frames(frames: list[FrameDensity]) -> DilutionFit | None:
    """The log-log fit with one point per source frame (see the module docstring)."""
    return fit_dilution(
        [f.dilution for f in frames],
        [f.beads_per_mp for f in frames],
        n_frames=len(frames),
        fitted_over="source frame",
    )


def microlitre_per_mp(pixel_size_um: float | None, depth_um: float | None) -> float | None:
    """Microlitres imaged by one megapixel, or None when neither size is given.

    Raises
    ------
    InputError
        Only one of the two is given, or one is outside its plausible range
        (:data:`beadseg.core.limits.PHYSICAL`).
    """
    if pixel_size_um is None and depth_um is None:
        return None
    if pixel_size_um is None or depth_um is None:
        given, missing = (
            ("--pixel-size-um", "--depth-um") if depth_um is None else ("--depth-um", "--pixel-size-um")
        )
        raise InputError(
            f"{given} needs {missing} too: a concentration needs the pixel size and "
            "the chamber depth (give both, or neither for beads per megapixel)"
        )
    pixel_size_um = check_physical(pixel_size_um, "pixel_size_um", "--pixel-size-um")
    depth_um = check_physical(depth_um, "depth_um", "--depth-um")
    return 1e6 * pixel_size_um**2 * depth_um / 1e9  # um^3 -> microlitre


@dataclass
class StockEstimate:
    """Stock concentration implied by the frames (geometric mean of density x dilution).

    ``ci95`` is the 95 % interval of the geometric mean (t over frames, on log10 values).
    Outlier frames sit more than ``outlier_sigma`` robust SDs (1.4826 x MAD of log10 values)
    from the median; ``ratio_to_median`` says by what factor. ``without_outliers`` is the estimate
    over the remaining frames. ``unit`` is "beads per megapixel" or "beads per microlitre".
    """

    value: float
    ci95: tuple[float, float]
    n_frames: int
    unit: str
    outlier_sigma: float
    ratio_to_median: dict[str, float]
    outliers: list[str]
    without_outliers: tuple[float, float, float] | None = None
    per_frame: dict[str, float] = field(default_factory=dict)


def _geometric_mean_ci(values: np.ndarray) -> tuple[float, tuple[float, float]]:
    logs = np.log10(values)
    m = float(logs.mean())
    if len(logs) < 2:
        return 10**m, (float("nan"), float("nan"))
    half = t_quantile(0.975, len(logs) - 1) * float(logs.std(ddof=1)) / np.sqrt(len(logs))
    return 10**m, (10 ** (m - half), 10 ** (m + half))


def stock_concentration(
    frames: list[FrameDensity], ul_per_mp: float | None = None, outlier_sigma: float = 3.0
) -> StockEstimate | None:
    """Stock concentration from the frames with beads; None without any."""
    use = [f for f in frames if f.count > 0 and f.area_mp > 0]
    if not use:
        return None
    scale = 1 / ul_per_mp if ul_per_mp else 1.0
    stock = np.array([f.stock_beads_per_mp for f in use]) * scale
    logs = np.log10(stock)
    med = float(np.median(logs))
    mad = 1.4826 * float(np.median(np.abs(logs - med)))
    outliers = [f.source_frame for f, v in zip(use, logs) if mad > 0 and abs(v - med) > outlier_sigma * mad]
    value, ci = _geometric_mean_ci(stock)
    keep = np.array([f.source_frame not in outliers for f in use])
    without = None
    if outliers and keep.sum() >= 1:
        v2, ci2 = _geometric_mean_ci(stock[keep])
        without = (v2, ci2[0], ci2[1])
    return StockEstimate(
        value,
        ci,
        len(use),
        "beads per microlitre" if ul_per_mp else "beads per megapixel",
        outlier_sigma,
        {f.source_frame: float(10 ** (v - med)) for f, v in zip(use, logs)},
        outliers,
        without,
        {f.source_frame: float(s) for f, s in zip(use, stock)},
    )
