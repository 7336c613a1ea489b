"""The single source of every number beadseg reports.

Definitions
-----------
Pixel IoU (Jaccard) of prediction P and truth T: ``|P & T| / |P | T|``; an image where both are
empty scores 1. Dice: ``2 |P & T| / (|P| + |T|)``, same convention. Over a set of images we report
the **mean** of per-image values (each image weighs the same) and the **pooled** value (counts
summed over all pixels of all images first; dense images weigh more). Always say which.

Object matching: instances of two label images are matched one-to-one with the optimal
assignment among pairs with IoU >= ``thresh`` (ties broken by IoU), exactly as
``stardist.matching.matching``: TP, FP, FN, precision ``TP/(TP+FP)``, recall ``TP/(TP+FN)``,
accuracy ``TP/(TP+FP+FN)``, F1 ``2TP/(2TP+FP+FN)``, mean matched IoU, mean true score
(matched IoU summed / n_true) and panoptic quality (matched IoU summed / (TP + FP/2 + FN/2)).
Overlaps are computed sparsely (only pixel pairs where both images have an object), and the
assignment is solved per connected block of candidate pairs, so 4K label images with thousands
of beads are fast. The centroid variant matches centres within ``max_dist_px``.

Empty images: a ratio whose denominator is 0 is 0 (as in stardist), except when there is
nothing to find and nothing was found (no true and no predicted objects): then precision,
recall, accuracy, F1, the mean scores and panoptic quality are all 1, where stardist gives 0.
Over a set of images, matchings are **pooled** as stardist's ``matching_dataset`` does
(:func:`pool_matchings`): TP, FP, FN, the object counts and the matched scores are summed over
the images and the scores computed from the sums, so an empty-empty image adds nothing, and a
set with no objects at all scores 1.

Count error of an image: ``(predicted - true) / max(true, 1)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .labels import centroids, relabel


def _div(a: float, b: float) -> float:
    return float(a) / b if b > 0 else 0.0


# ----------------------------------------------------------------------------- pixel metrics


@dataclass(frozen=True)
class PixelScores:
    """Pixel confusion counts of one image (or pooled over many) and the scores they give."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def iou(self) -> float:
        union = self.tp + self.fp + self.fn
        return 1.0 if union == 0 else self.tp / union

    @property
    def dice(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 1.0 if denom == 0 else 2 * self.tp / denom

    @property
    def precision(self) -> float:
        return 1.0 if self.tp + self.fp == 0 and self.fn == 0 else _div(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return 1.0 if self.tp + self.fn == 0 and self.fp == 0 else _div(self.tp, self.tp + self.fn)

    @property
    def pred_fraction(self) -> float:
        return _div(self.tp + self.fp, self.tp + self.fp + self.fn + self.tn)

    @property
    def true_fraction(self) -> float:
        return _div(self.tp + self.fn, self.tp + self.fp + self.fn + self.tn)

    def __add__(self, other: PixelScores) -> PixelScores:
        return PixelScores(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(iou=self.iou, dice=self.dice, precision=self.precision, recall=self.recall)
        return d


def pixel_scores(pred: np.ndarray, true: np.ndarray) -> PixelScores:
    """Confusion counts of two binary masks of the same shape.

    Examples
    --------
    >>> p = np.array([[1, 1, 0]], bool); t = np.array([[1, 0, 0]], bool)
    >>> s = pixel_scores(p, t); (s.tp, s.fp, s.fn, s.tn, s.iou)
    (1, 1, 0, 1, 0.5)
    """
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if pred.shape != true.shape:
        raise ValueError(f"shapes differ: prediction {pred.shape}, truth {true.shape}")
    tp = int(np.count_nonzero(pred & true))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(true)) - tp
    return PixelScores(tp, fp, fn, pred.size - tp - fp - fn)


def pooled(scores: list[PixelScores]) -> PixelScores:
    """Counts summed over images (the pooled value)."""
    total = PixelScores(0, 0, 0, 0)
    for s in scores:
        total = total + s
    return total


def mean_iou(scores: list[PixelScores]) -> float:
    """Mean of per-image IoU (empty-empty images score 1)."""
    return float(np.mean([s.iou for s in scores])) if scores else float("nan")


def mean_dice(scores: list[PixelScores]) -> float:
    """Mean of per-image Dice."""
    return float(np.mean([s.dice for s in scores])) if scores else float("nan")


#: up to this radius :func:`best_shift_iou` counts overlaps shift by shift, above it by one FFT
#: (measured crossover: radius ~10 on 512 x 512 masks, ~7 on 3840 x 2160 ones)
_DIRECT_SHIFT_RADIUS_PX = 6


def _shifted_overlaps(pred: np.ndarray, true: np.ndarray, r: int) -> np.ndarray:
    """``O[dy + r, dx + r] = |pred & shift(true, dy, dx)|`` for every shift in ``[-r, r]^2``."""
    h, w = true.shape
    if r > _DIRECT_SHIFT_RADIUS_PX:
        from .registration import cross_sums  # local import: registration imports metrics

        # float64 transforms of 0/1 masks: within 1e-6 of whole numbers on 4K frames
        return np.rint(cross_sums(true, pred, r, np.float64)).astype(np.int64)
    out = np.zeros((2 * r + 1, 2 * r + 1), np.int64)
    for i, dy in enumerate(range(-r, r + 1)):
        for j, dx in enumerate(range(-r, r + 1)):
            if abs(dy) < h and abs(dx) < w:  # views, no shifted copies
                p = pred[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
                t = true[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
                out[i, j] = np.count_nonzero(p & t)
    return out


def _kept_areas(true: np.ndarray, r: int) -> np.ndarray:
    """``K[dy + r, dx + r] = |shift(true, dy, dx)|``: the pixels still inside after the shift.

    From the first and last ``r`` columns and the row counts only (a full integral image of a
    512 x 512 mask takes 11 ms, this 0.2 ms).
    """
    h, w = true.shape
    k = min(r, w)
    rows = np.count_nonzero(true, axis=1).astype(np.int64)[:, None]
    # count of each row's first / last c columns, c = 0..r (all of the row beyond its width)
    first = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(true[:, :k], 1)], 1)
    last = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(true[:, w - k :][:, ::-1], 1)], 1)
    first = np.concatenate([first, np.repeat(rows, r - k, 1)], 1)
    last = np.concatenate([last, np.repeat(rows, r - k, 1)], 1)
    # per row, what stays after a shift dx: a shift right pushes out the last dx columns
    in_row = np.concatenate([rows - first[:, r:0:-1], rows - last], 1)  # dx = -r..-1, 0..r
    prefix = np.concatenate([np.zeros((1, 2 * r + 1), np.int64), np.cumsum(in_row, 0)])
    dy = np.arange(-r, r + 1)
    y0, y1 = np.clip(-dy, 0, h), np.clip(h - dy, 0, h)
    return prefix[np.maximum(y1, y0)] - prefix[y0]


def best_shift_iou(pred: np.ndarray, true: np.ndarray, radius_px: int = 3) -> tuple[float, int, int]:
    """Pixel IoU at the best global integer shift of ``true`` within +-radius_px.

    Annotations that sit a few pixels off their beads cap plain IoU; this tells model error
    from registration error. Shifted-in pixels are background.

    The overlaps at every shift are counted on views of the two masks (no shifted copies) up to
    radius 6, and above it taken from one FFT cross-correlation, whose cost hardly depends on
    the radius; the shifted truth's areas come from its edge columns. A 512 x 512 mask takes
    2 ms at radius 3 and 35 ms at 32 (shifted copies: 3.6 and 700 ms), a 3840 x 2160 one 0.15
    and 0.6 s. Of equal IoUs the first in row-major order of (dy, dx) wins, (0, 0) before all.

    Parameters
    ----------
    pred, true : ndarray of bool
        Masks of the same shape.
    radius_px : int
        The largest shift, 0 to :data:`beadseg.core.limits.MAX_SHIFT_RADIUS_PX`.

    Returns
    -------
    (iou, dy, dx)

    Raises
    ------
    InputError
        ``radius_px`` outside 0 to ``MAX_SHIFT_RADIUS_PX``.

    Examples
    --------
    >>> t = np.zeros((20, 20), bool); t[5:9, 5:9] = True
    >>> best_shift_iou(np.roll(t, (2, -1), (0, 1)), t, 3)
    (1.0, 2, -1)
    """
    from .limits import check_shift_radius

    check_shift_radius(radius_px, "radius_px")
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if pred.shape != true.shape:
        raise ValueError(f"shapes differ: prediction {pred.shape}, truth {true.shape}")
    r = int(radius_px)
    inter = _shifted_overlaps(pred, true, r)
    union = int(np.count_nonzero(pred)) + _kept_areas(true, r) - inter
    shifts = np.arange(-r, r + 1)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    best = (float(iou[r, r]), 0, 0)
    for i, j in np.ndindex(iou.shape):  # the search order of (dy, dx) as in a double loop
        if iou[i, j] > best[0] + 1e-12:
            best = (float(iou[i, j]), int(shifts[i]), int(shifts[j]))
    return best


# ----------------------------------------------------------------------------- object matching


@dataclass(frozen=True)
class Matching:
    """Object-matching result (the fields of ``stardist.matching.matching``)."""

    criterion: str
    thresh: float
    fp: int
    tp: int
    fn: int
    precision: float
    recall: float
    accuracy: float
    f1: float
    n_true: int
    n_pred: int
    mean_true_score: float
    mean_matched_score: float
    panoptic_quality: float

    def as_dict(self) -> dict:
        return asdict(self)


def _optimal_pairs(
    rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, n_rows: int, n_cols: int, tie_scale: float
) -> np.ndarray:
    """Indices into (rows, cols) of a maximum-cardinality, then maximum-score, 1:1 matching.

    Candidate pairs form a sparse bipartite graph; each connected block is solved exactly with
    ``linear_sum_assignment`` on costs ``-(1 + score * tie_scale)`` (stardist's tie-breaking).
    """
    if len(rows) == 0:
        return np.zeros(0, int)
    # scipy.optimize / scipy.sparse here, not at the top (~0.3 s to import; only matching needs them)
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(rows)), (rows, cols + n_rows)), shape=(n_rows + n_cols, n_rows + n_cols))
    _, comp = connected_components(graph, directed=False)
    block = comp[rows]
    chosen = []
    order = np.argsort(block, kind="stable")
    bounds = np.flatnonzero(np.diff(block[order])) + 1
    for idx in np.split(order, bounds):
        if len(idx) == 1:
            chosen.append(idx[0])
            continue
        r_ids, r_inv = np.unique(rows[idx], return_inverse=True)
        c_ids, c_inv = np.unique(cols[idx], return_inverse=True)
        cost = np.zeros((len(r_ids), len(c_ids)))
        cost[r_inv, c_inv] = -(1.0 + scores[idx] * tie_scale)
        pair_of = -np.ones((len(r_ids), len(c_ids)), int)
        pair_of[r_inv, c_inv] = idx
        ri, ci = linear_sum_assignment(cost)
        chosen += [p for p in pair_of[ri, ci] if p >= 0]
    return np.asarray(chosen, int)


def _summarise(
    criterion: str, thresh: float, tp: int, n_true: int, n_pred: int, sum_score: float
) -> Matching:
    """Scores from counts (see the module docstring for the empty-empty convention)."""
    fp, fn = n_pred - tp, n_true - tp
    if n_true == 0 and n_pred == 0:  # nothing to find and nothing found: a perfect answer
        return Matching(criterion, thresh, 0, 0, 0, 1.0, 1.0, 1.0, 1.0, 0, 0, 1.0, 1.0, 1.0)
    return Matching(
        criterion=criterion,
        thresh=thresh,
        fp=fp,
        tp=tp,
        fn=fn,
        precision=_div(tp, tp + fp),
        recall=_div(tp, tp + fn),
        accuracy=_div(tp, tp + fp + fn),
        f1=_div(2 * tp, 2 * tp + fp + fn),
        n_true=n_true,
        n_pred=n_pred,
        mean_true_score=_div(sum_score, n_true),
        mean_matched_score=_div(sum_score, tp),
        panoptic_quality=_div(sum_score, tp + fp / 2 + fn / 2),
    )


def pool_matchings(matchings: list[Matching]) -> Matching:
    """One matching for a set of images: counts and matched scores summed, then the scores.

    The pooling of ``stardist.matching.matching_dataset``. All matchings must share one
    criterion and threshold.

    Examples
    --------
    >>> true = np.array([[1, 1, 0, 0]]); pred = np.array([[1, 1, 0, 2]])
    >>> empty = np.zeros((1, 4), int)
    >>> a, b = match_objects(true, pred), match_objects(empty, empty)
    >>> p = pool_matchings([a, b]); (p.tp, p.fp, p.fn, round(p.f1, 3), b.f1)
    (1, 1, 0, 0.667, 1.0)
    """
    if not matchings:
        raise ValueError("pool_matchings needs at least one matching")
    kinds = {(m.criterion, m.thresh) for m in matchings}
    if len(kinds) > 1:
        raise ValueError(f"cannot pool matchings of different criteria/thresholds: {sorted(kinds)}")
    # the matched scores summed: mean_matched_score * tp (0 for an image without matches)
    sum_score = float(sum(m.mean_matched_score * m.tp for m in matchings))
    return _summarise(
        matchings[0].criterion,
        matchings[0].thresh,
        sum(m.tp for m in matchings),
        sum(m.n_true for m in matchings),
        sum(m.n_pred for m in matchings),
        sum_score,
    )


def match_objects(true_labels: np.ndarray, pred_labels: np.ndarray, thresh: float = 0.5) -> Matching:
    """Match instances by IoU >= ``thresh`` with an optimal one-to-one assignment.

    Parameters
    ----------
    true_labels, pred_labels : ndarray of int (or bool, labelled by connectivity)
        Label images of the same shape; 0 is background.
    thresh : float
        IoU a pair needs to count as a match.

    Returns
    -------
    Matching
        Equal to ``stardist.matching.matching(true_labels, pred_labels, thresh)``.
    """
    t, n_true = relabel(true_labels)
    p, n_pred = relabel(pred_labels)
    if t.shape != p.shape:
        raise ValueError(f"shapes differ: truth {t.shape}, prediction {p.shape}")
    area_t = np.bincount(t.ravel(), minlength=n_true + 1)
    area_p = np.bincount(p.ravel(), minlength=n_pred + 1)
    both = (t > 0) & (p > 0)
    key = t[both].astype(np.int64) * (n_pred + 1) + p[both]
    keys, inter = np.unique(key, return_counts=True)
    ti, pi = keys // (n_pred + 1), keys % (n_pred + 1)
    iou = inter / (area_t[ti] + area_p[pi] - inter)
    ok = iou >= thresh
    rows, cols, scores = ti[ok] - 1, pi[ok] - 1, iou[ok]
    n_matched = min(n_true, n_pred)
    chosen = _optimal_pairs(rows, cols, scores, n_true, n_pred, 1.0 / (2 * max(n_matched, 1)))
    return _summarise("iou", thresh, len(chosen), n_true, n_pred, float(scores[chosen].sum()))


def match_points(true_pts: np.ndarray, pred_pts: np.ndarray, max_dist_px: float = 3.0) -> Matching:
    """Match two point sets one-to-one within ``max_dist_px`` (optimal: most pairs, then closest).

    ``mean_matched_score`` is ``1 - mean(distance) / max_dist_px`` so that, as for IoU, higher
    is better; ``thresh`` holds ``max_dist_px``.
    """
    from scipy.spatial import cKDTree

    true_pts = np.asarray(true_pts, float).reshape(-1, 2)
    pred_pts = np.asarray(pred_pts, float).reshape(-1, 2)
    n_true, n_pred = len(true_pts), len(pred_pts)
    if n_true and n_pred:
        pairs = cKDTree(true_pts).sparse_distance_matrix(
            cKDTree(pred_pts), max_dist_px, output_type="ndarray"
        )
        rows, cols, dist = pairs["i"], pairs["j"], pairs["v"]
    else:
        rows = cols = np.zeros(0, int)
        dist = np.zeros(0)
    score = 1 - dist / max_dist_px
    chosen = _optimal_pairs(rows, cols, score, n_true, n_pred, 1.0 / (2 * max(min(n_true, n_pred), 1)))
    return _summarise("centroid", max_dist_px, len(chosen), n_true, n_pred, float(score[chosen].sum()))


def match_centroids(true_labels: np.ndarray, pred_labels: np.ndarray, max_dist_px: float = 3.0) -> Matching:
    """Match objects of two label images by centroid distance (see :func:`match_points`).

    Bool masks are labelled into 4-connected components first, as in :func:`match_objects`.
    """
    return match_points(centroids(_labelled(true_labels)), centroids(_labelled(pred_labels)), max_dist_px)


def _labelled(labels: np.ndarray) -> np.ndarray:
    """A label image as given; a bool mask labelled into components (see :func:`relabel`)."""
    labels = np.asarray(labels)
    return relabel(labels)[0] if labels.dtype == bool else labels


# ----------------------------------------------------------------------------- counts


def count_error(pred_count: float, true_count: float) -> float:
    """Relative count error of one image: ``(pred - true) / max(true, 1)``."""
    return (pred_count - true_count) / max(true_count, 1)


@dataclass(frozen=True)
class CountSummary:
    """Count errors over a set of images."""

    n_images: int
    true_total: float
    pred_total: float
    median_abs_error: float
    mean_abs_error: float
    total_relative_error: float

    def as_dict(self) -> dict:
        return asdict(self)


def count_summary(pred_counts, true_counts) -> CountSummary:
    """Median and mean |count error| per image, and the relative error of the total."""
    pred = np.asarray(pred_counts, float)
    true = np.asarray(true_counts, float)
    errs = np.array([count_error(p, t) for p, t in zip(pred, true)])
    return CountSummary(
        n_images=len(errs),
        true_total=float(true.sum()),
        pred_total=float(pred.sum()),
        median_abs_error=float(np.median(np.abs(errs))) if len(errs) else float("nan"),
        mean_abs_error=float(np.mean(np.abs(errs))) if len(errs) else float("nan"),
        total_relative_error=count_error(pred.sum(), true.sum()),
    )
