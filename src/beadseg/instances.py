"""From a mask or probability map to separate beads (instance labels) and per-bead measurements.

Touching beads are split by a marker-controlled watershed (scikit-image): markers are local
maxima of the distance transform (optionally weighted by the probability) at least
``min_distance_px`` apart, so a touching pair of ~6-px beads becomes two objects.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

EIGHT = np.ones((3, 3), bool)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a binary mask."""
    lab, n = ndi.label(np.asarray(mask, bool), structure=EIGHT)
    return lab, int(n)


def _markers(mask: np.ndarray, prob: np.ndarray | None, min_distance_px: int):
    """Components, smoothed distance map, markers and the number of markers per component.

    Markers are the maxima of the smoothed distance map within a ``2 * min_distance_px + 1``
    window, plateau pixels merged into one marker.
    """
    comps, n = label_components(mask)
    if n == 0:
        return comps, 0, None, None, np.zeros(1, np.int64)
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
    markers, n_markers = ndi.label(peaks, structure=EIGHT)
    comp_of_marker = np.zeros(n_markers + 1, np.int64)
    comp_of_marker[markers[peaks]] = comps[peaks]  # a marker lies in exactly one component
    per_comp = np.bincount(comp_of_marker[1:], minlength=n + 1)
    return comps, n, dist, markers, per_comp


def count_beads(mask: np.ndarray, min_distance_px: int = 3) -> int:
    """Beads in a mask with touching beads counted separately: the number of watershed markers
    (at least one per component). Equals ``split_touching(mask).max()`` without the watershed."""
    _, n, _, _, per_comp = _markers(np.asarray(mask, bool), None, min_distance_px)
    return int(np.maximum(per_comp[1:], 1).sum()) if n else 0


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
    Only the pixels of components with two or more markers (see :func:`count_beads`) go through
    ``skimage.segmentation.watershed``: most beads are single.
    """
    mask = np.asarray(mask, bool)
    comps, n, dist, markers, per_comp = _markers(mask, prob, min_distance_px)
    multi = per_comp >= 2
    if n == 0 or not multi.any():
        return comps.astype(np.int32)
    # one watershed over the components that hold two or more markers; the rest stay as they are
    region = multi[comps]
    split = watershed(-dist, markers * region, mask=region, connectivity=2)
    out = comps.astype(np.int64)
    out[region] = split[region].astype(np.int64) + n
    return _sequential(out)


def _sequential(labels: np.ndarray) -> np.ndarray:
    """Renumber ids 1..n in order (bincount: several times faster than np.unique on 4K)."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.zeros(len(present), np.int32)
    lut[present] = np.arange(1, present.sum() + 1)
    return lut[labels]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes: background regions (4-connected) that do not touch the image border.

    Same result as ``scipy.ndimage.binary_fill_holes`` (tested); one labelling pass instead of
    an iterative dilation, ~5x faster on a 4K mask.
    """
    mask = np.asarray(mask, bool)
    bg, n = ndi.label(~mask)
    if n == 0:
        return mask.copy()
    outside = np.zeros(n + 1, bool)
    outside[np.concatenate([bg[0], bg[-1], bg[:, 0], bg[:, -1]])] = True
    outside[0] = True  # label 0 is the mask itself
    return mask | ~outside[bg]


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

    Holes are filled, touching beads split, and objects outside ``[min_area_px, max_area_px]``
    dropped.
    """
    from .config import InstanceConfig

    cfg = cfg or InstanceConfig()
    mask = np.asarray(mask, bool)
    if cfg.fill_holes:
        mask = fill_holes(mask)
    if cfg.split_touching:
        labels = split_touching(mask, prob, cfg.min_distance_px)
    else:
        labels = label_components(mask)[0]
    return filter_sizes(labels, cfg.min_area_px, cfg.max_area_px)


def bead_table(labels: np.ndarray, image: np.ndarray | None = None,
               prob: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-bead measurements: id, centroid x/y (px), area (px), equivalent diameter (px),
    mean grey intensity (0-1) and mean probability. ``image`` may be H x W x C or grey H x W.

    Computed with weighted ``np.bincount`` over the label image: the same numbers as
    ``skimage.measure.regionprops_table`` (tested) and ~15x faster on a 4K frame with 12,000
    beads (0.06 s vs 0.87 s here), which matters because predict does it for every frame.
    """
    labels = np.asarray(labels)
    flat = labels.ravel()
    idx = np.flatnonzero(flat)  # only object pixels take part: a few % of a frame
    ids = flat[idx]
    n = int(ids.max(initial=0))
    area = np.bincount(ids, minlength=n + 1)
    present = np.flatnonzero(area[1:]) + 1
    a = area[present].astype(np.float64)
    rows, cols = np.divmod(idx, labels.shape[1])

    def mean_of(values: np.ndarray) -> np.ndarray:
        return np.bincount(ids, weights=values, minlength=n + 1)[present] / a

    table = {
        "id": present,
        "centroid_x": mean_of(cols.astype(np.float64)),
        "centroid_y": mean_of(rows.astype(np.float64)),
        "area_px": area[present],
        "equivalent_diameter_px": np.sqrt(4 * a / np.pi),
    }
    if image is not None:
        grey = image.mean(-1) if image.ndim == 3 else image
        table["mean_intensity"] = mean_of(grey.ravel()[idx].astype(np.float64))
    if prob is not None:
        table["mean_probability"] = mean_of(np.asarray(prob).ravel()[idx].astype(np.float64))
    return table


# ----------------------------------------------------------------------------- seeded by peaks


def peak_markers(
    surface: np.ndarray, mask: np.ndarray, distance_px: int = 2, floor: float | None = None
) -> tuple[np.ndarray, int]:
    """Labelled local maxima of ``surface`` inside ``mask``: pixels equal to the maximum of
    their ``(2 * distance_px + 1)`` square window (and >= ``floor`` when given), 8-connected
    plateau pixels forming one marker.

    Returns
    -------
    markers : ndarray of int32
    n : int
    """
    surface = np.asarray(surface, np.float32)
    peaks = (surface == ndi.maximum_filter(surface, size=2 * distance_px + 1)) & np.asarray(mask, bool)
    if floor is not None:
        peaks &= surface >= floor
    markers, n = ndi.label(peaks, structure=EIGHT)
    return markers.astype(np.int32), int(n)


def split_by_markers(mask: np.ndarray, surface: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """Instances of ``mask``: a component holding two or more markers is split by a watershed
    of ``-surface`` from them; a component with one marker or none stays whole (a bead the
    markers missed is still counted). Labels numbered 1..n."""
    mask = np.asarray(mask, bool)
    comps, n = label_components(mask)
    if n == 0:
        return comps.astype(np.int32)
    on = markers > 0
    comp_of_marker = np.zeros(int(markers.max()) + 1, np.int64)
    comp_of_marker[markers[on]] = comps[on]
    per_comp = np.bincount(comp_of_marker[1:], minlength=n + 1)
    multi = per_comp >= 2
    multi[0] = False
    if not multi.any():
        return comps.astype(np.int32)
    # only the components with several markers go through the watershed: most beads are single
    region = multi[comps]
    split = watershed(-np.asarray(surface, np.float32), markers * region, mask=region, connectivity=2)
    out = comps.astype(np.int64)
    out[region] = split[region].astype(np.int64) + n
    return _sequential(out)


def instances_from_peaks(
    mask: np.ndarray, peak_map: np.ndarray, cfg=None, floor: float | None = None
) -> np.ndarray:
    """Beads of a mask, seeded at the peaks of a map (the smoothed probability, or a centre
    head's output), with the hole filling and size limits of an ``InstanceConfig``.

    ``peak_map`` is smoothed with ``cfg.peak_sigma_px``; its local maxima within
    ``cfg.peak_distance_px`` (and >= ``floor``) are the bead centres.
    """
    from .config import InstanceConfig

    cfg = cfg or InstanceConfig()
    mask = np.asarray(mask, bool)
    if cfg.fill_holes:
        mask = fill_holes(mask)
    surface = np.asarray(peak_map, np.float32)
    if cfg.peak_sigma_px > 0:
        surface = ndi.gaussian_filter(surface, cfg.peak_sigma_px, truncate=3.0)
    if cfg.split_touching:
        markers, _ = peak_markers(surface, mask, cfg.peak_distance_px, floor)
        labels = split_by_markers(mask, surface, markers)
    else:
        labels = label_components(mask)[0]
    return filter_sizes(labels, cfg.min_area_px, cfg.max_area_px)


def resolve_method(cfg, has_centre_head: bool) -> str:
    """The instance method an ``InstanceConfig`` asks for, given what the model outputs:
    ``auto`` is ``centre_peaks`` for a model with a centre head, else ``distance``.

    Raises
    ------
    InputError
        ``centre_peaks`` asked of a model without a centre head.
    """
    from .errors import InputError

    method = cfg.method
    if method == "auto":
        return "centre_peaks" if has_centre_head else "distance"
    if method == "centre_peaks" and not has_centre_head:
        raise InputError(
            "instances.method = centre_peaks needs a model trained with model.centre_head=true; "
            "use distance or probability_peaks with this model"
        )
    return method


def segment_instances(
    prob: np.ndarray, centre: np.ndarray | None = None, cfg=None, threshold: float | None = None
) -> np.ndarray:
    """Probability (and centre map) -> instance labels, by the method of an ``InstanceConfig``.

    Parameters
    ----------
    prob : ndarray of float, H x W
        Foreground probability.
    centre : ndarray of float, H x W, optional
        The centre head's output (sigmoid), for models that have one.
    cfg : InstanceConfig, optional
        ``method`` picks the seeds of the watershed (see :func:`resolve_method`).
    threshold : float, optional
        Foreground threshold; default ``cfg.threshold``.

    Returns
    -------
    ndarray of int32
        Labels 1..n (0 = background).

    Examples
    --------
    Two touching discs and a centre map with a peak in each are two beads:

    >>> import numpy as np
    >>> yy, xx = np.mgrid[:20, :30]
    >>> d1, d2 = np.hypot(yy - 10, xx - 11), np.hypot(yy - 10, xx - 18)
    >>> prob = ((d1 <= 4) | (d2 <= 4)).astype(np.float32)
    >>> centre = np.maximum(np.exp(-d1**2 / 4.5), np.exp(-d2**2 / 4.5))
    >>> int(segment_instances(prob, centre).max())
    2
    """
    from .config import InstanceConfig

    cfg = cfg or InstanceConfig()
    thr = cfg.threshold if threshold is None else threshold
    method = resolve_method(cfg, centre is not None)
    mask = np.asarray(prob) > thr
    if method == "distance":
        return instances_from_mask(mask, prob, cfg)
    if method == "probability_peaks":
        return instances_from_peaks(mask, prob, cfg)
    return instances_from_peaks(mask, centre, cfg, floor=cfg.centre_threshold)


# ----------------------------------------------------------------------------- counts of annotations


def count_beads_in_mask(mask: np.ndarray, single_area_px: float, min_distance_px: int = 2) -> int:
    """Beads in an annotated mask whose clumps may be outlined as one blob.

    Each object counts ``max(markers, round(area / single_area_px), 1)``: the distance-map
    markers of :func:`count_beads` see touching beads whose outline still shows them, the
    area sees smooth blobs drawn around a clump. Measured on the masks of exact-truth
    composites (4 densities, beads touching at 0.75-1.0 diameters): total count within
    -1.2 % to 0 % of the truth, and within 0 % to +2.6 % when the masks are first closed
    (2 x 3x3) into smooth blobs; objects alone (connected components) count 15-55 % low.
    """
    comps, n, _, _, per_comp = _markers(np.asarray(mask, bool), None, min_distance_px)
    if n == 0:
        return 0
    areas = np.bincount(comps.ravel(), minlength=n + 1)[1:]
    by_area = np.round(areas / max(float(single_area_px), 1.0))
    return int(np.maximum(np.maximum(per_comp[1:], by_area), 1).sum())


def count_labelled_beads(masks: list[np.ndarray]) -> list[int]:
    """Beads per tile of a labelled set (:func:`count_beads_in_mask`), the single-bead area
    being the median object area over all its masks (most objects are single beads)."""
    from .data.targets import single_bead_area

    area = single_bead_area(masks)
    return [count_beads_in_mask(m, area) for m in masks]
