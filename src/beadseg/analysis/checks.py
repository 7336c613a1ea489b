"""Dataset-level checks over the per-image measurements: missing labels, leakage, label quality,
mask registration and agreement of overlapping tiles."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

# ----------------------------------------------------------------------------- missing labels


def missing_label_threshold(rows: list[dict], floor: float, relative: float) -> float:
    """Evidence a detector peak needs to count as a bead, tuned on the set's labelled beads.

    ``max(floor, relative * median evidence of labelled objects)``: the detector is calibrated
    on what the annotated beads of this very set look like.
    """
    labelled = np.concatenate([r["_labelled_peak"] for r in rows] + [np.zeros(0)])
    if len(labelled) == 0:
        return float(floor)
    return float(max(floor, relative * np.median(labelled)))


def missing_labels(rows: list[dict], threshold: float, max_fraction: float,
                   min_count: int) -> dict:
    """Score each image by the share of bead candidates with no mask under them.

    ``unlabelled_fraction = unlabelled candidates / (mask objects + unlabelled candidates)``;
    an image is flagged when it is at least ``max_fraction`` and ``min_count`` candidates.
    Writes ``unlabelled_candidates``, ``unlabelled_fraction`` and ``missing_labels`` into rows.
    """
    flagged = []
    for r in rows:
        strong = r["_peak_values"] >= threshold
        unl = int((strong & r["_peak_unlabelled"]).sum())
        frac = unl / max(r["objects"] + unl, 1)
        r["unlabelled_candidates"] = unl
        r["unlabelled_fraction"] = frac
        r["missing_labels"] = bool(frac >= max_fraction and unl >= min_count)
        if r["missing_labels"]:
            flagged.append(r["name"])
    fr = [r["unlabelled_fraction"] for r in rows]
    return {
        "detector_threshold": threshold,
        "max_fraction": max_fraction,
        "min_count": min_count,
        "flagged": flagged,
        "median_unlabelled_fraction": float(np.median(fr)) if fr else float("nan"),
    }


# ----------------------------------------------------------------------------- leakage


class _UnionFind:
    def __init__(self, items):
        self.parent = {i: i for i in items}

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def leakage_groups(rows: list[dict], overlaps: list[dict]) -> dict:
    """Groups of images that share content and must stay on one side of any split.

    Images are joined when they come from one source frame, overlap (a shared strip found by
    image matching) or are duplicates (identical pixels, or the same 16x16 block-mean hash).
    """
    names = [r["name"] for r in rows]
    uf = _UnionFind(names)
    by_frame = defaultdict(list)
    by_hash = defaultdict(list)
    by_ahash = defaultdict(list)
    for r in rows:
        by_frame[r["source_frame"]].append(r["name"])
        by_hash[r["_hash"]].append(r["name"])
        by_ahash[r["_ahash"]].append(r["name"])
    for members in by_frame.values():
        for m in members[1:]:
            uf.union(members[0], m)
    duplicates = []
    for kind, table in (("identical", by_hash), ("near-identical", by_ahash)):
        for members in table.values():
            if len(members) > 1:
                duplicates.append({"kind": kind, "images": sorted(members)})
                for m in members[1:]:
                    uf.union(members[0], m)
    for o in overlaps:
        if o["overlap_px"]:
            uf.union(o["a"], o["b"])
    groups = defaultdict(list)
    for n in names:
        groups[uf.find(n)].append(n)
    frames_of = {r["name"]: r["source_frame"] for r in rows}
    out = []
    for members in groups.values():
        frames = sorted({frames_of[m] for m in members})
        out.append({"images": sorted(members), "source_frames": frames, "size": len(members)})
    out.sort(key=lambda g: (-g["size"], g["images"][0]))
    cross = [g for g in out if len(g["source_frames"]) > 1]
    return {
        "n_groups": len(out),
        "groups": out,
        "duplicates": duplicates,
        "groups_equal_source_frames": not cross,
        "cross_frame_groups": cross,
    }


# ----------------------------------------------------------------------------- label quality


def label_quality(rows: list[dict], speck_area_px: float) -> dict:
    """Specks (objects below ``speck_area_px``), objects cut by the border, soft and empty masks."""
    for r in rows:
        r["specks"] = int((r["_areas"] < speck_area_px).sum())
    return {
        "speck_area_px": speck_area_px,
        "images_with_specks": [r["name"] for r in rows if r["specks"]],
        "total_specks": int(sum(r["specks"] for r in rows)),
        "border_objects_total": int(sum(r["border_objects"] for r in rows)),
        "border_object_fraction": float(
            sum(r["border_objects"] for r in rows) / max(sum(r["objects"] for r in rows), 1)
        ),
        "soft_masks": [r["name"] for r in rows if r["soft_mask"]],
        "empty_masks": [r["name"] for r in rows if r["empty_mask"]],
    }


# ----------------------------------------------------------------------------- registration


def registration_summary(rows: list[dict]) -> dict:
    """Images whose mask fits its beads clearly better at a shift of >= 2 px."""
    flagged = sorted((r for r in rows if r["misregistered"]),
                     key=lambda r: -r["registration_gain"])
    shifts = [r["registration_shift_px"] for r in rows]
    return {
        "flagged": [
            {"name": r["name"], "dy": r["registration_dy"], "dx": r["registration_dx"],
             "fit_zero": r["registration_fit_zero"], "fit_best": r["registration_fit_best"],
             "gain": r["registration_gain"]}
            for r in flagged
        ],
        "n_flagged": len(flagged),
        "n_shift_ge_2px": int(sum(s >= 2 for s in shifts)),
        "max_shift_px": float(max(shifts)) if shifts else 0.0,
    }


# ----------------------------------------------------------------------------- overlap agreement


def _strip_match(a: np.ndarray, b: np.ndarray, axis: int, min_px: int,
                 tol: float) -> tuple[int, float]:
    """Width w at which the last w px of ``a`` equal the first w px of ``b`` along ``axis``.

    Returns (w, mean absolute difference in grey levels), or (0, nan) when no width matches
    within ``tol`` grey levels.
    """
    best = (0, float("inf"))
    n = a.shape[axis]
    af, bf = a.astype(np.int16), b.astype(np.int16)
    for w in range(min_px, n + 1):
        sa = af[:, n - w:] if axis == 1 else af[n - w:]
        sb = bf[:, :w] if axis == 1 else bf[:w]
        mad = float(np.abs(sa - sb).mean())
        if mad < best[1]:
            best = (w, mad)
    return best if best[1] <= tol else (0, float("nan"))


def overlap_agreement(rows: list[dict], min_overlap_px: int, match_tol: float) -> dict:
    """IoU of the masks of neighbouring tiles on the strip they share.

    Neighbours are found from the grid names (same source frame, next column or next row); the
    shared strip is found by matching the images, not assumed. Empty-empty strips score 1, as
    everywhere in beadseg.
    """
    from ..metrics import pixel_scores

    index = {(r["source_frame"], r["tile_row"], r["tile_col"]): r for r in rows
             if r.get("_strips") is not None}
    pairs = []
    for (frame, rr, cc), a in sorted(index.items(), key=lambda kv: kv[1]["name"]):
        for (dr, dc, sa, sb, axis) in ((0, 1, "right", "left", 1), (1, 0, "bottom", "top", 0)):
            b = index.get((frame, rr + dr, cc + dc))
            if b is None:
                continue
            ga, ma = a["_strips"][sa]
            gb, mb = b["_strips"][sb]
            w, mad = _strip_match(ga, gb, axis, min_overlap_px, match_tol)
            entry = {"a": a["name"], "b": b["name"], "source_frame": frame,
                     "direction": "horizontal" if axis == 1 else "vertical",
                     "overlap_px": w, "image_mad": mad, "mask_iou": float("nan")}
            if w:
                n = ma.shape[axis]
                pa = ma[:, n - w:] if axis == 1 else ma[n - w:]
                pb = mb[:, :w] if axis == 1 else mb[:w]
                entry["mask_iou"] = pixel_scores(pa, pb).iou
                entry["mask_pixels"] = int(pa.sum() + pb.sum())
            pairs.append(entry)
    matched = [p for p in pairs if p["overlap_px"]]
    ious = [p["mask_iou"] for p in matched]
    nonempty = [p["mask_iou"] for p in matched if p.get("mask_pixels")]
    per_frame = {}
    for p in matched:
        per_frame.setdefault(p["source_frame"], []).append(p["mask_iou"])
    return {
        "neighbour_pairs": len(pairs),
        "overlapping_pairs": len(matched),
        "overlap_px": sorted({p["overlap_px"] for p in matched}),
        "mean_iou": float(np.mean(ious)) if ious else float("nan"),
        # strips where neither mask has a bead score 1 above; without them:
        "n_empty_pairs": len(ious) - len(nonempty),
        "mean_iou_nonempty": float(np.mean(nonempty)) if nonempty else float("nan"),
        "median_iou": float(np.median(ious)) if ious else float("nan"),
        "min_iou": float(np.min(ious)) if ious else float("nan"),
        "max_iou": float(np.max(ious)) if ious else float("nan"),
        "per_source_frame": {k: float(np.mean(v)) for k, v in sorted(per_frame.items())},
        "pairs": pairs,
    }
