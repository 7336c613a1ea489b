"""Exploration: how far can the instance step alone go on exact truth?

Reads the probability maps that `bench_counting.py --save-probabilities` left for a model and
replaces only the step from probabilities to beads (today: `instances.split_touching`, a
distance-transform watershed with markers >= min_distance_px apart) by variants:

- ``watershed md=K``: today's step with another minimum marker distance;
- ``h-maxima h=H``: markers are the h-maxima of the probability-weighted distance map;
- ``prob peaks s=S``: markers are local maxima of the probability map smoothed at S px;
- ``area split (A)``: a component of area a holds n = max(markers, round(a / A1)) beads, split
  by k-means on its pixel coordinates when n exceeds its markers; A1 the single-bead area
  measured on the same image (median component area) or calibrated once on the sparse tiles;
- ``area count (A)``: no instances, count = sum(a) / A1 (count only, no F1).

Nothing here is shipped; it reports per level centroid F1 (3 px) and count errors, the baseline
a centre-prediction head must beat.

    python benchmarks/bench_counting.py default --seed S [--touch LO,HI] --save-probabilities
    python benchmarks/explore_splitting.py --seed S [--touch LO,HI]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi
from scipy.cluster.vq import kmeans2
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

sys.path.insert(0, str(Path(__file__).parent))
from bench_counting import DEFAULT_TOUCH, run_name  # noqa: E402
from common import OUT  # noqa: E402

from beadseg.core.beads import instances_from_mask  # noqa: E402
from beadseg.core.config import InstanceConfig  # noqa: E402
from beadseg.core.labels import fill_holes, filter_sizes  # noqa: E402
from beadseg.core.metrics import centroids, count_summary, match_points  # noqa: E402

LEVELS = ("sparse", "medium", "dense", "clumped")
EIGHT = np.ones((3, 3), bool)


def distance_map(mask: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Today's marker map: octagonal distance x (0.5 + p), smoothed at 0.7 px."""
    dist = (
        ndi.distance_transform_cdt(mask, "taxicab").astype(np.float32)
        + ndi.distance_transform_cdt(mask, "chessboard")
    ) / 2
    return ndi.gaussian_filter(dist * (0.5 + prob), 0.7) * mask


def watershed_from(markers: np.ndarray, surface: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Watershed of ``-surface`` from labelled markers; components without a marker kept whole."""
    lab = watershed(-surface, markers, mask=mask, connectivity=2)
    comps, n = ndi.label(mask & (lab == 0), EIGHT)
    lab = np.where(comps > 0, comps + lab.max(), lab)
    return filter_sizes(lab, 8)


def h_maxima_split(mask, prob, h):
    surface = distance_map(mask, prob)
    markers, _ = ndi.label(h_maxima(surface, h) & mask, EIGHT)
    return watershed_from(markers, surface, mask)


def prob_peaks_split(mask, prob, sigma, min_distance=2):
    sm = ndi.gaussian_filter(prob, sigma)
    peaks = (sm == ndi.maximum_filter(sm, 2 * min_distance + 1)) & mask
    markers, _ = ndi.label(peaks, EIGHT)
    return watershed_from(markers, sm, mask)


def area_split(labels: np.ndarray, single_area: float, seed: int = 0) -> np.ndarray:
    """Re-split each object of the components whose area says they hold more beads."""
    comps, n = ndi.label(labels > 0, EIGHT)
    out = labels.astype(np.int64).copy()
    next_id = int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    for c, sl in enumerate(ndi.find_objects(comps), start=1):
        region = comps[sl] == c
        area = int(region.sum())
        have = len(np.unique(labels[sl][region]))
        want = max(int(round(area / single_area)), 1)
        if want <= have:
            continue
        pts = np.argwhere(region).astype(float)
        init = pts[rng.choice(len(pts), want, replace=False)]
        _, assign = kmeans2(pts, init, minit="matrix", seed=seed)
        block = out[sl]
        block[region] = next_id + assign
        next_id += want
    return out


def single_area_of(labels: np.ndarray) -> float:
    areas = np.bincount(labels.ravel())[1:]
    return float(np.median(areas[areas > 0])) if areas.any() else 36.0


def variants(mask, prob, ref_area):
    base = InstanceConfig()
    yield "today (watershed md=3)", instances_from_mask(mask, prob, base)
    for md in (2, 4):
        cfg = base.model_copy(update={"min_distance_px": md})
        yield f"watershed md={md}", instances_from_mask(mask, prob, cfg)
    filled = fill_holes(mask)
    for h in (0.25, 0.5, 1.0):
        yield f"h-maxima h={h}", h_maxima_split(filled, prob, h)
    for s in (0.7, 1.0, 1.25, 1.5, 2.0):
        for md in (2, 3):
            yield f"prob peaks s={s} md={md}", prob_peaks_split(filled, prob, s, md)
    today = instances_from_mask(mask, prob, base)
    yield "area split (same image)", area_split(today, single_area_of(today))
    yield "area split (sparse calib.)", area_split(today, ref_area)
    peaks = prob_peaks_split(filled, prob, 1.0, 2)
    yield "prob peaks s=1 md=2 + area split (sparse calib.)", area_split(peaks, ref_area)


def read_centres(path: Path) -> np.ndarray:
    with open(path) as f:
        return np.array([[float(r["y"]), float(r["x"])] for r in csv.DictReader(f)]).reshape(-1, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="the truth set of bench_counting --seed")
    ap.add_argument("--touch", default=DEFAULT_TOUCH, help="the --touch of bench_counting")
    ap.add_argument("--model", default="default", help="the model tag of bench_counting")
    a = ap.parse_args()
    run = run_name(a.seed, a.touch, "none")
    a.truth = OUT / "counting" / f"truth_{run}"
    a.pred = OUT / "counting" / f"pred_{a.model}_{run}"
    with open(a.truth / "composites.csv") as f:
        level_of = {r["name"]: r["level"] for r in csv.DictReader(f)}
    data = {}
    for name in level_of:
        prob = tifffile.imread(a.pred / "probabilities" / f"{name}.tif")
        data[name] = (prob, read_centres(a.truth / "centres" / f"{name}.csv"))
    # single-bead area calibrated once on isolated beads: the sparse tiles' objects
    sparse = [instances_from_mask(p > 0.5, p) for n, (p, _) in data.items() if level_of[n] == "sparse"]
    ref_area = float(np.median(np.concatenate([np.bincount(s.ravel())[1:] for s in sparse])))
    rows = {}
    for name, (prob, truth) in data.items():
        mask = prob > 0.5
        for variant, labels in variants(mask, prob, ref_area):
            m = match_points(truth, centroids(labels), 3.0)
            rows.setdefault(variant, {}).setdefault(level_of[name], []).append(
                (m.tp, m.fp, m.fn, m.n_pred, m.n_true)
            )
        comp_area = float(mask.sum())
        for variant, area in (("area count (same image)", None), ("area count (sparse calib.)", ref_area)):
            a1 = area or single_area_of(instances_from_mask(mask, prob))
            n = comp_area / a1
            rows.setdefault(variant, {}).setdefault(level_of[name], []).append((0, 0, 0, n, len(truth)))
    print(f"single-bead area calibrated on sparse tiles: {ref_area:.0f} px\n")
    print("| variant | " + " | ".join(f"{lv} F1 / total / median" for lv in LEVELS) + " |")
    print("|---|" + "---|" * len(LEVELS))
    result = {}
    for variant, by_level in rows.items():
        cells = []
        for lv in LEVELS:
            r = np.array(by_level[lv], float)
            tp, fp, fn = r[:, 0].sum(), r[:, 1].sum(), r[:, 2].sum()
            f1 = 2 * tp / max(2 * tp + fp + fn, 1) if "count" not in variant else None
            c = count_summary(r[:, 3], r[:, 4])
            result.setdefault(variant, {})[lv] = {
                "f1": f1,
                "total_count_error": c.total_relative_error,
                "median_abs_count_error": c.median_abs_error,
            }
            f1s = "-" if f1 is None else f"{f1:.3f}"
            cells.append(f"{f1s} / {100 * c.total_relative_error:+.1f} % / {100 * c.median_abs_error:.1f} %")
        print(f"| {variant} | " + " | ".join(cells) + " |")
    out = OUT / f"explore_splitting_{a.pred.name}.json"
    out.write_text(json.dumps({"single_area_sparse_px": ref_area, "variants": result}, indent=2) + "\n")
    print(f"\n{out}")


if __name__ == "__main__":
    main()
