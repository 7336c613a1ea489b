"""Mask-to-image registration: find and undo masks that sit a few pixels off their beads."""

from __future__ import annotations

import numpy as np


def shift_mask(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift a 2-D array by (dy, dx) pixels; pixels shifted in are zero (background)."""
    out = np.zeros_like(mask)
    h, w = mask.shape[:2]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src = mask[max(-dy, 0): h - max(dy, 0), max(-dx, 0): w - max(dx, 0)]
    out[max(dy, 0): h - max(-dy, 0), max(dx, 0): w - max(-dx, 0)] = src
    return out
