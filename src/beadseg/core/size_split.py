"""Splitting by size: an object with the area and shape of two beads or more is split.

Where beads pack, a centre head can miss the second centre of two tight neighbours: its peaks
merge into one and the watershed keeps the pair as one object. Such an object is larger than a
single bead and elongated along the line of the two centres, where a single large bead is
round. :func:`split_by_size` splits it into ``round(area / single-bead area)`` parts
(``InstanceConfig.split_area_ratio``, used by :func:`beadseg.core.beads.segment_instances`).

The rule: with ``r`` the object's area over the single-bead area and ``e`` its elongation
(major over minor axis of its second moments, 1 for a disc), the object is split when
``r >= SPLIT_MIN_RATIO`` and ``r * exp(ELONGATION_WEIGHT * (e - 1)) >= ratio``: a round
object needs ``ratio`` single-bead areas, an elongated one less. ``ELONGATION_WEIGHT`` and the
ratio 2.15 of the shipped model are a logistic fit of "holds two true centres or more" on the
objects of 30 exact-truth tiles of the model's training frames (`benchmarks/tune_split.py`,
train family, seed 701; area and elongation together: AUC 0.93, area alone 0.90, elongation
alone 0.79), never on the tiles the counting benchmark holds out.

Two parts are the two halves of the object across its minor axis (the pixels on either side
of the centroid along the major axis); three or more are k-means clusters of its pixel
coordinates started at quantiles along the major axis (deterministic).
"""

from __future__ import annotations

import numpy as np

#: Weight of the elongation in the split rule (see the module docstring): fitted with the ratio.
ELONGATION_WEIGHT = 0.53
#: No object under this many single-bead areas is split, however elongated (a bead seen
#: slightly oblique, or a single bead's mask smeared by blur).
SPLIT_MIN_RATIO = 1.3


def object_shapes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Area, centroid (row, col), major-axis direction (unit row, col) and elongation of each
    object of a label image, indexed by id (index 0: the background, zeros). Only object
    pixels are visited."""
    flat = np.asarray(labels).ravel()
    idx = np.flatnonzero(flat)
    ids = flat[idx]
    n = int(flat.max(initial=0)) + 1
    y, x = np.divmod(idx, np.asarray(labels).shape[1])
    area = np.bincount(ids, minlength=n).astype(np.float64)
    a = np.maximum(area, 1)
    my, mx = np.bincount(ids, y, n) / a, np.bincount(ids, x, n) / a
    dy, dx = y - my[ids], x - mx[ids]
    syy, sxx, sxy = (np.bincount(ids, v, n) / a for v in (dy * dy, dx * dx, dy * dx))
    half_trace, disc = (syy + sxx) / 2, np.sqrt(((syy - sxx) / 2) ** 2 + sxy**2)
    major, minor = half_trace + disc, np.maximum(half_trace - disc, 1e-6)
    # eigenvector of the larger eigenvalue of [[syy, sxy], [sxy, sxx]]
    vy, vx = sxy, major - syy
    round_ = np.hypot(vy, vx) < 1e-12
    vy, vx = np.where(round_, 1.0, vy), np.where(round_, 0.0, vx)
    norm = np.hypot(vy, vx)
    elongation = np.sqrt(major / minor)
    elongation[area == 0] = 1.0
    return area, np.stack([my, mx], 1), np.stack([vy / norm, vx / norm], 1), elongation


def split_by_size(
    labels: np.ndarray,
    single_area_px: float,
    ratio: float,
    elongation_weight: float = ELONGATION_WEIGHT,
    min_ratio: float = SPLIT_MIN_RATIO,
) -> np.ndarray:
    """Split the objects whose area and elongation say they hold two beads or more.

    Parameters
    ----------
    labels : ndarray of int
        Instance labels (0 = background).
    single_area_px : float
        The single-bead area of the frame (:func:`beadseg.core.beads.single_area_of_objects`).
    ratio : float
        Single-bead areas a round object needs to be split (0: split nothing).
    elongation_weight, min_ratio : float
        See the module docstring.

    Returns
    -------
    ndarray of int32
        The labels with the split objects' parts numbered after the last id.

    Examples
    --------
    Two overlapping discs as one object, beside a single disc, are split in two:

    >>> yy, xx = np.mgrid[:20, :40]
    >>> pair = (np.hypot(yy - 10, xx - 8) <= 4) | (np.hypot(yy - 10, xx - 14) <= 4)
    >>> labels = pair + 2 * (np.hypot(yy - 10, xx - 30) <= 4)
    >>> int(split_by_size(labels, single_area_px=49, ratio=2.15).max())
    3
    """
    labels = np.asarray(labels)
    out = labels.astype(np.int32)
    if ratio <= 0 or single_area_px <= 0 or out.max(initial=0) == 0:
        return out
    area, centre, axis, elongation = object_shapes(out)
    r = area / float(single_area_px)
    with np.errstate(divide="ignore"):  # log(0): the background and absent ids
        score = np.log(r) + elongation_weight * (elongation - 1)
    split = np.flatnonzero((r >= min_ratio) & (score >= np.log(ratio)))
    split = split[split > 0]
    if len(split) == 0:
        return out
    parts = np.maximum(np.rint(r), 2).astype(np.int64)
    next_id = int(out.max()) + 1
    flat = out.ravel()  # a view: writes land in out
    chosen = np.zeros(len(area), bool)
    chosen[split] = True
    idx = np.flatnonzero(chosen[flat])
    ids = flat[idx]
    y, x = np.divmod(idx, out.shape[1])
    proj = (y - centre[ids, 0]) * axis[ids, 0] + (x - centre[ids, 1]) * axis[ids, 1]
    two = parts[ids] == 2
    # two parts: the pixels past the centroid along the major axis get one new id per object
    new_id = np.zeros(len(area), np.int64)
    pairs = split[parts[split] == 2]
    new_id[pairs] = next_id + np.arange(len(pairs))
    next_id += len(pairs)
    far = two & (proj > 0)
    flat[idx[far]] = new_id[ids[far]]
    many = split[parts[split] > 2]
    if len(many):
        order = np.argsort(ids, kind="stable")
        bounds = np.searchsorted(ids[order], np.stack([many, many + 1]))
        for obj, a, b in zip(many, *bounds):
            at = order[a:b]
            next_id = _split_kmeans(flat, idx[at], y[at], x[at], proj[at], int(parts[obj]), next_id)
    return out


def _split_kmeans(flat, idx, y, x, proj, k: int, next_id: int) -> int:
    """``k`` clusters of one object's pixels (k-means started at the pixels nearest the ``k``
    quantiles of the major axis); clusters 1..k-1 get new ids. Returns the next free id.

    Lloyd's iterations in numpy rather than ``scipy.cluster.vq.kmeans2``: importing
    scipy.cluster costs ~0.3 s of every predict process, for a few dozen pixels per object.
    """
    k = min(k, len(idx))
    pts = np.stack([y, x], 1).astype(np.float64)
    starts = np.quantile(proj, (np.arange(k) + 0.5) / k)
    centres = pts[[int(np.argmin(np.abs(proj - q))) for q in starts]]
    for _ in range(10):
        which = ((pts[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        sums = np.stack([np.bincount(which, pts[:, i], k) for i in (0, 1)], 1)
        n = np.bincount(which, minlength=k)[:, None]
        moved = np.where(n > 0, sums / np.maximum(n, 1), centres)  # an empty cluster stays put
        if np.allclose(moved, centres):
            break
        centres = moved
    for j in range(1, k):
        flat[idx[which == j]] = next_id
        next_id += 1
    return next_id
