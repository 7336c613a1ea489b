"""One image through a model: probabilities, mask, bead instances and the domain check.

One image: the network input (:func:`beadseg.core.normalization.model_input`: the model's
normalisation and channels, as in training) -> :func:`predict_maps`
(whole frame in one call, or tiles, see :mod:`beadseg.inference.tiling`) -> threshold ->
instances (:func:`beadseg.core.beads.segment_instances`: seeded at the centre head's peaks for
models that have one) -> domain check (:mod:`beadseg.core.domain`). Many images:
:mod:`beadseg.inference.runner`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from ..core.config import InstanceConfig, PredictConfig
from ..core.images import to_channels
from ..core.normalization import model_input
from .predictor import Predictor
from .tiling import predict_tiled


def _batch_size(cfg: PredictConfig, model: Predictor, tile_px: int) -> int:
    return cfg.batch_size or model.default_batch_size(tile_px)


def predict_maps(
    model: Predictor, image: np.ndarray, cfg: PredictConfig | None = None, normalized: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Bead probability (and, for a centre-head model, bead-centre map) of every pixel.

    Parameters
    ----------
    model : Predictor
    image : ndarray, ``H x W`` or ``H x W x C``, any dtype
        Made the network input here (:func:`~beadseg.core.normalization.model_input`: the
        model's normalisation and channels) unless ``normalized``.
    cfg : PredictConfig
        ``mode`` (auto: whole frame up to ``full_frame_max_mp``, else tiles), ``tile_size``
        (default: the model's engine's), ``overlap``, ``batch_size``, ``blend``.
    normalized : bool
        ``image`` is already the network input (:func:`~beadseg.core.normalization.model_input`)
        or the model's normalised float32 ``H x W x C`` (channels are then still adapted).

    Returns
    -------
    probabilities : ndarray of float32, ``H x W``
    centres : ndarray of float32, ``H x W``, or None
    """
    cfg = cfg or PredictConfig()
    if not normalized:
        image = model_input(image, model.normalization, model.in_channels)
    image = to_channels(image, model.in_channels)
    h, w = image.shape[:2]
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), np.float32)
    mode = cfg.mode
    if mode == "auto":
        mode = "full" if h * w / 1e6 <= cfg.full_frame_max_mp else "tiled"
    if mode == "full":
        out = model(chw[None])[0]
    else:
        align = model.align
        size = cfg.tile_size or model.default_tile_size
        tile = max(size - size % align, align)
        tile_px = min(tile, h + (-h) % align) * min(tile, w + (-w) % align)
        out = predict_tiled(model, chw, tile, cfg.overlap, align, _batch_size(cfg, model, tile_px), cfg.blend)
    return (out[0], out[1]) if out.ndim == 3 else (out, None)


def predict_probabilities(
    model: Predictor, image: np.ndarray, cfg: PredictConfig | None = None
) -> np.ndarray:
    """Bead probability of every pixel of an image (see :func:`predict_maps`): ``H x W``
    float32. ``image`` is ``H x W`` or ``H x W x C`` of any dtype."""
    return predict_maps(model, image, cfg)[0]


@dataclass
class Segmentation:
    """One image through the model: what it saw, what it output, the beads, the domain check."""

    image: np.ndarray  # the network input (model_input): H x W x model channels, float32
    probabilities: np.ndarray
    centres: np.ndarray | None
    labels: np.ndarray
    in_domain: bool
    domain_reason: str
    timings: dict[str, float]


def segment(
    model: Predictor,
    image: np.ndarray | str | os.PathLike,
    cfg: PredictConfig | None = None,
    threshold: float | None = None,
    instances: InstanceConfig | None = None,
    name: str | None = None,
) -> Segmentation:
    """Network input -> probabilities (and centres) -> mask -> instances -> domain check.

    ``image`` is an ``H x W`` or ``H x W x C`` array of any dtype, or an image file; it becomes
    the network input as in training (:func:`~beadseg.core.normalization.model_input`; ``name``
    is the image's name in its error messages).
    ``threshold`` and ``instances`` default to the model's (``instances.method`` auto: the
    centre head's peaks when the model has one, else the distance watershed).

    Raises
    ------
    InputError
        An image with no pixels, NaN or inf, a stack, or values the normalisation cannot
        scale (see :func:`~beadseg.core.normalization.model_input`).
    """
    t0 = time.perf_counter()
    norm = model_input(image, model.normalization, model.in_channels, name)
    prob, centres = predict_maps(model, norm, cfg, normalized=True)
    t1 = time.perf_counter()
    labels = _instances(model, prob, centres, threshold, instances)
    t2 = time.perf_counter()
    ok, why = _domain(model, norm, labels)
    t3 = time.perf_counter()
    timings = {"probabilities_s": t1 - t0, "instances_s": t2 - t1, "domain_s": t3 - t2}
    return Segmentation(norm, prob, centres, labels, ok, why, timings)


def _instances(
    model: Predictor,
    prob: np.ndarray,
    centres: np.ndarray | None,
    threshold: float | None,
    instances: InstanceConfig | None,
) -> np.ndarray:
    """Threshold (the model's unless given) -> instance labels (the model's settings unless
    given; seeded at the centre map's peaks when there is one)."""
    from ..core.beads import segment_instances  # scipy.ndimage: not for `beadseg merge`

    thr = model.threshold if threshold is None else threshold
    return segment_instances(prob, centres, instances or model.instances, thr)


def _domain(model: Predictor, norm: np.ndarray, labels: np.ndarray) -> tuple[bool, str]:
    """(in the model's training domain, why not) of one normalised image and its beads."""
    from ..core.domain import domain_check

    return domain_check(model.fingerprint, norm, labels)


def segment_image(
    model: Predictor,
    image: np.ndarray,
    cfg: PredictConfig | None = None,
    threshold: float | None = None,
    instances: InstanceConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Segment one image array: (probabilities, instance labels, timings in s).

    ``image`` is ``H x W`` (grey) or ``H x W x C``, of any dtype: it is normalised as the
    model was trained. ``threshold`` and ``instances`` default to the model's. See
    :func:`segment` for the centre map and the domain check.
    """
    s = segment(model, image, cfg, threshold, instances)
    return s.probabilities, s.labels, s.timings
