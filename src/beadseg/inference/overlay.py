"""Overlays of bead outlines on the image, written by predict as indexed PNGs."""

from __future__ import annotations

import numpy as np

OUTLINE_INDEX = 255
#: grey ramp in 0-254, outlines (index 255) yellow
OVERLAY_PALETTE = np.array([(i, i, i) for i in range(255)] + [(255, 230, 0)], np.uint8)


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour of another label.

    ``skimage.segmentation.find_boundaries(labels, mode="inner")`` (tested equal), with array
    shifts instead of morphology: ~4x faster on a 4K frame.
    """
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, bool)
    dv = lab[1:] != lab[:-1]
    dh = lab[:, 1:] != lab[:, :-1]
    edge[1:] |= dv
    edge[:-1] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    return edge & (lab > 0)


def overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Palette indices of an overlay: the grey image in 0-254, bead outlines 255.

    Parameters
    ----------
    image : ndarray of float in [0, 1], ``H x W x C`` or grey ``H x W``
    labels : ndarray of int, ``H x W``

    Returns
    -------
    ndarray of uint8, ``H x W``
        Write it with :data:`OVERLAY_PALETTE` as an indexed PNG (far quicker than RGB).
    """
    grey = image.mean(-1) if image.ndim == 3 else image
    out = np.round(np.clip(grey, 0, 1) * 254).astype(np.uint8)
    out[inner_boundaries(labels)] = OUTLINE_INDEX
    return out
