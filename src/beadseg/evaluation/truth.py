"""Where an image's true beads come from: exact centres (``centres/``), instance labels
(``labels/``), or the mask itself (split into beads), and which of them a score used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.beads import instances_from_mask
from ..core.config import InstanceConfig
from ..core.files import Pair
from ..core.masks import read_centres, read_labels


def _labels_file(data: Path, pair: Pair) -> Path | None:
    """The instance-label file of ``pair`` in ``data/labels/`` (None: there is none)."""
    for ext in (".tif", ".tiff", ".png"):
        p = Path(data) / "labels" / f"{pair.name}{ext}"
        if p.is_file():
            return p
    return None


def truth_labels(data: Path, pair: Pair, mask: np.ndarray, inst: InstanceConfig) -> np.ndarray:
    """Instance labels of the truth: a labels/ folder when the data has one (synthetic sets),
    else the mask split into beads with the instance settings of the predictions (the same
    splitting and size limits, so both sides are counted alike), except that its holes stay
    open.

    A hole in an annotation is the gap between beads it outlines one by one, not the hollow of
    a ring-shaped prediction: filled, it joins a pack into one smooth object whose distance map
    no longer dips between the beads (a 5 x 5 grid of touching discs was one bead; on
    exact-truth masks the truth then fell 18 % short at 1000 beads per 512-px tile and 29 % at
    a monolayer, against 8 % and 12 % with the holes open; the dev set's real masks hold 147
    hole pixels in all and change by 16 beads of 14,400).
    """
    p = _labels_file(data, pair)
    if p is not None:
        return read_labels(p)
    return instances_from_mask(mask, None, inst.model_copy(update={"fill_holes": False}))


def truth_source(data: Path, pair: Pair, soft_mask: bool) -> str:
    """Where :func:`truth_labels` takes an image's beads from (``labels``, ``soft mask`` or
    ``mask``; ``centres`` are told apart by :func:`evaluate_image`)."""
    if _labels_file(data, pair) is not None:
        return "labels"
    return "soft mask" if soft_mask else "mask"


def truth_centres(data: Path, pair: Pair) -> np.ndarray | None:
    """The exact bead centres of an image (``centres/NAME.csv`` of exact-truth data), or None."""
    p = Path(data) / "centres" / f"{pair.name}.csv"
    return read_centres(p) if p.is_file() else None
