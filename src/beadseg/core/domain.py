"""Is an image like the ones a model was trained on? The training-data fingerprint and its check.

At the end of training, the model's own outputs on its training images are summarised per
feature (:func:`image_features`, :func:`summarise_features`) and stored in the checkpoint
(``meta["fingerprint"]``). At prediction, :func:`domain_check` computes the same features of
each image from the same kind of outputs and flags the image when one falls clearly outside the
training range. Features are measured on the model's predictions, not on annotations, so
training and prediction measure them alike (a soft annotation covering 56 % of a tile and a
prediction covering 20 % of it would otherwise disagree for no fault of the image).

Features of one image (``None`` where undefined, e.g. no bead found):

``intensity_p50``, ``intensity_range``
    Median of the normalised grey image (what the network sees), and its 1st-99th percentile
    range over the median.
``contrast``
    ``1 - median(grey in beads) / median(grey in background)``.
``noise``
    Robust SD (1.4826 MAD) of the background's fine texture (grey minus its 2-px Gaussian
    blur), over the background level, in the central 512 x 512 px at full resolution.
``foreground_fraction``, ``bead_area_px``
    Share of bead pixels (only more than seen in training counts); median bead area. Compared
    on a log scale.
``bead_colour``
    Red minus blue of the beads, minus that of the background, over the background level
    (colour models only). On the dev set it alone separates the real tiles (-0.21 to -0.10:
    violet beads) from the synthetic 80x tiles (+0.006 to +0.088).

A feature is out of range when it lies outside ``[min - margin, max + margin]`` of the training
values, ``margin = 0.25 (max - min) + tolerance`` (:data:`TOLERANCE`, in the feature's units or
in log units). Measured with the model shipped before the centre head: no tile of any of the 8
real dev frames is flagged against a fingerprint of the other 7 frames, and all 20 synthetic
80x tiles are flagged against the real frames' fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .filters import gaussian_blur
from .images import to_grey

FEATURES = (
    "intensity_p50",
    "intensity_range",
    "contrast",
    "noise",
    "foreground_fraction",
    "bead_area_px",
    "bead_colour",
)
#: Features compared as logarithms (ratios matter, not differences).
LOG_FEATURES = ("foreground_fraction", "bead_area_px")
#: Features checked only against the training maximum: fewer beads than ever seen is no
#: sign of another kind of image (the sparsest dev frame has 0.04 % foreground).
UPPER_ONLY = ("foreground_fraction",)
#: Absolute slack added to each feature's margin (log10 units for LOG_FEATURES).
TOLERANCE = {
    "intensity_p50": 0.05,
    "intensity_range": 0.05,
    "contrast": 0.03,
    "noise": 0.005,
    "foreground_fraction": 0.3,
    "bead_area_px": 0.1,
    "bead_colour": 0.02,
}
PERCENTILES = (0, 5, 25, 50, 75, 95, 100)
SAMPLE_PX = 65536  # statistics from a regular subsample (medians and percentiles are robust)


NOISE_WINDOW_PX = 512


def _central(shape: tuple[int, ...], size: int) -> tuple[slice, slice]:
    """The central ``size x size`` window (or the whole image when smaller)."""
    y0, x0 = max((shape[0] - size) // 2, 0), max((shape[1] - size) // 2, 0)
    return slice(y0, y0 + size), slice(x0, x0 + size)


def _sampled(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    step = max(int(np.sqrt(h * w / SAMPLE_PX)), 1)
    return arr[::step, ::step]


@dataclass(frozen=True)
class DomainSample:
    """The pixels of a normalised image that :func:`image_features` reads: a regular subsample
    and the central :data:`NOISE_WINDOW_PX` window at full resolution. What predict keeps of a
    frame for the check while its beads are found (a 4K frame: 0.3 MB instead of 100 MB)."""

    sampled: np.ndarray  #: ``image[::step, ::step]`` (``H' x W' x C``)
    window: np.ndarray  #: the central window (``h x w x C``)
    shape: tuple[int, int]  #: H and W of the image


def domain_sample(image: np.ndarray, dtype=None) -> DomainSample:
    """What :func:`image_features` reads of ``image`` (``H x W`` or ``H x W x C``), copied, in
    ``dtype`` (default: the image's); the features of the sample equal those of the image in
    that dtype."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    dtype = dtype or image.dtype
    win = _central(image.shape, NOISE_WINDOW_PX)
    sampled, window = _sampled(image).astype(dtype), image[win].astype(dtype)
    return DomainSample(sampled, window, image.shape[:2])


def image_features(image: np.ndarray | DomainSample, labels: np.ndarray) -> dict[str, float | None]:
    """The fingerprint features of one image.

    Parameters
    ----------
    image : ndarray, H x W x C, or DomainSample
        The image as the model saw it (normalised), or its :func:`domain_sample`.
    labels : ndarray of int, H x W
        The beads found in it (0 = background).

    Returns
    -------
    dict
        One value per name of :data:`FEATURES` (None where undefined).
    """
    if not isinstance(image, DomainSample):  # views: no full-size copy of a 4K frame
        image = np.asarray(image)
        image = image[..., None] if image.ndim == 2 else image
        image = DomainSample(_sampled(image), image[_central(image.shape, NOISE_WINDOW_PX)], image.shape[:2])
    labels = np.asarray(labels)
    beads = labels > 0
    # statistics from a subsample: a 4K frame in ms
    img, b = image.sampled.astype(np.float32), _sampled(beads)
    g = to_grey(img)
    p01, p50, p99 = np.percentile(g, [1, 50, 99])
    out: dict[str, float | None] = dict.fromkeys(FEATURES)
    out["intensity_p50"] = float(p50)
    out["intensity_range"] = float((p99 - p01) / p50) if p50 > 0 else None
    out["foreground_fraction"] = float(np.count_nonzero(beads) / beads.size)
    if not (~b).any():
        return out
    bg = float(np.median(g[~b]))
    # texture at full resolution (a subsample would change its scale): the central window
    win = _central(beads.shape, NOISE_WINDOW_PX)
    grey = to_grey(image.window)
    fine = grey - gaussian_blur(grey, 2.0)
    resid = fine[~beads[win]]
    if bg > 0 and resid.size:
        out["noise"] = float(1.4826 * np.median(np.abs(resid - np.median(resid))) / bg)
    if not b.any() or bg <= 0:
        return out
    out["contrast"] = float(1 - np.median(g[b]) / bg)
    areas = np.bincount(labels[beads])[1:]  # object pixels only: a few % of a frame
    out["bead_area_px"] = float(np.median(areas[areas > 0]))
    if img.shape[-1] >= 3:
        rb = img[..., 0] - img[..., 2]
        out["bead_colour"] = float((np.median(rb[b]) - np.median(rb[~b])) / bg)
    return out


def summarise_features(rows: list[dict]) -> dict:
    """The fingerprint of a set of images: per feature, the percentiles ``p0..p100`` of its
    defined values (see :data:`PERCENTILES`) and their number ``n``."""
    features = {}
    for name in FEATURES:
        v = np.array([r[name] for r in rows if r.get(name) is not None], np.float64)
        if len(v):
            features[name] = {f"p{q}": float(np.percentile(v, q)) for q in PERCENTILES}
            features[name]["n"] = int(len(v))
    return {"version": 1, "n_images": len(rows), "features": features}


def _scaled(name: str, value: float) -> float:
    return float(np.log10(max(value, 1e-6))) if name in LOG_FEATURES else float(value)


def out_of_range(fingerprint: dict, features: dict) -> list[str]:
    """Descriptions of the features outside the fingerprint's range, furthest first."""
    found = []
    for name, stats in fingerprint.get("features", {}).items():
        value = features.get(name)
        if value is None or stats.get("n", 0) < 3:
            continue
        lo, hi = _scaled(name, stats["p0"]), _scaled(name, stats["p100"])
        margin = 0.25 * (hi - lo) + TOLERANCE.get(name, 0.0)
        v = _scaled(name, value)
        excess = v - hi - margin if name in UPPER_ONLY else max(lo - margin - v, v - hi - margin)
        if excess > 0:
            found.append(
                (
                    excess / max(margin, 1e-9),
                    f"{name} {value:.3g} outside the training range {stats['p0']:.3g}..{stats['p100']:.3g}",
                )
            )
    return [text for _, text in sorted(found, reverse=True)]


def domain_check(
    fingerprint: dict | None, image: np.ndarray | DomainSample, labels: np.ndarray
) -> tuple[bool, str]:
    """Whether an image looks like the model's training data.

    Parameters
    ----------
    fingerprint : dict or None
        A checkpoint's ``meta["fingerprint"]`` (:func:`summarise_features`); None: nothing to
        compare with, the image counts as in domain.
    image : ndarray, H x W x C, or DomainSample
        The normalised image the model saw, or its :func:`domain_sample`.
    labels : ndarray of int
        The beads the model found in it.

    Returns
    -------
    in_domain : bool
    reason : str
        Empty when in domain, else the features outside the training range, furthest first.
    """
    if not fingerprint:
        return True, ""
    bad = out_of_range(fingerprint, image_features(image, labels))
    return (not bad), "; ".join(bad)
