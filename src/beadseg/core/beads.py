"""The bead itself: splitting touching beads (peaks of a distance or centre map and a seeded
watershed), counting beads in a mask, and the single-bead area.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .filters import gaussian_exact, window_max
from .labels import EIGHT, component_areas, fill_holes, filter_sizes, label_components, relabel


def local_maxima(
    values: np.ndarray, min_distance_px: int, floor: float | None = None, mask: np.ndarray | None = None
) -> np.ndarray:
    """Pixels that equal the maximum of their ``(2 * min_distance_px + 1)``-px square window.

    Parameters
    ----------
    values : ndarray of float, ``H x W``
        The map to search (a distance map, bead evidence, ...).
    min_distance_px : int
        Half-width of the window: two peaks closer than this (chessboard distance) cannot both
        be maxima unless they are equal.
    floor : float, optional
        Keep only maxima with ``values >= floor``.
    mask : ndarray of bool, optional
        Keep only maxima inside the mask.

    Returns
    -------
    ndarray of bool, ``H x W``
        Every pixel of a flat maximum (plateau) is True; label the result to merge plateaus.

    Examples
    --------
    >>> v = np.array([[0, 1, 0, 0, 0, 2, 0]], float)
    >>> np.flatnonzero(local_maxima(v, 1))  # the flat 0 at index 3 is a (plateau) maximum too
    array([1, 3, 5])
    >>> np.flatnonzero(local_maxima(v, 1, floor=0.5))
    array([1, 5])
    """
    if min_distance_px < 0:
        raise ValueError(f"min_distance_px must be >= 0, got {min_distance_px}")
    values = np.asarray(values)
    # window_max: scipy's maximum_filter, 3-10x faster on these arrays (fastfilters)
    peaks = values == window_max(values, int(min_distance_px))
    if floor is not None:
        peaks &= values >= floor
    if mask is not None:
        peaks &= np.asarray(mask, bool)
    return peaks


def _markers(mask: np.ndarray, prob: np.ndarray | None, min_distance_px: int, components=None):
    """Components, smoothed distance map, markers and the number of markers per component.

    Markers are the :func:`local_maxima` of the smoothed distance map (plateau pixels merged
    into one marker). ``components``: the ``(labels, n)`` of :func:`label_components` of
    ``mask`` when the caller has them already.
    """
    comps, n = label_components(mask) if components is None else components
    if n == 0:
        return comps, 0, None, None, np.zeros(1, np.int64)
    # octagonal distance (mean of taxicab and chessboard): within a few % of Euclidean here and
    # ~10x faster than distance_transform_edt (measured on 512x512 bead masks)
    dist = (
        ndi.distance_transform_cdt(mask, "taxicab").astype(np.float32)
        + ndi.distance_transform_cdt(mask, "chessboard")
    ) / 2
    if prob is not None:
        dist *= 0.5 + np.asarray(prob, np.float32)
    # a little smoothing so the ridge of an elongated bead gives one marker, not several
    # (gaussian_exact: scipy's gaussian_filter bit for bit, 3x faster on 512-px tiles)
    dist = gaussian_exact(dist, 0.7, truncate=3.0) * mask
    peaks = local_maxima(dist, min_distance_px, mask=mask)
    markers, n_markers = ndi.label(peaks, structure=EIGHT)
    comp_of_marker = np.zeros(n_markers + 1, np.int64)
    comp_of_marker[markers[peaks]] = comps[peaks]  # a marker lies in exactly one component
    per_comp = np.bincount(comp_of_marker[1:], minlength=n + 1)
    return comps, n, dist, markers, per_comp


def count_beads(mask: np.ndarray, min_distance_px: int = 3, components=None) -> int:
    """Beads in a mask with touching beads counted separately: the number of watershed markers
    (at least one per component). Equals ``split_touching(mask).max()`` without the watershed.
    ``components``: ``label_components(mask)`` when the caller has it (one labelling less)."""
    _, n, _, _, per_comp = _markers(np.asarray(mask, bool), None, min_distance_px, components)
    return int(np.maximum(per_comp[1:], 1).sum()) if n else 0


def split_touching(mask: np.ndarray, prob: np.ndarray | None = None, min_distance_px: int = 3) -> np.ndarray:
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
    from skimage.segmentation import watershed  # ~60-100 ms to import: only when a clump is split

    region = multi[comps]
    split = watershed(-dist, markers * region, mask=region, connectivity=2)
    out = comps.astype(np.int64)
    out[region] = split[region].astype(np.int64) + n
    return relabel(out)[0]


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


#: Defaults per method of ``InstanceConfig.peak_sigma_px`` (Gaussian smoothing of the peak
#: map) and ``peak_distance_px`` (peak window half-width), chosen on exact-truth composites of
#: the training frames (benchmarks/tune_instances.py): the probability needs 0.7 px smoothing
#: and a 5x5 window to give one peak per flat top; the centre head's distance map is smooth
#: already and a 3x3 window keeps tight pairs apart (clumped beads touching at 0.75-0.9
#: diameters: F1 0.910 / count -10.7 % with 3x3, 0.875 / -16.9 % with 5x5, 0.901 / -13.3 %
#: smoothed at 0.5 px).
PEAK_SIGMA_PX = {"probability_peaks": 0.7, "centre_peaks": 0.0}


PEAK_DISTANCE_PX = {"probability_peaks": 2, "centre_peaks": 1}


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
    from skimage.segmentation import watershed  # ~60-100 ms to import: only when a clump is split

    split = watershed(-np.asarray(surface, np.float32), markers * region, mask=region, connectivity=2)
    out = comps.astype(np.int64)
    out[region] = split[region].astype(np.int64) + n
    return relabel(out)[0]


def instances_from_peaks(
    mask: np.ndarray,
    peak_map: np.ndarray,
    cfg=None,
    floor: float | None = None,
    sigma_px: float = 0.0,
    distance_px: int = 2,
) -> np.ndarray:
    """Beads of a mask, seeded at the peaks of a map (the probability, or a centre head's
    output), with the hole filling, splitting and size limits of an ``InstanceConfig``.

    ``peak_map`` is smoothed with ``sigma_px``; its :func:`local_maxima` within
    ``distance_px`` (and >= ``floor``) inside the mask are the bead centres, and
    :func:`split_by_markers` splits the components that hold several.
    """
    from .config import InstanceConfig

    cfg = cfg or InstanceConfig()
    mask = np.asarray(mask, bool)
    if cfg.fill_holes:
        mask = fill_holes(mask)
    surface = np.asarray(peak_map, np.float32)
    if sigma_px > 0:
        surface = ndi.gaussian_filter(surface, sigma_px, truncate=3.0)
    if cfg.split_touching:
        markers = ndi.label(local_maxima(surface, distance_px, floor, mask), structure=EIGHT)[0]
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
    prob: np.ndarray, centre: np.ndarray | None = None, cfg=None, threshold: float = 0.5
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
    threshold : float
        Probability above which a pixel is bead (the model's threshold).

    Returns
    -------
    ndarray of int32
        Labels 1..n (0 = background).

    Examples
    --------
    Two touching discs and a centre map with a peak in each are two beads:

    >>> yy, xx = np.mgrid[:20, :30]
    >>> d1, d2 = np.hypot(yy - 10, xx - 11), np.hypot(yy - 10, xx - 18)
    >>> prob = ((d1 <= 4) | (d2 <= 4)).astype(np.float32)
    >>> centre = np.maximum(np.exp(-(d1**2) / 4.5), np.exp(-(d2**2) / 4.5))
    >>> int(segment_instances(prob, centre).max())
    2
    """
    from .config import InstanceConfig

    cfg = cfg or InstanceConfig()
    method = resolve_method(cfg, centre is not None)
    mask = np.asarray(prob) > threshold
    if method == "distance":
        return instances_from_mask(mask, prob, cfg)
    sigma = PEAK_SIGMA_PX[method] if cfg.peak_sigma_px is None else cfg.peak_sigma_px
    dist = PEAK_DISTANCE_PX[method] if cfg.peak_distance_px is None else cfg.peak_distance_px
    if method == "probability_peaks":
        return instances_from_peaks(mask, prob, cfg, sigma_px=sigma, distance_px=dist)
    return instances_from_peaks(mask, centre, cfg, cfg.centre_threshold, sigma, dist)


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
    area = single_bead_area(masks)
    return [count_beads_in_mask(m, area) for m in masks]


def single_bead_area(masks: list[np.ndarray]) -> float:
    """The area of one bead: the median object area of the masks (most objects are single
    beads at every density of the dev set; clumps are a minority even at 160x). 0 without
    objects."""
    areas = component_areas(masks)
    return float(np.median(areas)) if len(areas) else 0.0
