"""Input normalisation: any image (any dtype, grey or colour) -> the float32 values a model sees.

A model is trained on normalised images and must see the same normalisation at inference; the
method and its parameters are stored in the checkpoint (``meta["normalization"]``, see
:func:`normalization_record`), so a checkpoint always reproduces its own input scaling.

Methods
-------
``background`` (default)
    Transmission relative to the image's own background level, per channel:
    ``y = level + gain * (x / b_c - 1)`` with ``b_c`` the background of channel ``c`` (the mode
    of the grey histogram, then the per-channel median of the pixels at that mode). A bead that
    blocks 25 % of the light has the same value in an 8-bit PNG, a 12-bit camera frame saved
    as 16-bit, a float export, under a dimmer lamp or another white balance.
``percentile``
    ``(x - p_low) / (p_high - p_low)`` over all channels (csbdeep / StarDist's
    ``normalize(x, 1, 99.8)``).
``dtype_max``
    Integers divided by their dtype's maximum, floats in [0, 1] kept, others min-max scaled
    (:func:`beadseg.core.images.to_unit_float`). What checkpoints without a record were trained with.

Why ``background`` is the default (measured on the 59 real dev tiles, grey = channel mean):
with p1/p99.8 the median bead lands anywhere from -1.33 (sparse tiles: p1 falls in the
background noise) to +0.57 and the background from 0.44 to 0.81, because both percentiles move
with bead density; relative to the background the median bead is 0.66-0.93 of it (0.70-0.85 in
all but 3 tiles) at every density from 0.1 % to 16 % foreground. The mode, not the median, is
the background estimate: on the synthetic 80x tiles (56 % foreground) the median falls inside
the beads (bead/median 0.91 vs bead/background 0.80) while the mode stays on the background.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import InputError
from .images import as_hwc, canonical_image, read_raw_image, to_channels, to_grey, to_unit_float

METHODS = ("background", "percentile", "dtype_max")

#: Parameters of each method, stored with the method in a checkpoint.
DEFAULTS: dict[str, dict] = {
    "background": {"level": 0.5, "gain": 1.0, "bins": 256, "sample_px": 262144},
    "percentile": {"low": 1.0, "high": 99.8, "sample_px": 262144},
    "dtype_max": {},
}

#: What a checkpoint without a ``normalization`` record was trained with.
LEGACY = {"method": "dtype_max"}


def normalization_record(method: str = "background", **params) -> dict:
    """The ``{"method": ..., **parameters}`` dict stored in a checkpoint's meta.

    Raises
    ------
    ValueError
        Unknown method or parameter.
    """
    if method not in METHODS:
        raise ValueError(f"normalization {method!r} is not one of {', '.join(METHODS)}")
    unknown = set(params) - set(DEFAULTS[method])
    if unknown:
        raise ValueError(f"normalization {method!r} has no parameter {sorted(unknown)[0]!r}")
    return {"method": method, **DEFAULTS[method], **params}


def _sample(image: np.ndarray, sample_px: int) -> np.ndarray:
    """A regular subsample of about ``sample_px`` pixels (statistics of a 4K frame in ms)."""
    h, w = image.shape[:2]
    step = max(int(np.sqrt(h * w / max(sample_px, 1))), 1)
    return image[::step, ::step].astype(np.float64)


def _exponent(x: np.ndarray) -> int:
    """A power of two that brings float values far from 1 (1e-300, 1e300) near 1; 0 otherwise.
    Scaling by a power of two is exact, so statistics of the scaled values are exactly the
    scaled statistics."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0 or 2.0**-64 <= top <= 2.0**64:
        return 0
    return int(np.frexp(top)[1])


#: Grey values are compared as shares of their 0.5-99.5 percentile range on this grid
#: (:func:`background_level`): far finer than its bins, far coarser than float32 rounding.
RANGE_GRID = 65536


def background_level(image: np.ndarray, bins: int = 256, sample_px: int = 262144) -> np.ndarray:
    """Background intensity of each channel of an ``H x W x C`` image, in its own units.

    The mode of the grey (channel-mean) histogram between the 0.5th and 99.5th percentiles,
    smoothed over 3 bins; then, per channel, the median of the pixels whose grey value lies
    within 1/32 of that range around the mode (both compared on a grid of 1/``RANGE_GRID`` of
    the range). Scaling the image scales the result exactly, the float32 rounding of a scaled
    copy (uint8 / 255) included.

    Returns
    -------
    ndarray of float64, shape (C,)
    """
    x = _sample(as_hwc(image), sample_px)
    k = _exponent(x)
    if k:
        x = np.ldexp(x, -k)
    grey = to_grey(x, np.float64)
    lo, hi = np.percentile(grey, [0.5, 99.5])
    if not hi > lo:  # (nearly) constant image
        return np.ldexp(np.median(x.reshape(-1, x.shape[-1]), axis=0), k)
    # a 1-D histogram, zero outside (not an image: the filters of core/filters.py do not apply;
    # the exported graph repeats it, see integrations/export/graph_normalization.py)
    from scipy.ndimage import gaussian_filter1d

    # grey as a share of [lo, hi] on a grid of 1 / RANGE_GRID: the same image in uint8 and as
    # float32 / 255 (rounded) then gives the same bins and the same pixels near the mode; a
    # grey value exactly 1/32 of the range from the mode (common in integer images) otherwise
    # fell in or out by the last bit (1 real dev tile of 79: a level 2.7 % apart)
    g = np.rint((grey - lo) / (hi - lo) * RANGE_GRID) / RANGE_GRID
    hist = np.histogram(g, bins=bins, range=(0.0, 1.0))[0]
    j = int(np.argmax(gaussian_filter1d(hist.astype(np.float64), 3.0, mode="constant")))
    near = np.abs(g - (j + 0.5) / bins) <= 1 / 32
    return np.ldexp(np.median(x[near], axis=0), k)


def _float32_ok(arr: np.ndarray, *levels: float) -> bool:
    """Whether ``arr`` scaled by ``levels`` stays well inside float32 (always for integers)."""
    if arr.dtype.kind != "f":
        return True
    return arr.dtype.itemsize <= 4 and all(v == 0 or 1e-30 <= abs(v) <= 1e30 for v in levels)


def _finite(y: np.ndarray, arr: np.ndarray, name: str, level) -> np.ndarray:
    """``y`` when every value is finite (only float images can overflow float32)."""
    if arr.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InputError(
            f"{name} has pixels more than 1e38 times its level of {level:.3g}, beyond float32; give "
            "intensities of one scale (no hot pixels far above the rest)"
        )
    return y


def normalize_image(image: np.ndarray, record: dict | None = None, name: str = "image") -> np.ndarray:
    """Normalise an image for a model: float32 ``H x W x C``.

    Parameters
    ----------
    image : ndarray
        ``H x W`` or ``H x W x C``, any integer or float dtype (bool too).
    record : dict, optional
        A :func:`normalization_record` (a checkpoint's ``meta["normalization"]``); None means
        ``background`` with its default parameters.
    name : str
        Used in error messages (the file name).

    Raises
    ------
    InputError
        Bad shape, non-finite values, or (``background``) a background level <= 0.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((32, 32), 100, np.uint8); img[10:14, 10:14] = 75
    >>> y = normalize_image(img)
    >>> float(y[0, 0, 0]), float(y[11, 11, 0])
    (0.5, 0.25)
    >>> bool(np.allclose(normalize_image(img.astype(np.uint16) * 16), y))
    True
    """
    rec = normalization_record("background") if record is None else record
    arr = canonical_image(image, name)
    method = rec.get("method")
    if method == "dtype_max":
        return to_unit_float(arr)
    if method not in METHODS:
        raise InputError(
            f"normalization {method!r} of this model is not one of {', '.join(METHODS)}; the model comes "
            "from a newer beadseg: update beadseg, or train it again"
        )
    if method == "percentile":
        x = _sample(arr, rec["sample_px"])
        lo, hi = np.percentile(x, [rec["low"], rec["high"]])
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused by _finite
            if _float32_ok(arr, lo, hi - lo):
                scale = 1.0 / (hi - lo) if hi > lo else 0.0
                y = (arr.astype(np.float32) - np.float32(lo)) * np.float32(scale)
            else:  # float64: a float image of 1e-40 or 1e300 is normalised, not turned into NaN
                y = (arr.astype(np.float64) - lo) / (hi - lo) if hi > lo else np.zeros(arr.shape)
            y = y.astype(np.float32, copy=False)
        return _finite(y, arr, name, hi)
    bg = background_level(arr, rec["bins"], rec["sample_px"])
    if np.all(bg == 0) and not np.any(arr):
        return np.full(arr.shape, rec["level"], np.float32)  # a black image: nothing to see
    if np.any(bg <= 0):
        raise InputError(
            f"{name} has a background level <= 0 ({', '.join(f'{b:.3g}' for b in bg)}); "
            "background normalisation needs a brightfield intensity image (no offset "
            "subtraction), or train with data.normalization=percentile"
        )
    offset = rec["level"] - rec["gain"]
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused by _finite
        if _float32_ok(arr, *bg):
            gain = (rec["gain"] / bg).astype(np.float32)
            y = arr.astype(np.float32) * gain + np.float32(offset)
        else:  # float64, dividing (1 / a background of 1e-320 is inf)
            y = (arr.astype(np.float64) / bg * rec["gain"] + offset).astype(np.float32)
    return _finite(y, arr, name, float(bg.max()))


def model_input(
    image: np.ndarray | str | os.PathLike,
    record: dict | None,
    channels: int,
    name: str | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """The network input of an image: float32 ``H x W x channels``.

    The one path from an image to a network - training (:func:`beadseg.data.dataset.load_samples`),
    prediction (:func:`beadseg.inference.segment`, ``beadseg predict``), evaluation and the napari
    widget all call it; the bioimage.io export computes the same inside its graph:

    file -> canonical array (:func:`beadseg.core.images.read_raw_image`; an array:
    :func:`beadseg.core.images.canonical_image`) -> the model's normalisation
    (:func:`normalize_image` with the record stored in the checkpoint and the ONNX file) -> the
    model's channels (:func:`beadseg.core.images.to_channels`: grey repeated, RGB averaged).

    Parameters
    ----------
    image : ndarray or path
        An image file, or an ``H x W`` / ``H x W x C`` array of any integer or float dtype.
    record : dict or None
        The model's :func:`normalization_record` (``model.normalization``); None: the default.
    channels : int
        The model's input channels (1 or 3).
    name : str, optional
        For error messages; default: the file's path, or "image".
    max_pixels : int, optional
        Pixel limit of a file (:func:`beadseg.core.images.max_image_pixels`).

    Raises
    ------
    InputError
        Unreadable file, no pixels, a stack, NaN or inf, an image the normalisation cannot scale,
        or a channel count the model cannot take.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((32, 32), 100, np.uint8); img[10:14, 10:14] = 75
    >>> x = model_input(img, None, 3)
    >>> x.shape, x.dtype, float(x[11, 11, 2])
    ((32, 32, 3), dtype('float32'), 0.25)
    """
    if isinstance(image, (str, os.PathLike)):
        name = name or str(image)
        image = read_raw_image(Path(image), max_pixels)
    name = name or "image"
    return to_channels(normalize_image(image, record, name), channels, name)
