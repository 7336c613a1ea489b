"""From a mask or probability map to separate beads (instance labels) and per-bead measurements.

Touching beads are split by a marker-controlled watershed (scikit-image): markers are local
maxima of the distance transform (optionally weighted by the probability) at least
``min_distance_px`` apart, so a touching pair of ~6-px beads becomes two objects.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops_table
from skimage.morphology import remove_small_objects
from skimage.segmentation import watershed

EIGHT = np.ones((3, 3), bool)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a binary mask."""
    lab, n = ndi.label(np.asarray(mask, bool), structure=EIGHT)
    return lab, int(n)


def split_touching(mask: np.ndarray, prob: np.ndarray | None = None,
                   min_distance_px: int = 3) -> np.ndarray:
    """Split touching objects of a binary mask by distance-transform watershed.

    Parameters
    ----------
    mask : ndarray of bool
        Foreground.
    prob : ndarray of float, optional
        Bead probability; multiplied into the distance map so markers sit where the model is
        most confident.
    min_distance_px : int
        Smallest distance between two bead centres.

    Returns
    -------
    ndarray of int32
        Instance labels (0 = background), numbered 1..n.

    Notes
    -----
    Markers are the maxima of the smoothed distance map within a ``2 * min_distance_px + 1``
    window (plateau pixels merged into one marker). Only the pixels of components with two or
    more markers go through ``skimage.segmentation.watershed``: most beads are single.
    """
    mask = np.asarray(mask, bool)
    comps, n = label_components(mask)
    if n == 0:
        return comps.astype(np.int32)
    # octagonal distance (mean of taxicab and chessboard): within a few % of Euclidean here and
    # ~10x faster than distance_transform_edt (measured on 512x512 bead masks)
    dist = (ndi.distance_transform_cdt(mask, "taxicab").astype(np.float32)
            + ndi.distance_transform_cdt(mask, "chessboard")) / 2
    if prob is not None:
        dist *= 0.5 + np.asarray(prob, np.float32)
    # a little smoothing so the ridge of an elongated bead gives one marker, not several
    dist = ndi.gaussian_filter(dist, 0.7, truncate=3.0) * mask
    size = 2 * min_distance_px + 1
    peaks = (dist == ndi.maximum_filter(dist, size=size)) & mask
    markers, _ = ndi.label(peaks, structure=EIGHT)
    uniq = np.unique(np.stack([comps[peaks], markers[peaks]]), axis=1)
    per_comp = np.bincount(uniq[0], minlength=n + 1)
    multi = per_comp >= 2
    if not multi.any():
        return comps.astype(np.int32)
    # one watershed over the components that hold two or more markers; the rest stay as they are
    region = multi[comps]
    split = watershed(-dist, markers * region, mask=region, connectivity=2)
    out = comps.astype(np.int64)
    out[region] = split[region].astype(np.int64) + n
    return _sequential(out)


def _sequential(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels)
    lut = np.zeros(int(ids[-1]) + 1, np.int32)
    lut[ids[ids > 0]] = np.arange(1, (ids > 0).sum() + 1)
    return lut[labels]


def filter_sizes(labels: np.ndarray, min_area_px: int = 0,
                 max_area_px: int | None = None) -> np.ndarray:
    """Drop objects smaller than ``min_area_px`` or larger than ``max_area_px``; relabel 1..n."""
    labels = np.asarray(labels)
    areas = np.bincount(labels.ravel())
    keep = areas >= max(min_area_px, 1)
    if max_area_px is not None:
        keep &= areas <= max_area_px
    keep[0] = False
    lut = np.zeros(len(areas), np.int32)
    lut[keep] = np.arange(1, keep.sum() + 1)
    return lut[labels]


def instances_from_mask(mask: np.ndarray, prob: np.ndarray | None = None, cfg=None) -> np.ndarray:
    """Mask (and probability) to instance labels with the settings of an ``InstanceConfig``.

    Holes are filled, specks below ``min_area_px`` removed before splitting, touching beads split,
    and objects outside ``[min_area_px, max_area_px]`` dropped.
    """
    from .config import InstanceConfig

    cfg = cfg or InstanceConfig()
    mask = np.asarray(mask, bool)
    if cfg.fill_holes:
        mask = ndi.binary_fill_holes(mask)
    if cfg.min_area_px > 1:
        mask = remove_small_objects(mask, max_size=cfg.min_area_px - 1, connectivity=2)
    if cfg.split_touching:
        labels = split_touching(mask, prob, cfg.min_distance_px)
    else:
        labels = label_components(mask)[0]
    return filter_sizes(labels, cfg.min_area_px, cfg.max_area_px)


def bead_table(labels: np.ndarray, image: np.ndarray | None = None,
               prob: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-bead measurements: id, centroid x/y (px), area (px), equivalent diameter (px),
    mean grey intensity (0-1) and mean probability."""
    labels = np.asarray(labels)
    props = regionprops_table(labels, properties=("label", "centroid", "area",
                                                  "equivalent_diameter_area"))
    ids = props["label"]
    table = {
        "id": ids,
        "centroid_x": props["centroid-1"],
        "centroid_y": props["centroid-0"],
        "area_px": props["area"],
        "equivalent_diameter_px": props["equivalent_diameter_area"],
    }
    if image is not None:
        grey = image.mean(-1) if image.ndim == 3 else image
        table["mean_intensity"] = np.asarray(ndi.mean(grey, labels, ids)) if len(ids) else np.zeros(0)
    if prob is not None:
        table["mean_probability"] = np.asarray(ndi.mean(prob, labels, ids)) if len(ids) else np.zeros(0)
    return table
