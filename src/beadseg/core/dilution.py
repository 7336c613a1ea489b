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

**Weights.** When every frame's images carry a count interval (counts.csv ``count_low``,
``count_high``: the model's calibrated error at each frame's density, :mod:`beadseg.core.intervals`),
the fit over frames and the stock are weighted: a frame weighs ``1 / (s_m^2 + s_p^2)`` with
``s_m`` the SD of its log10 density implied by its interval (the summed interval of its images
spans 2 x 1.96 SDs; images of one frame err alike, so their bounds add) and
``s_p^2 = 1 / (count ln(10)^2)`` the Poisson scatter of its count. A packed 10x frame past the
model's calibration, with its wide interval, then moves the slope less than a well-counted
one. Without intervals every frame weighs the same (ordinary least squares), as before.
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
    weighted: bool = False

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


def _ols(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float, float, float]:
    """Slope, intercept, slope standard error and R^2 of y on x, weighted by ``w`` (relative
    weights; the residual scale is estimated, so equal weights give ordinary least squares)."""
    w = np.ones_like(x) if w is None else np.asarray(w, float) / np.mean(w)
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = float((w * (x - xm) ** 2).sum())
    slope = float((w * (x - xm) * (y - ym)).sum() / sxx)
    intercept = float(ym - slope * xm)
    resid = y - (intercept + slope * x)
    sst = float((w * (y - ym) ** 2).sum())
    n = len(x)
    se = float(np.sqrt((w * resid**2).sum() / (n - 2) / sxx)) if n > 2 else float("nan")
    r2 = 1 - float((w * resid**2).sum()) / sst if sst > 0 else 1.0
    return slope, intercept, se, r2


def fit_dilution(
    dilutions, densities, n_frames: int | None = None, fitted_over: str = "image", weights=None
) -> DilutionFit | None:
    """Fit the log-log line; points with density <= 0 or no dilution are left out.

    ``weights`` (one per point, relative): a weighted fit (see the module docstring).
    Returns None when fewer than two distinct dilutions remain.

    Examples
    --------
    >>> f = fit_dilution([100, 200, 400], [50, 25, 12.5])
    >>> round(f.slope, 6), round(f.r2, 6)
    (-1.0, 1.0)
    """
    d = np.asarray([np.nan if v is None else v for v in dilutions], float)
    y = np.asarray(densities, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    ok = np.isfinite(d) & np.isfinite(y) & (d > 0) & (y > 0) & np.isfinite(w) & (w > 0)
    d, y, w = d[ok], y[ok], w[ok]
    if len(np.unique(d)) < 2:
        return None
    slope, intercept, se, r2 = _ols(np.log10(d), np.log10(y), None if weights is None else w)
    n = len(d)
    half = t_quantile(0.975, n - 2) * se if n > 2 else float("nan")
    return DilutionFit(
        slope,
        (slope - half, slope + half),
        intercept,
        r2,
        n,
        int(len(np.unique(d))),
        n_frames,
        fitted_over,
        weights is not None,
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
    count_low: float | None = None  # summed count intervals of its images (None: not all have one)
    count_high: float | None = None

    @property
    def beads_per_mp(self) -> float:
        return self.count / self.area_mp if self.area_mp else float("nan")

    @property
    def log_sd(self) -> float | None:
        """SD of its log10 density: the count interval's (2 x 1.96 SDs) and the count's Poisson
        scatter together; None without an interval."""
        if self.count_low is None or self.count_high is None:
            return None
        ln10 = np.log(10)
        model = (np.log10(max(self.count_high, 0.5)) - np.log10(max(self.count_low, 0.5))) / (2 * 1.96)
        return float(np.sqrt(model**2 + 1 / (max(self.count, 0.5) * ln10**2)))

    @property
    def stock_beads_per_mp(self) -> float:
        return self.beads_per_mp * self.dilution


def frame_densities(points) -> list[FrameDensity]:
    """Sum counts and areas per (source frame, dilution).

    ``points`` are mappings with ``source_frame``, ``dilution``, ``count`` and ``area_mp`` (and
    ``count_low``, ``count_high`` when counted with an interval); those without a dilution are
    left out.
    """
    acc: dict[tuple, list] = {}
    for p in points:
        if p["dilution"] is None:
            continue
        a = acc.setdefault((p["source_frame"], int(p["dilution"])), [0.0, 0.0, 0, 0.0, 0.0])
        a[0] += float(p["count"])
        a[1] += float(p["area_mp"])
        a[2] += 1
        low, high = p.get("count_low"), p.get("count_high")
        a[3] = a[3] + low if low is not None and a[3] is not None else None
        a[4] = a[4] + high if high is not None and a[4] is not None else None
    return [
        FrameDensity(f, d, c, a, n, lo, hi)
        for (f, d), (c, a, n, lo, hi) in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def frame_weights(frames: list[FrameDensity]) -> np.ndarray | None:
    """``1 / log_sd^2`` per frame when every frame has a count interval, else None (see the
    module docstring)."""
    sds = [f.log_sd for f in frames]
    if not frames or any(s is None for s in sds):
        return None
    return 1.0 / np.maximum(np.asarray(sds, float), 1e-6) ** 2


def fit_dilution_frames(frames: list[FrameDensity]) -> DilutionFit | None:
    """The log-log fit with one point per source frame, weighted when every frame has a count
    interval (see the module docstring)."""
    return fit_dilution(
        [f.dilution for f in frames],
        [f.beads_per_mp for f in frames],
        n_frames=len(frames),
        fitted_over="source frame",
        weights=frame_weights(frames),
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
    """Stock concentration implied by the frames (geometric mean of density x dilution; weighted
    as the fit when every frame has a count interval: ``weighted``).

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
    weighted: bool = False


def _geometric_mean_ci(values: np.ndarray, weights=None) -> tuple[float, tuple[float, float]]:
    """Geometric mean and its 95 % interval (t over the values' log10s); with ``weights``
    (relative) the weighted mean, its standard error ``sqrt(sum w (l - m)^2 / ((n - 1) sum w))``
    (the plain one for equal weights)."""
    logs = np.log10(values)
    w = np.ones_like(logs) if weights is None else np.asarray(weights, float)
    m = float(np.average(logs, weights=w))
    if len(logs) < 2:
        return 10**m, (float("nan"), float("nan"))
    se = float(np.sqrt((w * (logs - m) ** 2).sum() / ((len(logs) - 1) * w.sum())))
    half = t_quantile(0.975, len(logs) - 1) * se
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
    w = frame_weights(use)
    value, ci = _geometric_mean_ci(stock, w)
    keep = np.array([f.source_frame not in outliers for f in use])
    without = None
    if outliers and keep.sum() >= 1:
        v2, ci2 = _geometric_mean_ci(stock[keep], None if w is None else w[keep])
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
        w is not None,
    )
