"""`beadseg analyze`: fingerprint a dataset, run the checks, grade the labels, recommend, write
the outputs. Every headline is given per domain (real / synthetic tiles), never pooled."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..core.beads import beads_by_area, single_area_of_objects
from ..core.config import AnalyzeConfig
from ..core.errors import InputError
from ..core.files import find_pairs
from .checks import INVERTED, WHOLE_IMAGE, Checks, run_checks
from .domains import DOMAINS, REAL, check_domains
from .fingerprint import ImageMeasurement, measure_all
from .grades import grade_one
from .headlines import aggregate, domain_headlines

SCHEMA_VERSION = 2

DEFINITIONS = {
    "domain": "real or synthetic: by name (synthetic_*), confirmed by image statistics",
    "beads_split": "beads per image: mask components split by distance-transform watershed "
    "(touching beads counted separately)",
    "objects": "8-connected mask components (a clump counts once)",
    "beads_area": "sum over components of max(1, round(area / single-bead area of the domain))",
    "brightness": "mean grey level, 0-255",
    "contrast": "standard deviation of the grey level (RMS contrast), 0-255",
    "bead_contrast": "(background median - bead mean) / background median",
    "foreground_fraction": "mask pixels / all pixels",
    "mask_corr": "Pearson correlation of the mask with the image's bead evidence (best shift)",
    "dilution_fit": "log10(beads per MP) vs log10(dilution), OLS with one point per source frame "
    "(frame density = its beads / its area); CI with n_frames - 2 dof",
}


def _beads_area(ms) -> tuple[dict[str, float], dict[str, int]]:
    """The single-bead area of each domain and each image's beads counted by area
    (:mod:`beadseg.core.beads`)."""
    single = {}
    for d in DOMAINS:
        areas = [m.arrays.areas for m in ms if m.domain == d]
        if areas:
            single[d] = single_area_of_objects(np.concatenate(areas))
    return single, {m.name: int(beads_by_area(m.arrays.areas, single[m.domain]).sum()) for m in ms}


def _per_image(ms, checks: Checks, grades: dict, looks: dict, beads_area: dict) -> dict:
    """The check results of each image, keyed by name (the extra per_image.csv columns)."""
    out = {}
    for m in ms:
        fit = checks.fits.per_image[m.name]
        g = grades[m.name]
        out[m.name] = {
            "looks_like": looks.get(m.name, m.domain),
            "beads_area": beads_area[m.name],
            "unlabelled_candidates": checks.missing.unlabelled_candidates[m.name],
            "unlabelled_fraction": checks.missing.unlabelled_fraction[m.name],
            "faint_candidates": checks.missing.faint_candidates[m.name],
            "missing_labels": m.name in checks.missing.flagged,
            "specks": checks.quality.specks[m.name],
            "clump_fraction": checks.quality.clump_fraction[m.name],
            "mask_fit_reference": fit.reference,
            "mask_fits_image": fit.fits_image,
            # a mask that does not fit its image at all is not "shifted by N px"
            "misregistered": m.registration.flagged and fit.fits_image and m.name not in checks.polarity,
            "mask_belongs_to": fit.belongs_to,
            "mask_scale": checks.scales[m.name].scale if m.name in checks.scales else 1.0,
            "grade": g.grade,
            "grade_reasons": "; ".join(g.reasons),
        }
    return out


def _checks_block(ms, checks: Checks, domain_check) -> dict:
    names_by_domain = {d: [m.name for m in ms if m.domain == d] for d in DOMAINS}
    ml, q, fits = checks.missing, checks.quality, checks.fits
    return {
        "domains": asdict(domain_check),
        "missing_labels": {
            "detector_threshold": ml.detector_threshold,
            "image_threshold": ml.image_threshold,
            "max_fraction": ml.max_fraction,
            "min_count": ml.min_count,
            "flagged": ml.flagged,
            "faint_candidates_total": int(sum(ml.faint_candidates.values())),
            "images_with_faint_candidates": sum(v > 0 for v in ml.faint_candidates.values()),
            "median_unlabelled_fraction": {d: ml.median_fraction(n) for d, n in names_by_domain.items() if n},
        },
        "mask_fit": {
            "fit_ratio": fits.fit_ratio,
            "not_fitting": [asdict(fits.per_image[n]) for n in fits.not_fitting],
            "misfiled": fits.misfiled,
        },
        "mask_scale": [asdict(v) for v in checks.scales.values()],
        "leakage": {
            "n_groups": checks.leakage.n_groups,
            "groups": checks.leakage.groups,
            "duplicates": checks.leakage.duplicates,
            "groups_equal_source_frames": not checks.leakage.cross_frame_groups,
            "cross_frame_groups": checks.leakage.cross_frame_groups,
        },
        "label_quality": {
            "speck_area_px": q.speck_area_px,
            "blob_area_ratio": q.blob_area_ratio,
            "images_with_specks": q.images_with_specks,
            "total_specks": int(sum(q.specks.values())),
            "soft_masks": q.soft_masks,
            "empty_masks": q.empty_masks,
            "inverted_masks": sorted(n for n, r in checks.polarity.items() if r == INVERTED),
            "whole_image_masks": sorted(n for n, r in checks.polarity.items() if r == WHOLE_IMAGE),
            "border_objects_total": q.border_objects_total,
            "border_object_fraction": q.border_object_fraction,
        },
        "registration": {**asdict(checks.registration), "n_flagged": checks.registration.n_flagged},
        "overlap_agreement": asdict(checks.overlaps),
    }


def _domains_block(ms, cfg: AnalyzeConfig, single, beads_area, per_image, grades) -> dict:
    out = {}
    for d in DOMAINS:
        dm = [m for m in ms if m.domain == d]
        if not dm:
            continue
        h = asdict(domain_headlines(d, dm, beads_area, single[d], cfg.density_bins))
        bins = h["density_bins"]
        for m, b in zip(dm, bins.pop("bin_of_image")):
            per_image[m.name]["density_bin"] = bins["labels"][b]
        h["grade_counts"] = {
            g: sum(grades[m.name].grade == g for m in dm) for g in ("good", "fixable", "unusable")
        }
        h["n_misregistered"] = sum(per_image[m.name]["misregistered"] for m in dm)
        h["n_missing_labels"] = sum(per_image[m.name]["missing_labels"] for m in dm)
        h["n_masks_not_fitting"] = sum(not per_image[m.name]["mask_fits_image"] for m in dm)
        h["n_soft_masks"] = sum(m.soft_mask for m in dm)
        out[d] = h
    return out


def summarize(data, ms: list[ImageMeasurement], cfg: AnalyzeConfig) -> dict:
    """The content of summary.json (see docs/summary_schema.md) from the measurements."""
    single, beads_area = _beads_area(ms)
    checks = run_checks(ms, cfg, single)
    grades = {m.name: grade_one(m, checks, cfg) for m in ms}
    domain_check = check_domains(ms)
    per_image = _per_image(ms, checks, grades, domain_check.looks_like, beads_area)
    domains = _domains_block(ms, cfg, single, beads_area, per_image, grades)
    summary = {
        "schema_version": SCHEMA_VERSION,
        "data": str(data),
        "dataset_size": len(ms),
        "training_domain": REAL if REAL in domains else next(iter(domains)),
        "domains": domains,
        "image_format": {
            "image_sizes": sorted({f"{m.width}x{m.height}" for m in ms}),
            "formats": sorted({m.format for m in ms}),
            "bit_depths": sorted({m.bit_depth for m in ms}),
            "min_side_px": int(min(min(m.height, m.width) for m in ms)),
        },
        "definitions": DEFINITIONS,
        "per_source_frame": [
            r for d in DOMAINS for r in aggregate([m for m in ms if m.domain == d], "source_frame", per_image)
        ],
        "per_dilution": [
            r
            for d in DOMAINS
            for r in aggregate(
                [m for m in ms if m.domain == d and m.dilution is not None], "dilution", per_image
            )
        ],
        "checks": _checks_block(ms, checks, domain_check),
        "label_grades": [
            {
                "name": g.name,
                "grade": g.grade,
                "reasons": list(g.reasons),
                "dy": g.dy,
                "dx": g.dx,
                "belongs_to": g.belongs_to,
            }
            for g in grades.values()
            if g.grade != "good"
        ],
        "settings": cfg.model_dump(),
    }
    from .recommend import recommend

    summary["recommendations"] = recommend(summary)
    summary["per_image"] = [{**m.row(), **per_image[m.name]} for m in ms]
    return summary


def _reference_headlines(reference, cfg: AnalyzeConfig, workers) -> dict:
    ref_path = Path(reference)
    if ref_path.is_file():
        try:
            ref = json.loads(ref_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(f"{ref_path} is not a summary.json written by beadseg") from None
        if not isinstance(ref, dict) or not isinstance(ref.get("domains", {}), dict):
            raise InputError(
                f"{ref_path} is not a summary.json written by beadseg (it holds a "
                f"{type(ref).__name__}); give a summary.json or a data folder"
            )
        if ref.get("schema_version") != SCHEMA_VERSION or "domains" not in ref:
            raise InputError(
                f"{ref_path} is a summary.json of schema "
                f"{ref.get('schema_version', 1)}; rerun `beadseg analyze` on its data "
                f"(schema {SCHEMA_VERSION}) or give the data folder"
            )
        return ref["domains"]
    return analyze_dataset(ref_path, None, cfg=cfg, workers=workers)["domains"]


def compare_reference(summary: dict, reference, cfg: AnalyzeConfig, workers) -> dict:
    """Headlines of each domain present in both sets, as ratios to the reference's."""
    theirs = _reference_headlines(reference, cfg, workers)
    keys = {
        "mean_beads_per_image": "beads per image",
        "mean_foreground_fraction": "foreground fraction",
        "median_object_area_px": "median bead area (px)",
        "mean_brightness": "brightness",
        "mean_contrast": "contrast",
    }
    rows = []
    for d, ours in summary["domains"].items():
        for k, label in keys.items():
            a, b = ours.get(k), (theirs.get(d) or {}).get(k)
            if a is None or b is None:
                continue
            ratio = a / b if b else float("inf")
            rows.append(
                {
                    "domain": d,
                    "metric": k,
                    "label": label,
                    "this": a,
                    "reference": b,
                    "ratio": ratio,
                    "sentence": f"{d}: {ratio:.2f}x the reference's {label} ({a:.3g} vs {b:.3g})",
                }
            )
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
    """Fingerprint a dataset of image/mask pairs, check and grade its labels, recommend how to
    train on it.

    Parameters
    ----------
    data : path
        Folder with ``images/`` and ``masks/``.
    out : path or None
        Output folder for summary.json, per_image.csv, report.md and the figures; None computes
        the summary only.
    reference : path, optional
        Another data folder or a summary.json to compare with (domain by domain).
    workers : int, optional
        Threads for the per-image pass (default: CPU count, capped at 4).
    cfg : AnalyzeConfig, optional
        Detector, registration, mask-fit and overlap settings.
    plots : bool
        Draw the PNG figures.
    progress : bool
        Show a progress bar while measuring.

    Returns
    -------
    dict
        The summary (the content of summary.json, docs/summary_schema.md).
    """
    cfg = cfg or AnalyzeConfig()
    pairs = find_pairs(data)
    ms = measure_all(pairs, cfg, workers, progress)
    summary = summarize(data, ms, cfg)
    if reference is not None:
        summary["reference"] = compare_reference(summary, reference, cfg, workers)
    from ..outputs.provenance import to_jsonable

    summary = to_jsonable(summary)
    if out is not None:
        from .outputs import write_outputs

        write_outputs(Path(out), summary, ms, pairs, plots)
    return summary
