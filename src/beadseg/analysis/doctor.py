"""`beadseg analyze`: fingerprint a dataset, run the checks, recommend, write the outputs."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from ..config import AnalyzeConfig
from ..dilution import fit_dilution
from ..errors import InputError
from ..io import find_pairs, write_csv, write_text
from ..provenance import to_jsonable, write_json, write_provenance
from . import checks
from .fingerprint import measure_image
from .recommend import recommend

SCHEMA_VERSION = 1


def _measure_all(pairs, settings: dict, workers: int, progress: bool) -> list[dict]:
    fn = partial(measure_image, settings=settings)
    if workers > 1 and len(pairs) >= 8:
        import multiprocessing as mp

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            return list(pool.map(fn, pairs, chunksize=max(1, len(pairs) // (4 * workers))))
    if progress:
        from rich.progress import track

        return [fn(p) for p in track(pairs, description="analyzing", transient=True)]
    return [fn(p) for p in pairs]


def _density_bins(counts: np.ndarray, edges: list[float] | None) -> dict:
    """Bins of beads per image that cover every image: given edges, or quartiles of the data."""
    if edges is None:
        q = np.quantile(counts, [0.25, 0.5, 0.75]) if len(counts) else []
        edges = sorted({0.0, *(float(np.ceil(v)) for v in q)})
    edges = [float(e) for e in edges]
    # the first bin starts at 0 and the last is open-ended, so no image can fall outside
    edges[0] = min(edges[0], 0.0)
    full = edges + [float("inf")]
    idx = np.searchsorted(full, counts, side="right") - 1
    return {
        "by": "beads_split",
        "edges": edges + ["inf"],
        "counts": np.bincount(idx, minlength=len(edges)).tolist(),
        "labels": [f"[{full[i]:.0f}, {full[i + 1]:.0f})" for i in range(len(edges))],
        "bin_of_image": idx.tolist(),
    }


def _aggregate(rows: list[dict], key: str) -> list[dict]:
    groups = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    out = []
    for k, rs in groups.items():
        beads = np.array([r["beads_split"] for r in rs], float)
        mp = np.array([r["height"] * r["width"] / 1e6 for r in rs])
        out.append({
            key: k,
            "dilution": rs[0]["dilution"],
            "n_images": len(rs),
            "n_source_frames": len({r["source_frame"] for r in rs}),
            "objects_mean": float(np.mean([r["objects"] for r in rs])),
            "beads_split_mean": float(beads.mean()),
            "beads_area_mean": float(np.mean([r["beads_area"] for r in rs])),
            "beads_per_mp": float(beads.sum() / mp.sum()),
            "foreground_fraction_mean": float(np.mean([r["foreground_fraction"] for r in rs])),
            "brightness_mean": float(np.mean([r["brightness"] for r in rs])),
            "contrast_mean": float(np.mean([r["contrast"] for r in rs])),
            "misregistered": int(sum(r["misregistered"] for r in rs)),
            "missing_labels": int(sum(r["missing_labels"] for r in rs)),
        })
    return sorted(out, key=lambda g: (g["dilution"] is None, g["dilution"] or 0, str(g[key])))


def _overall(rows: list[dict], single_area: float) -> dict:
    def mean(key, sub=rows):
        return float(np.mean([r[key] for r in sub])) if sub else float("nan")

    real = [r for r in rows if not r["synthetic"]]
    areas = np.concatenate([r["_areas"] for r in rows] + [np.zeros(0)])
    mp = np.array([r["height"] * r["width"] / 1e6 for r in rows])
    dens = np.array([r["beads_split"] for r in rows]) / mp
    return {
        "n_images": len(rows),
        "n_real": len(real),
        "n_synthetic": len(rows) - len(real),
        "n_source_frames": len({r["source_frame"] for r in rows}),
        "mean_beads_per_image": mean("beads_split"),
        "mean_objects_per_image": mean("objects"),
        "mean_beads_area_estimate": mean("beads_area"),
        "real_mean_beads_per_image": mean("beads_split", real),
        "real_mean_objects_per_image": mean("objects", real),
        "real_min_beads_per_image": int(min((r["beads_split"] for r in real), default=0)),
        "real_max_beads_per_image": int(max((r["beads_split"] for r in real), default=0)),
        "median_beads_per_mp": float(np.median(dens)) if len(dens) else 0.0,
        "mean_foreground_fraction": mean("foreground_fraction"),
        "real_mean_foreground_fraction": mean("foreground_fraction", real),
        "mean_object_area_px": float(areas.mean()) if len(areas) else 0.0,
        "median_object_area_px": float(np.median(areas)) if len(areas) else 0.0,
        "single_bead_area_px": single_area,
        "median_equivalent_diameter_px": float(np.median(np.sqrt(4 * areas / np.pi)))
        if len(areas) else 0.0,
        "mean_brightness": mean("brightness"),
        "mean_contrast": mean("contrast"),
        "mean_bead_contrast": float(np.nanmean([r["bead_contrast"] for r in rows]))
        if any(np.isfinite(r["bead_contrast"]) for r in rows) else float("nan"),
        "min_side_px": int(min(min(r["height"], r["width"]) for r in rows)),
        "image_sizes": sorted({f"{r['width']}x{r['height']}" for r in rows}),
        "formats": sorted({str(r.get("format")) for r in rows}),
        "bit_depths": sorted({int(r.get("bit_depth", 8)) for r in rows}),
    }


def _reference(reference: str | Path, summary: dict, cfg: AnalyzeConfig, workers: int) -> dict:
    ref_path = Path(reference)
    if ref_path.is_file():
        try:
            ref = json.loads(ref_path.read_text())
            ref_overall = ref.get("overall") or {}
        except json.JSONDecodeError:
            raise InputError(f"{ref_path} is not a summary.json written by beadseg") from None
    else:
        ref_overall = analyze_dataset(ref_path, None, cfg=cfg, workers=workers)["overall"]
    keys = {
        "mean_beads_per_image": "beads per image",
        "mean_foreground_fraction": "foreground fraction",
        "median_object_area_px": "median bead area (px)",
        "mean_brightness": "brightness",
        "mean_contrast": "contrast",
    }
    rows = []
    for k, label in keys.items():
        ours, theirs = summary["overall"].get(k), ref_overall.get(k)
        if ours is None or theirs is None:
            continue
        ratio = ours / theirs if theirs else float("inf")
        rows.append({"metric": k, "label": label, "this": ours, "reference": theirs,
                     "ratio": ratio,
                     "sentence": f"{ratio:.2f}x the reference's {label} ({ours:.3g} vs "
                                 f"{theirs:.3g})"})
    return {"reference": str(reference), "comparisons": rows}


def analyze_dataset(
    data: str | Path,
    out: str | Path | None = "beadseg-analysis",
    reference: str | Path | None = None,
    workers: int | None = None,
    cfg: AnalyzeConfig | None = None,
    plots: bool = True,
    progress: bool = False,
) -> dict:
    """Fingerprint a dataset of image/mask pairs, check it and recommend how to train on it.

    Parameters
    ----------
    data : path
        Folder with ``images/`` and ``masks/``.
    out : path or None
        Output folder for summary.json, per_image.csv, report.md and the figures; None computes
        the summary only.
    reference : path, optional
        Another data folder or a summary.json to compare with.
    workers : int, optional
        Processes for the per-image pass (default: CPU count, capped at 4).
    cfg : AnalyzeConfig, optional
        Detector, registration and overlap settings.
    plots : bool
        Draw the PNG figures.

    Returns
    -------
    dict
        The summary (the content of summary.json).
    """
    cfg = cfg or AnalyzeConfig()
    pairs = find_pairs(data)
    workers = workers or min(os.cpu_count() or 1, 4)
    settings = cfg.model_dump()
    rows = _measure_all(pairs, settings, workers, progress)

    all_areas = np.concatenate([r["_areas"] for r in rows] + [np.zeros(0)])
    med = float(np.median(all_areas)) if len(all_areas) else 0.0
    singles = all_areas[all_areas <= 2 * med] if med else all_areas
    single_area = float(np.median(singles)) if len(singles) else 0.0
    for r in rows:
        r["beads_area"] = int(np.maximum(1, np.round(r["_areas"] / single_area)).sum()) \
            if single_area and len(r["_areas"]) else 0

    thr = checks.missing_label_threshold(rows, cfg.detector_floor, cfg.detector_relative)
    missing = checks.missing_labels(rows, thr, cfg.missing_max_fraction, cfg.missing_min_count)
    overlaps = checks.overlap_agreement(rows, cfg.min_overlap_px, cfg.overlap_match_tol)
    leakage = checks.leakage_groups(rows, overlaps["pairs"])
    quality = checks.label_quality(rows, cfg.speck_area_px or max(3.0, single_area / 4))
    registration = checks.registration_summary(rows)

    counts = np.array([r["beads_split"] for r in rows], float)
    bins = _density_bins(counts, cfg.density_bins)
    for r, b in zip(rows, bins["bin_of_image"]):
        r["density_bin"] = bins["labels"][b]
    overall = _overall(rows, single_area)
    per_frame = _aggregate(rows, "source_frame")
    per_dilution = _aggregate([r for r in rows if r["dilution"] is not None], "dilution")
    real = [r for r in rows if r["dilution"] is not None]
    fits = {}
    for key in ("beads_split", "beads_area", "objects"):
        f = fit_dilution([r["dilution"] for r in real],
                         [r[key] / (r["height"] * r["width"] / 1e6) for r in real])
        fits[key] = f.as_dict() if f else None

    summary = {
        "schema_version": SCHEMA_VERSION,
        "data": str(data),
        # keys of the users' previous analyzer, now measured at native resolution
        "dataset_size": len(rows),
        "mean_positive_ratio": overall["mean_foreground_fraction"],
        "mean_objects_per_image": overall["mean_beads_per_image"],
        "mean_object_size": overall["mean_object_area_px"],
        "partial_mask_suspects": missing["flagged"],
        "definitions": {
            "beads_split": "beads per image: mask components split by distance-transform "
                           "watershed (touching beads counted separately)",
            "objects": "8-connected mask components (a clump counts once)",
            "beads_area": "sum over components of max(1, round(area / single-bead area))",
            "brightness": "mean grey level, 0-255",
            "contrast": "standard deviation of the grey level (RMS contrast), 0-255",
            "bead_contrast": "(background median - bead mean) / background median",
            "foreground_fraction": "mask pixels / all pixels",
            "dilution_slope": "slope of log10(beads per MP) vs log10(dilution), OLS over "
                              "images with a dilution in their name",
        },
        "overall": overall,
        "density_bins": {k: v for k, v in bins.items() if k != "bin_of_image"},
        "dilution_fit": fits,
        "dilution_slope": fits["beads_split"]["slope"] if fits["beads_split"] else None,
        "per_source_frame": per_frame,
        "per_dilution": per_dilution,
        "checks": {
            "missing_labels": missing,
            "leakage": leakage,
            "label_quality": quality,
            "registration": registration,
            "overlap_agreement": overlaps,
        },
        "settings": settings,
    }
    summary["recommendations"] = recommend(summary, rows)
    if reference is not None:
        summary["reference"] = _reference(reference, summary, cfg, workers)
    summary["per_image"] = [_public(r) for r in rows]
    summary = to_jsonable(summary)
    if out is not None:
        _write_outputs(Path(out), summary, rows, pairs, plots, workers)
    return summary


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _run_parallel(jobs: list[tuple], workers: int) -> None:
    """Run (function, args) jobs, spread over forked processes when workers > 1.

    Forked children inherit the arguments (nothing is pickled); matplotlib is imported before
    the fork so each figure costs only its drawing.
    """
    import multiprocessing as mp

    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        for fn, args in jobs:
            fn(*args)
        return
    from ..plots import pyplot

    pyplot()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=fn, args=args) for fn, args in jobs[1:]]
    for p in procs:
        p.start()
    fn, args = jobs[0]
    fn(*args)
    for p in procs:
        p.join()
    failed = [p for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} figure process(es) failed (exit code "
                           f"{failed[0].exitcode})")


def _write_outputs(out: Path, summary: dict, rows: list[dict], pairs, plots: bool,
                   workers: int = 1) -> None:
    from .report import render_report

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    write_csv(out / "per_image.csv", summary["per_image"])
    if plots:
        from .plots import plot_distributions, plot_registration, plot_samples

        _run_parallel([
            (plot_distributions, (summary, rows, out / "distribution_analysis.png")),
            (plot_samples, (summary, rows, pairs, out / "sample_images.png")),
            (plot_registration, (summary, pairs, out / "registration.png")),
        ], workers)
    write_text(out / "report.md", render_report(summary))
    write_provenance(out, "analyze")
