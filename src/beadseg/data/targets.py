"""Training targets of the centre head: where bead centres are, and where that is known.

A model with ``model.centre_head`` predicts, next to the foreground, a map whose peaks are bead
centres (:func:`beadseg.core.beads.instances_from_peaks` turns the peaks into beads). Its
target is built per training image:

* exact-truth images (``labels/`` and ``centres/NAME.csv``, written by `beadseg synth --from`)
  know every centre: the target is valid everywhere;
* annotated masks know a centre only for objects of one bead. An object larger than
  ``clump_area_ratio`` single-bead areas is a clump (:func:`beadseg.core.beads.clumps`), with
  centres nobody marked: its pixels (and a 1-px rim, where its centres' Gaussians would still
  show) are left out of the centre loss (``valid`` False); the foreground loss still uses the
  whole mask.

Two target kinds (``data.centre_target``): ``heatmap``, a Gaussian of SD ``sigma_px`` at each
centre (the maximum where two overlap), and ``distance``, each bead's distance to its edge
divided by its largest value (1 at the centre, about 0 at the rim).

A bead cut by the image border whose centre lies outside the image is a sliver: it belongs to
the neighbouring image (:func:`beadseg.core.beads.centre_inside`, :func:`~beadseg.core.beads.slivers`),
so its centre target is 0 (still valid: "no bead centre here") while the foreground keeps it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..core.beads import centre_inside, clumps, slivers
from ..core.config import CLUMP_AREA_RATIO
from ..core.labels import EIGHT, label_components

__all__ = ["centre_targets", "distance_map", "gaussian_heatmap"]


def gaussian_heatmap(shape: tuple[int, int], centres: np.ndarray, sigma_px: float) -> np.ndarray:
    """``max_k exp(-|x - c_k|^2 / 2 sigma^2)`` over centres ``c_k`` (row, col; sub-pixel)."""
    heat = np.zeros(shape, np.float32)
    r = int(np.ceil(4 * sigma_px))
    for cy, cx in np.asarray(centres, np.float64).reshape(-1, 2):
        y0, y1 = max(int(np.floor(cy)) - r, 0), min(int(np.floor(cy)) + r + 2, shape[0])
        x0, x1 = max(int(np.floor(cx)) - r, 0), min(int(np.floor(cx)) + r + 2, shape[1])
        if y0 >= y1 or x0 >= x1:
            continue
        yy = (np.arange(y0, y1) - cy)[:, None] ** 2
        xx = (np.arange(x0, x1) - cx)[None, :] ** 2
        g = np.exp(-(yy + xx) / (2 * sigma_px**2)).astype(np.float32)
        np.maximum(heat[y0:y1, x0:x1], g, out=heat[y0:y1, x0:x1])
    return heat


def distance_map(labels: np.ndarray) -> np.ndarray:
    """Each object's Euclidean distance to its edge (touching objects have an edge between
    them) divided by the object's largest distance: 1 at its centre."""
    labels = np.asarray(labels)
    inner = labels.copy()
    # an object pixel with a 4-neighbour of another id is edge: set it to 0 before the EDT
    for axis in (0, 1):
        diff = np.diff(labels, axis=axis) != 0
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        inner[tuple(lo)][diff] = 0
        inner[tuple(hi)][diff] = 0
    dist = ndi.distance_transform_edt(inner > 0).astype(np.float32) + (labels > 0)
    top = ndi.maximum(dist, labels, index=np.arange(labels.max() + 1)) if labels.max() else [0.0]
    top = np.asarray(top, np.float32)
    top[0] = 1.0
    return np.where(labels > 0, dist / np.maximum(top[labels], 1e-6), 0).astype(np.float32)


def centre_targets(
    mask: np.ndarray,
    single_area_px: float,
    centres: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    kind: str = "heatmap",
    sigma_px: float = 1.5,
    clump_area_ratio: float = CLUMP_AREA_RATIO,
) -> tuple[np.ndarray, np.ndarray]:
    """The centre head's target and where it is valid, for one image.

    Parameters
    ----------
    mask : ndarray of bool, H x W
        Foreground.
    single_area_px : float
        Area of one bead (:func:`beadseg.core.beads.single_bead_area`).
    centres : ndarray, N x 2, optional
        Exact bead centres (row, col). With ``labels`` (exact instances) the target is valid
        everywhere.
    labels : ndarray of int, optional
        Exact instance labels (needed for ``kind="distance"`` with exact centres).
    kind : {"heatmap", "distance"}
    sigma_px : float
        SD of the heatmap's Gaussians.
    clump_area_ratio : float
        Objects of a mask without exact centres larger than this many bead areas are clumps.

    Returns
    -------
    target : ndarray of float32, H x W, in [0, 1]
    valid : ndarray of bool, H x W
        False where the centres are unknown (clumps of an annotated mask).

    Examples
    --------
    >>> m = np.zeros((9, 9), bool); m[3:6, 3:6] = True
    >>> t, v = centre_targets(m, single_area_px=9)
    >>> float(t[4, 4]), bool(v.all())
    (1.0, True)
    """
    if kind not in ("heatmap", "distance"):
        raise ValueError(f"centre target {kind!r} is not heatmap or distance")
    mask = np.asarray(mask, bool)
    if centres is not None:
        valid = np.ones(mask.shape, bool)
        owned = centre_inside(centres, mask.shape)
        if kind == "heatmap":
            return gaussian_heatmap(mask.shape, np.asarray(centres)[owned], sigma_px), valid
        if labels is None:
            raise ValueError("a distance target from exact centres needs the exact labels")
        labels = np.asarray(labels)
        keep = np.ones(int(labels.max(initial=0)) + 1, bool)
        keep[1 : len(owned) + 1] = owned[: len(keep) - 1]  # bead k (id k) is centre row k - 1
        return distance_map(np.where(keep[labels], labels, 0)), valid
    comps, n = label_components(mask)
    areas = np.bincount(comps.ravel(), minlength=n + 1)
    clump = clumps(areas, single_area_px, clump_area_ratio)
    clump[0] = False
    single = ~clump & ~slivers(comps, single_area_px, areas)
    single[0] = False
    valid = ~ndi.binary_dilation(clump[comps], EIGHT)
    if kind == "distance":
        singles = np.where(single[comps], comps, 0)
        return distance_map(singles), valid
    ids = np.flatnonzero(single)
    pts = np.array(ndi.center_of_mass(mask, comps, ids)).reshape(-1, 2) if len(ids) else np.zeros((0, 2))
    return gaussian_heatmap(mask.shape, pts, sigma_px), valid
