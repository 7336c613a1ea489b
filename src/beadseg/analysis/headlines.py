"""Headline numbers of one domain (real or synthetic tiles), density bins and per-frame tables.

Nothing here pools domains: the synthetic tiles of the public data are ~4x denser than the real
ones, so a pooled mean describes neither.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..core.dilution import fit_dilution, fit_dilution_frames, frame_densities


def density_bins(counts: np.ndarray, edges: list[float] | None) -> dict:
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


@dataclass
class DomainHeadlines:
    """The headline numbers of one domain; see docs/summary_schema.md for each key."""

    domain: str
    n_images: int
    n_source_frames: int
    mean_beads_per_image: float
    min_beads_per_image: int
    max_beads_per_image: int
    mean_objects_per_image: float
    mean_beads_area_estimate: float
    median_beads_per_mp: float
    mean_foreground_fraction: float
    mean_object_area_px: float
    median_object_area_px: float
    single_bead_area_px: float
    median_equivalent_diameter_px: float
    mean_brightness: float
    frame_brightness_range: tuple[float, float]
    mean_contrast: float
    mean_bead_contrast: float
    min_side_px: int
    density_bins: dict
    dilution_fit: dict | None
    dilution_fit_per_image: dict | None


def _mean(values) -> float:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _dilution_fits(ms) -> tuple[dict | None, dict | None]:
    pts = [
        {"source_frame": m.source_frame, "dilution": m.dilution, "count": m.beads_split, "area_mp": m.area_mp}
        for m in ms
        if m.dilution is not None
    ]
    frames = frame_densities(pts)
    fit = fit_dilution_frames(frames)
    per_image = fit_dilution([p["dilution"] for p in pts], [p["count"] / p["area_mp"] for p in pts])
    return (fit.as_dict() if fit else None), (per_image.as_dict() if per_image else None)


def domain_headlines(
    domain: str, ms, beads_area: dict[str, int], single_area: float, bin_edges: list[float] | None
) -> DomainHeadlines:
    """Headlines of the measurements ``ms`` of one domain."""
    counts = np.array([m.beads_split for m in ms], float)
    areas = np.concatenate([m.arrays.areas for m in ms] + [np.zeros(0)])
    dens = counts / np.array([m.area_mp for m in ms])
    frames = defaultdict(list)
    for m in ms:
        frames[m.source_frame].append(m.brightness)
    bright = [float(np.mean(v)) for v in frames.values()]
    fit, fit_images = _dilution_fits(ms)
    return DomainHeadlines(
        domain=domain,
        n_images=len(ms),
        n_source_frames=len(frames),
        mean_beads_per_image=_mean(counts),
        min_beads_per_image=int(counts.min()) if len(counts) else 0,
        max_beads_per_image=int(counts.max(initial=0)),
        mean_objects_per_image=_mean([m.objects for m in ms]),
        mean_beads_area_estimate=_mean([beads_area[m.name] for m in ms]),
        median_beads_per_mp=float(np.median(dens)) if len(dens) else 0.0,
        mean_foreground_fraction=_mean([m.foreground_fraction for m in ms]),
        mean_object_area_px=float(areas.mean()) if len(areas) else 0.0,
        median_object_area_px=float(np.median(areas)) if len(areas) else 0.0,
        single_bead_area_px=single_area,
        median_equivalent_diameter_px=float(np.median(np.sqrt(4 * areas / np.pi))) if len(areas) else 0.0,
        mean_brightness=_mean([m.brightness for m in ms]),
        frame_brightness_range=(min(bright), max(bright)),
        mean_contrast=_mean([m.contrast for m in ms]),
        mean_bead_contrast=_mean([m.bead_contrast for m in ms]),
        min_side_px=int(min(min(m.height, m.width) for m in ms)),
        density_bins=density_bins(counts, bin_edges),
        dilution_fit=fit,
        dilution_fit_per_image=fit_images,
    )


def aggregate(ms, key: str, per_image: dict[str, dict]) -> list[dict]:
    """One row per value of ``key`` (``source_frame`` or ``dilution``) within one domain.

    ``per_image[name]`` holds the check results of each image (``missing_labels``,
    ``misregistered``, ``grade``).
    """
    groups = defaultdict(list)
    for m in ms:
        groups[getattr(m, key)].append(m)
    out = []
    for k, rs in groups.items():
        beads = np.array([m.beads_split for m in rs], float)
        out.append(
            {
                key: k,
                "domain": rs[0].domain,
                "dilution": rs[0].dilution,
                "n_images": len(rs),
                "n_source_frames": len({m.source_frame for m in rs}),
                "objects_mean": _mean([m.objects for m in rs]),
                "beads_split_mean": float(beads.mean()),
                "beads_area_mean": _mean([per_image[m.name]["beads_area"] for m in rs]),
                "beads_per_mp": float(beads.sum() / sum(m.area_mp for m in rs)),
                "foreground_fraction_mean": _mean([m.foreground_fraction for m in rs]),
                "brightness_mean": _mean([m.brightness for m in rs]),
                "contrast_mean": _mean([m.contrast for m in rs]),
                "n_misregistered": int(sum(per_image[m.name]["misregistered"] for m in rs)),
                "n_missing_labels": int(sum(per_image[m.name]["missing_labels"] for m in rs)),
                "n_unusable_labels": int(sum(per_image[m.name]["grade"] == "unusable" for m in rs)),
            }
        )
    return sorted(out, key=lambda g: (g["dilution"] is None, g["dilution"] or 0, str(g[key])))
