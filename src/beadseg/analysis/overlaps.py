"""Checks across tiles: leakage groups (near-duplicate tiles of one source frame) and the
agreement of the masks where neighbouring tiles of a frame overlap.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass
class Leakage:
    """Groups of images that share content and must stay on one side of any split."""

    groups: list[dict]
    duplicates: list[dict]

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def cross_frame_groups(self) -> list[dict]:
        return [g for g in self.groups if len(g["source_frames"]) > 1]


def leakage_groups(measurements, overlaps: list[dict]) -> Leakage:
    """Join images of one source frame, overlapping tiles and duplicates (identical pixels, or
    the same 16x16 block-mean hash) into groups."""
    from scipy.cluster.hierarchy import DisjointSet  # +0.2 s of imports, analyze only

    names = [m.name for m in measurements]
    uf = DisjointSet(names)
    tables = {"frame": defaultdict(list), "identical": defaultdict(list), "near-identical": defaultdict(list)}
    for m in measurements:
        tables["frame"][m.source_frame].append(m.name)
        tables["identical"][m.arrays.content_hash].append(m.name)
        tables["near-identical"][m.arrays.average_hash].append(m.name)
    duplicates = []
    for kind, table in tables.items():
        for members in table.values():
            if kind != "frame" and len(members) > 1:
                duplicates.append({"kind": kind, "images": sorted(members)})
            for other in members[1:]:
                uf.merge(members[0], other)
    for o in overlaps:
        if o["overlap_px"]:
            uf.merge(o["a"], o["b"])
    frames_of = {m.name: m.source_frame for m in measurements}
    out = [
        {"images": sorted(g), "source_frames": sorted({frames_of[n] for n in g}), "size": len(g)}
        for g in uf.subsets()
    ]
    out.sort(key=lambda g: (-g["size"], g["images"][0]))
    return Leakage(out, duplicates)


def _strip_match(a: np.ndarray, b: np.ndarray, axis: int, min_px: int, tol: float) -> tuple[int, float]:
    """Width w at which the last w px of ``a`` equal the first w px of ``b`` along ``axis``.

    Returns (w, mean absolute difference in grey levels), or (0, nan) when no width matches
    within ``tol`` grey levels. Widths are screened first by one line (the first line of ``b``
    against each line of ``a``, all at once); only widths whose line is within ``3 tol + 2`` grey
    levels get the full comparison (5x faster on the dev tiles, same answers).
    """
    if axis == 0:
        a, b = a.T, b.T
    n = a.shape[1]
    af, bf = a.astype(np.int16), b.astype(np.int16)
    widths = np.arange(min_px, n + 1)
    line = np.abs(af[:, n - widths] - bf[:, :1]).mean(0)
    best = (0, float("inf"))
    for w in widths[line <= 3 * tol + 2]:
        mad = float(np.abs(af[:, n - w :] - bf[:, :w]).mean())
        if mad < best[1]:
            best = (int(w), mad)
    return best if best[1] <= tol else (0, float("nan"))


def _strip_iou(pa: np.ndarray, pb: np.ndarray) -> float:
    from ..core.metrics import pixel_scores

    return pixel_scores(pa, pb).iou


def _pair_entry(a, b, frame, sides, axis, min_overlap_px, match_tol) -> dict:
    ga, ma = a.arrays.strips[sides[0]]
    gb, mb = b.arrays.strips[sides[1]]
    w, mad = _strip_match(ga, gb, axis, min_overlap_px, match_tol)
    entry = {
        "a": a.name,
        "b": b.name,
        "source_frame": frame,
        "direction": "horizontal" if axis == 1 else "vertical",
        "overlap_px": w,
        "image_mad": mad,
        "mask_iou": float("nan"),
    }
    if w:
        n = ma.shape[axis]
        pa = ma[:, n - w :] if axis == 1 else ma[n - w :]
        pb = mb[:, :w] if axis == 1 else mb[:w]
        entry["mask_iou"] = _strip_iou(pa, pb)
        entry["mask_pixels"] = int(pa.sum() + pb.sum())
    return entry


@dataclass
class OverlapAgreement:
    """Agreement of the masks of grid neighbours on the strips they share.

    ``pairs``: one dict per neighbour pair (``a``, ``b``, ``source_frame``, ``direction``,
    ``overlap_px`` (0: no shared strip found), ``image_mad``, ``mask_iou``); ``n_empty_pairs``:
    shared strips where neither mask has a bead (they score IoU 1); ``mean_iou_nonempty`` leaves
    them out.
    """

    neighbour_pairs: int
    overlapping_pairs: int
    overlap_px: list[int]
    mean_iou: float
    n_empty_pairs: int
    mean_iou_nonempty: float
    median_iou: float
    min_iou: float
    max_iou: float
    per_source_frame: dict[str, float]
    pairs: list[dict]


def overlap_agreement(measurements, min_overlap_px: int, match_tol: float) -> OverlapAgreement:
    """IoU of the masks of neighbouring tiles on the strip they share.

    Neighbours are found from the grid names (same source frame, next column or next row); the
    shared strip is found by matching the images, not assumed. Empty-empty strips score 1, as
    everywhere in beadseg.
    """
    index = {(m.source_frame, m.tile_row, m.tile_col): m for m in measurements if m.arrays.strips is not None}
    pairs = []
    for (frame, rr, cc), a in sorted(index.items(), key=lambda kv: kv[1].name):
        for dr, dc, sides, axis in ((0, 1, ("right", "left"), 1), (1, 0, ("bottom", "top"), 0)):
            b = index.get((frame, rr + dr, cc + dc))
            if b is not None:
                pairs.append(_pair_entry(a, b, frame, sides, axis, min_overlap_px, match_tol))
    matched = [p for p in pairs if p["overlap_px"]]
    ious = [p["mask_iou"] for p in matched]
    nonempty = [p["mask_iou"] for p in matched if p.get("mask_pixels")]
    per_frame = defaultdict(list)
    for p in matched:
        per_frame[p["source_frame"]].append(p["mask_iou"])

    def stat(fn, v):
        return float(fn(v)) if v else float("nan")

    return OverlapAgreement(
        neighbour_pairs=len(pairs),
        overlapping_pairs=len(matched),
        overlap_px=sorted({p["overlap_px"] for p in matched}),
        mean_iou=stat(np.mean, ious),
        n_empty_pairs=len(ious) - len(nonempty),
        mean_iou_nonempty=stat(np.mean, nonempty),
        median_iou=stat(np.median, ious),
        min_iou=stat(np.min, ious),
        max_iou=stat(np.max, ious),
        per_source_frame={k: float(np.mean(v)) for k, v in sorted(per_frame.items())},
        pairs=pairs,
    )
