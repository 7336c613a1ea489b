"""`beadseg dilution`: the fit of a counts table written as dilution.json, dilution.csv, a figure,
report.md / report.html, and the console lines.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..core.dilution import (
    fit_dilution,
    fit_dilution_frames,
    frame_densities,
    microlitre_per_mp,
    stock_concentration,
)
from ..core.errors import InputError
from .samples import _no_dilution_error, read_counts, read_sample_sheet


def dilution_analysis(points: list[dict], ul_per_mp: float | None = None, outlier_sigma: float = 3.0) -> dict:
    """Fit over source frames, the per-image fit for comparison, and the stock concentration.

    ``points``: mappings with ``image``, ``source_frame``, ``dilution``, ``count``, ``area_mp``
    (and ``count_low``, ``count_high``: the fit over frames and the stock are then weighted,
    :mod:`beadseg.core.dilution`). Returns the content of dilution.json; its ``fit`` is None
    with fewer than two dilutions.
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
        "weighted": bool(fit and fit.weighted),
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
                "count_low": f.count_low,
                "count_high": f.count_high,
                "log10_sd": f.log_sd,
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
        raise InputError(
            f"{counts_csv}: a dilution fit needs images of at least two dilutions (found {found}); predict "
            "frames of more dilutions, or give --samples with their dilutions"
        )
    result["dilution_source"] = f"sample sheet {sheet.path}" if sheet else "image names"
    if out is not None:
        from ..core.files import write_csv
        from ..outputs.provenance import write_json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "dilution.json", result)
        write_csv(out / "dilution.csv", result["points"])
        plot_dilution(result, out / "dilution.png")
        write_dilution_report(out, result, Path(counts_csv))
    return result


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
        label="source frames" + (" (95 % count interval)" if result.get("weighted") else ""),
    )
    for f in fr:  # the frame's count interval as a bar
        if f.get("count_low") is not None and f["count"] > 0:
            scale_f = f["density"] / f["count"]
            ax.plot([f["dilution"]] * 2, [f["count_low"] * scale_f, f["count_high"] * scale_f], "k-", lw=1)
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
                fontsize=9,
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
    _dilution_ticks(ax, sorted({int(v) for v in d}))
    ax.set(xlabel="dilution factor", ylabel=unit, title="Density vs dilution")
    ax.legend(fontsize=9)


def _dilution_ticks(ax, dilutions: list[int]) -> None:
    """The dilutions of the series as the x ticks, written as numbers (160, 320, ...); no minor
    tick labels (on a log axis they overlap: 3x10^2 4x10^2 ...). With many dilutions every
    other one is labelled."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    shown = dilutions if len(dilutions) <= 8 else dilutions[:: -(-len(dilutions) // 8)]
    ax.xaxis.set_major_locator(FixedLocator(shown))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _draw_stock(ax, result: dict) -> None:
    """The stock each source frame implies, one row per frame (names on the y axis never overlap)."""
    from matplotlib.ticker import LogFormatterSciNotation, NullFormatter

    st = result["stock"]
    fr = [f for f in result["per_source_frame"] if f["density"] > 0]
    y = np.arange(len(fr))[::-1]
    colours = ["tab:red" if f["outlier"] else "k" for f in fr]
    ax.scatter([f["stock"] for f in fr], y, c=colours, zorder=3)
    ax.axvline(
        st["value"],
        color="tab:blue",
        label=f"stock {st['value']:.3g} (95 % CI {st['ci95'][0]:.3g}-{st['ci95'][1]:.3g})",
    )
    ax.axvspan(st["ci95"][0], st["ci95"][1], color="tab:blue", alpha=0.15)
    if st["without_outliers"]:
        v, lo, hi = st["without_outliers"]
        ax.axvline(v, color="tab:green", ls="--", label=f"without outlier frames {v:.3g} ({lo:.3g}-{hi:.3g})")
    stocks = [f["stock"] for f in fr]
    if max(stocks) > 10 * min(stocks):  # a frame far off: log axis, labelled decades only
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(LogFormatterSciNotation())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    ax.set_yticks(y, [f["source_frame"] for f in fr], fontsize=9 if len(fr) <= 30 else 7)
    ax.set(xlabel=f"implied stock ({st['unit']})", title="Stock implied by each source frame")
    ax.legend(fontsize=9)


def plot_dilution(result: dict, path: Path) -> None:
    """dilution.png: density vs dilution (log-log) with the fit over source frames and outlier
    frames named; below it the stock implied by each frame with the estimate and its 95 %
    interval. 1000 px wide: a report shows it at its own size."""
    from ..outputs.figures import REPORT_DPI, REPORT_FIGURE_INCHES, pyplot, save_figure

    plt = pyplot()
    n = len(result["per_source_frame"]) if result["stock"] else 0
    below = max(3.5, 0.28 * n + 1.5)  # the stock panel grows with its rows of frames
    fig, ax = plt.subplots(
        2 if n else 1, 1, figsize=(REPORT_FIGURE_INCHES, 6 + (below if n else 0)), squeeze=False,
        gridspec_kw={"height_ratios": [6, below]} if n else None,
    )  # fmt: skip
    _draw_fit(ax[0, 0], result)
    if n:
        _draw_stock(ax[1, 0], result)
    fig.tight_layout()
    save_figure(fig, path, dpi=REPORT_DPI)


def write_dilution_report(out: Path, r: dict, counts_csv: Path) -> None:
    """report.md and the self-contained report.html of a dilution fit."""
    from ..outputs.document import escape, markdown_table, write_report
    from ..outputs.terms import GENERAL

    f, st = r["fit"], r["stock"]
    md = [
        f"# Dilution series: {escape(counts_csv.parent.name or counts_csv.name)}\n",
        f"{r['n_images']} images of {r['n_frames']} source frames, dilutions from "
        f"{escape(r['dilution_source'])}; density in {r['units']}.\n",
        "## Fit\n",
        f"- Slope {f['slope']:.3f} (95 % CI {_ci(f['slope_ci95'])}; ideal -1), R2 {f['r2']:.3f}, "
        f"fitted over {f['n_points']} source frames at {f['n_dilutions']} dilutions (tiles of one "
        "frame are not independent, so the frame is the unit).",
    ]
    if st:
        md.append(
            f"- Stock concentration {st['value']:.4g} {st['unit']} (95 % CI {st['ci95'][0]:.4g} to "
            f"{st['ci95'][1]:.4g}) over {st['n_frames']} frames."
        )
        md += [
            f"- Outlier frame {escape(name)}: implied stock {st['ratio_to_median'][name]:.2g}x the median."
            for name in st["outliers"]
        ] or [f"- No outlier frame (none beyond {st['outlier_sigma']:g} robust SDs of the implied stock)."]
    if r["images_without_dilution"]:
        md.append(f"- {len(r['images_without_dilution'])} images without a dilution were left out.")
    md += ["", "![dilution](dilution.png)\n", "## Source frames\n"]
    rows = [
        [x["source_frame"], x["dilution"], x["n_images"], round(x["count"]), f"{x['density']:.4g}",
         f"{x['stock']:.4g}", "yes" if x["outlier"] else "no"]
        for x in r["per_source_frame"]
    ]  # fmt: skip
    header = ["source frame", "dilution", "images", "beads", "density", "implied stock", "outlier"]
    md += [markdown_table(header, rows), ""]
    terms = {k: GENERAL[k] for k in ("source frame", "dilution", "beads per MP", "dilution slope")}
    terms["implied stock"] = "density x dilution: the concentration of the undiluted sample a frame implies"
    write_report(out, "\n".join(md), terms)


def _ci(ci) -> str:
    return "n/a" if ci is None or ci[0] is None else f"{ci[0]:.3f} to {ci[1]:.3f}"


def console_lines(r: dict, out) -> list[str]:
    """What `beadseg dilution` prints."""
    f = r["fit"]
    weighted = " weighted by their count intervals" if r.get("weighted") else ""
    lines = [
        f"slope {f['slope']:.3f} (95 % CI {f['slope_ci95'][0]:.3f} to {f['slope_ci95'][1]:.3f}, "
        f"ideal -1), R2 {f['r2']:.3f}, fitted over {r['n_frames']} source frames{weighted} "
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
    lines.append(f"wrote dilution.json, dilution.csv, dilution.png, report.html to {out}")
    return lines
