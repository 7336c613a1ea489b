"""Bead density against dilution: the log-log fit and its plot.

For a dilution series, density = stock / dilution, so ``log(density) = a + b log(dilution)``
with slope ``b = -1``. We fit ordinary least squares on log10 values and report b, its 95 %
confidence interval, R^2 and the points that sit furthest from the line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

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


def _read_counts(path: Path) -> list[dict]:
    import csv

    from .errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist; give the counts.csv written by `beadseg predict`")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    need = {"image", "count", "area_mp", "dilution"}
    if not rows or not need <= set(rows[0]):
        raise InputError(f"{path} needs the columns {', '.join(sorted(need))} (as written by "
                         "`beadseg predict`)")
    return rows


def dilution_report(counts_csv: str | Path, out: str | Path | None = None,
                    pixel_size_um: float | None = None, depth_um: float | None = None,
                    outlier_sigma: float = 3.0) -> dict:
    """Density vs dilution from a counts.csv: fit, per-dilution spread, outliers, concentration.

    Parameters
    ----------
    counts_csv : path
        The ``counts.csv`` of `beadseg predict` (image, source_frame, dilution, count, area_mp).
    out : path, optional
        Writes dilution.png, dilution.json and dilution.csv.
    pixel_size_um, depth_um : float, optional
        Pixel size and chamber depth in micrometres; with both, densities are also given in
        beads per microlitre and the stock concentration is inferred.
    outlier_sigma : float
        Images whose log residual exceeds this many robust SDs are named as outliers.
    """
    from .errors import InputError
    from .provenance import write_json

    rows = _read_counts(Path(counts_csv))
    pts = []
    for r in rows:
        if r["dilution"] in ("", "None", None):
            continue
        mp = float(r["area_mp"])
        pts.append({"image": r["image"], "source_frame": r.get("source_frame", r["image"]),
                    "dilution": int(float(r["dilution"])), "count": int(float(r["count"])),
                    "beads_per_mp": int(float(r["count"])) / mp if mp else float("nan"),
                    "area_mp": mp})
    if not pts:
        raise InputError(f"{counts_csv}: no image has a dilution in its name (<number>x_...)")
    fit = fit_dilution([p["dilution"] for p in pts], [p["beads_per_mp"] for p in pts])
    if fit is None:
        raise InputError(f"{counts_csv}: need images of at least two dilutions (found "
                         f"{sorted({p['dilution'] for p in pts})})")
    logres = np.array([np.log10(p["beads_per_mp"]) - np.log10(fit.predict(p["dilution"]))
                       if p["beads_per_mp"] > 0 else np.nan for p in pts])
    ok = np.isfinite(logres)
    mad = 1.4826 * np.median(np.abs(logres[ok] - np.median(logres[ok]))) if ok.any() else 0
    outliers = [p["image"] for p, e in zip(pts, logres)
                if np.isfinite(e) and mad > 0 and abs(e) > outlier_sigma * mad]
    for p, e in zip(pts, logres):
        p["log10_residual"] = float(e) if np.isfinite(e) else None
        # stock estimate of each image: density x dilution
        p["stock_beads_per_mp"] = p["beads_per_mp"] * p["dilution"]
    frames: dict[str, list] = {}
    for p in pts:
        frames.setdefault(p["source_frame"], []).append(p)
    per_frame = [{"source_frame": k, "dilution": v[0]["dilution"],
                  "beads_per_mp": sum(q["count"] for q in v) / sum(q["area_mp"] for q in v),
                  "n_images": len(v)} for k, v in sorted(frames.items())]
    stock = [p["stock_beads_per_mp"] for p in pts if p["beads_per_mp"] > 0]
    result = {
        "fit": fit.as_dict(),
        "ideal_slope": -1.0,
        "n_images": len(pts),
        "outliers": outliers,
        "stock_beads_per_mp_median": float(np.median(stock)) if stock else None,
        "per_source_frame": per_frame,
        "points": pts,
        "units": "beads per megapixel",
    }
    if pixel_size_um and depth_um:
        ul_per_mp = 1e6 * pixel_size_um**2 * depth_um / 1e9  # um^3 -> microlitre
        result["units"] = "beads per microlitre"
        result["microlitre_per_mp"] = ul_per_mp
        result["stock_beads_per_ul_median"] = (result["stock_beads_per_mp_median"] / ul_per_mp
                                               if stock else None)
        for p in pts:
            p["beads_per_ul"] = p["beads_per_mp"] / ul_per_mp
    if out is not None:
        from .io import write_csv
        from .plots import plot_dilution

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "dilution.json", result)
        write_csv(out / "dilution.csv", pts)
        plot_dilution(result, out / "dilution.png")
    return result
