"""Bead density against dilution: the log-log fit and its plot.

For a dilution series, density = stock / dilution, so ``log(density) = a + b log(dilution)``
with slope ``b = -1``. We fit ordinary least squares on log10 values and report b, its 95 %
confidence interval, R^2 and the points that sit furthest from the line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class DilutionFit:
    """``log10(density) = intercept + slope * log10(dilution)``."""

    slope: float
    slope_ci95: tuple[float, float]
    intercept: float
    r2: float
    n_points: int
    n_dilutions: int

    def predict(self, dilution) -> np.ndarray:
        return 10 ** (self.intercept + self.slope * np.log10(np.asarray(dilution, float)))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["slope_ci95"] = list(self.slope_ci95)
        return d


def fit_dilution(dilutions, densities) -> DilutionFit | None:
    """Fit the log-log line; points with density <= 0 or no dilution are left out.

    Returns None when fewer than two distinct dilutions remain.

    Examples
    --------
    >>> f = fit_dilution([100, 200, 400], [50, 25, 12.5])
    >>> round(f.slope, 6), round(f.r2, 6)
    (-1.0, 1.0)
    """
    from scipy import stats

    d = np.asarray([np.nan if v is None else v for v in dilutions], float)
    y = np.asarray(densities, float)
    ok = np.isfinite(d) & np.isfinite(y) & (d > 0) & (y > 0)
    d, y = d[ok], y[ok]
    if len(np.unique(d)) < 2:
        return None
    x, ly = np.log10(d), np.log10(y)
    res = stats.linregress(x, ly)
    n = len(x)
    if n > 2:
        t = stats.t.ppf(0.975, n - 2)
        ci = (res.slope - t * res.stderr, res.slope + t * res.stderr)
    else:
        ci = (float("nan"), float("nan"))
    return DilutionFit(float(res.slope), (float(ci[0]), float(ci[1])), float(res.intercept),
                       float(res.rvalue**2), n, int(len(np.unique(d))))
