"""Bead density against dilution: the log-log fit over source frames, the stock concentration
and the plot.

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

import csv
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .naming import parse_name

# ----------------------------------------------------------------------------- the fit


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


# ----------------------------------------------------------------------------- concentration


def microlitre_per_mp(pixel_size_um: float | None, depth_um: float | None) -> float | None:
    """Microlitres imaged by one megapixel, or None when neither size is given.

    Raises
    ------
    InputError
        Only one of the two is given, or one is not > 0.
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
    for flag, v in (("--pixel-size-um", pixel_size_um), ("--depth-um", depth_um)):
        if not np.isfinite(v) or v <= 0:
            raise InputError(f"{flag} {v} is not a size; give a positive number of micrometres")
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


# ----------------------------------------------------------------------------- sample sheets

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
    if not path.is_file():
        raise InputError(f"sample sheet {path} does not exist")
    header, raw = _read_csv(path, "sample sheet")
    columns = [c.strip().lower() for c in header]
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


# ----------------------------------------------------------------------------- the report


def _read_csv(path: Path, what: str) -> tuple[list[str], list[dict]]:
    """Header and rows of a UTF-8 CSV (a byte-order mark, as Excel writes, is fine).

    Raises
    ------
    InputError
        Not a text CSV, or a row with more or fewer fields than the header.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"{path} is not a UTF-8 CSV {what} ({type(exc).__name__}); save it as CSV (UTF-8)"
        ) from None
    for i, r in enumerate(rows, start=2):
        if None in r or None in r.values():
            n = len([v for k, v in r.items() if k is not None and v is not None]) + len(r.get(None) or [])
            raise InputError(
                f"{path} line {i} has {n} fields but the header has {len(header)}; every row "
                "needs one value per column"
            )
    return header, rows


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
    _, rows = _read_csv(path, "counts table")
    need = {"image", "count", "area_mp"}
    if not rows or not need <= set(rows[0]):
        raise InputError(
            f"{path} needs the columns {', '.join(sorted(need))} (as written by `beadseg predict`)"
        )
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


def dilution_analysis(points: list[dict], ul_per_mp: float | None = None, outlier_sigma: float = 3.0) -> dict:
    """Fit over source frames, the per-image fit for comparison, and the stock concentration.

    ``points``: mappings with ``image``, ``source_frame``, ``dilution``, ``count``, ``area_mp``.
    Returns the content of dilution.json; its ``fit`` is None with fewer than two dilutions.
    """
    with_d = [p for p in points if p["dilution"] is not None]
    frames = frame_densities(with_d)
    fit = fit_dilution_frames(frames)
    per_image = fit_dilution(
        [p["dilution"] for p in with_d],
        [p["count"] / p["area_mp"] if p["area_mp"] else np.nan for p in with_d],
    )
    stock = stock_concentration(frames, ul_per_mp, outlier_sigma)
    scale = 1 / ul_per_mp if ul_per_mp else 1.0
    return {
        "fit": fit.as_dict() if fit else None,
        "slope": fit.slope if fit else None,
        "slope_ci95": list(fit.slope_ci95) if fit else None,
        "n_frames": len(frames),
        "n_images": len(with_d),
        "ideal_slope": -1.0,
        "fit_per_image": per_image.as_dict() if per_image else None,
        "units": "beads per microlitre" if ul_per_mp else "beads per megapixel",
        "microlitre_per_mp": ul_per_mp,
        "stock": asdict(stock) if stock else None,
        "outliers": stock.outliers if stock else [],
        "per_source_frame": [
            {
                "source_frame": f.source_frame,
                "dilution": f.dilution,
                "n_images": f.n_images,
                "count": f.count,
                "area_mp": f.area_mp,
                "density": f.beads_per_mp * scale,
                "stock": f.stock_beads_per_mp * scale,
                "stock_ratio_to_median": stock.ratio_to_median.get(f.source_frame) if stock else None,
                "outlier": bool(stock and f.source_frame in stock.outliers),
            }
            for f in frames
        ],
        "points": [{**p, "density": p["beads_per_mp"] * scale} for p in with_d],
        "images_without_dilution": [p["image"] for p in points if p["dilution"] is None],
    }


def dilution_report(
    counts_csv: str | Path,
    out: str | Path | None = None,
    pixel_size_um: float | None = None,
    depth_um: float | None = None,
    outlier_sigma: float = 3.0,
    samples: str | Path | None = None,
) -> dict:
    """Density vs dilution from a counts.csv: fit over source frames, stock concentration with
    its 95 % interval, outlier frames.

    Parameters
    ----------
    counts_csv : path
        The ``counts.csv`` of `beadseg predict` (image, source_frame, dilution, count, area_mp).
    out : path, optional
        Writes dilution.png, dilution.json and dilution.csv.
    pixel_size_um, depth_um : float, optional
        Pixel size and chamber depth in micrometres; both or neither. With both, densities and
        the stock are in beads per microlitre.
    outlier_sigma : float
        Frames whose implied stock is this many robust SDs from the median are outliers.
    samples : path, optional
        A sample sheet giving the dilutions (:func:`read_sample_sheet`) instead of the names.

    Raises
    ------
    InputError
        Only one of pixel size and depth, a size <= 0, no image with a dilution, or fewer
        than two dilutions.
    """
    ul = microlitre_per_mp(pixel_size_um, depth_um)
    sheet = read_sample_sheet(samples) if samples is not None else None
    points = read_counts(counts_csv, sheet)
    if not any(p["dilution"] is not None for p in points):
        raise _no_dilution_error(counts_csv, sheet, points)
    result = dilution_analysis(points, ul, outlier_sigma)
    if result["fit"] is None:
        found = sorted({p["dilution"] for p in points if p["dilution"] is not None})
        raise InputError(f"{counts_csv}: need images of at least two dilutions (found {found})")
    result["dilution_source"] = f"sample sheet {sheet.path}" if sheet else "image names"
    if out is not None:
        from .io import write_csv
        from .provenance import write_json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "dilution.json", result)
        write_csv(out / "dilution.csv", result["points"])
        plot_dilution(result, out / "dilution.png")
    return result


# ----------------------------------------------------------------------------- the figure


def _draw_fit(ax, result: dict) -> None:
    fit, unit = result["fit"], result["units"]
    scale = result["microlitre_per_mp"] or 1.0
    pts = result["points"]
    d = np.array([p["dilution"] for p in pts], float)
    y = np.array([p["density"] for p in pts], float)
    pos = y > 0
    ax.loglog(d[pos], y[pos], "o", alpha=0.3, ms=4, color="tab:blue", label="images")
    fr = [f for f in result["per_source_frame"] if f["density"] > 0]
    normal = [f for f in fr if not f["outlier"]]
    odd = [f for f in fr if f["outlier"]]
    ax.loglog(
        [f["dilution"] for f in normal],
        [f["density"] for f in normal],
        "s",
        ms=8,
        mfc="none",
        color="k",
        label="source frames",
    )
    if odd:
        ax.loglog(
            [f["dilution"] for f in odd],
            [f["density"] for f in odd],
            "s",
            ms=9,
            color="tab:red",
            label="outlier frames (implied stock)",
        )
        for f in odd:
            ax.annotate(
                f"{f['source_frame']}\n{f['stock_ratio_to_median']:.2g}x the median stock",
                (f["dilution"], f["density"]),
                fontsize=7,
                xytext=(4, -14),
                textcoords="offset points",
                color="tab:red",
            )
    xs = np.geomspace(d.min(), d.max(), 20)
    lo, hi = fit["slope_ci95"]
    ax.loglog(
        xs,
        10 ** (fit["intercept"] + fit["slope"] * np.log10(xs)) / scale,
        "r-",
        label=f"fit over {fit['n_points']} frames: slope {fit['slope']:.2f} "
        f"[{lo:.2f}, {hi:.2f}], R2 {fit['r2']:.2f}",
    )
    st = result["stock"]
    if st:
        ax.loglog(xs, st["value"] / xs, "k--", lw=0.8, label="ideal slope -1 through the stock")
    ax.set(xlabel="dilution factor", ylabel=unit, title="Density vs dilution")
    ax.legend(fontsize=7)


def _draw_stock(ax, result: dict) -> None:
    st = result["stock"]
    fr = [f for f in result["per_source_frame"] if f["density"] > 0]
    x = np.arange(len(fr))
    colours = ["tab:red" if f["outlier"] else "k" for f in fr]
    ax.scatter(x, [f["stock"] for f in fr], c=colours, zorder=3)
    ax.axhline(
        st["value"],
        color="tab:blue",
        label=f"stock {st['value']:.3g} (95 % CI {st['ci95'][0]:.3g}-{st['ci95'][1]:.3g})",
    )
    ax.axhspan(st["ci95"][0], st["ci95"][1], color="tab:blue", alpha=0.15)
    if st["without_outliers"]:
        v, lo, hi = st["without_outliers"]
        ax.axhline(v, color="tab:green", ls="--", label=f"without outlier frames {v:.3g} ({lo:.3g}-{hi:.3g})")
    ax.set_yscale("log")
    ax.set_xticks(x, [f["source_frame"] for f in fr], fontsize=6, rotation=30, ha="right")
    ax.set(ylabel=f"implied stock ({st['unit']})", title="Stock implied by each source frame")
    ax.legend(fontsize=7)


def plot_dilution(result: dict, path: Path) -> None:
    """dilution.png: density vs dilution (log-log) with the fit over source frames and outlier
    frames named; the stock implied by each frame with the estimate and its 95 % interval."""
    from .plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(14, 5.5))
    _draw_fit(ax[0], result)
    if result["stock"]:
        _draw_stock(ax[1], result)
    else:
        ax[1].set_axis_off()
    fig.tight_layout()
    save_figure(fig, path)


def console_lines(r: dict, out) -> list[str]:
    """What `beadseg dilution` prints."""
    f = r["fit"]
    lines = [
        f"slope {f['slope']:.3f} (95 % CI {f['slope_ci95'][0]:.3f} to {f['slope_ci95'][1]:.3f}, "
        f"ideal -1), R2 {f['r2']:.3f}, fitted over {r['n_frames']} source frames "
        f"({r['n_images']} images; dilutions from {r['dilution_source']})"
    ]
    st = r["stock"]
    if st:
        lines.append(
            f"stock concentration {st['value']:.4g} {st['unit']} (95 % CI "
            f"{st['ci95'][0]:.4g} to {st['ci95'][1]:.4g}) over {st['n_frames']} frames"
        )
        for name in st["outliers"]:
            lines.append(
                f"outlier frame: {name}, implied stock {st['ratio_to_median'][name]:.2g}x the median"
            )
        if st["without_outliers"]:
            v, lo, hi = st["without_outliers"]
            lines.append(f"without outlier frames: {v:.4g} {st['unit']} (95 % CI {lo:.4g} to {hi:.4g})")
        if not st["outliers"]:
            lines.append(f"outlier frames: none (beyond {st['outlier_sigma']:g} robust SDs)")
    if r["images_without_dilution"]:
        lines.append(f"{len(r['images_without_dilution'])} images without a dilution left out")
    lines.append(f"wrote dilution.json, dilution.csv, dilution.png to {out}")
    return lines
