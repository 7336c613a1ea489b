"""Tiled inference on frames of any size, with any predictor (torch, ONNX Runtime, ...).

The frame is first padded to a multiple of ``align`` (``2**depth`` of a U-Net) exactly as
beadseg's networks pad a whole frame themselves (reflect; edge when the frame is too small to
reflect), so every tile sees what a whole-frame call sees. Tiles start on multiples of ``align``
(so their pooling grid is the frame's), are spaced evenly, overlap by at least ``overlap`` px
(less at most ``align``) and the last one ends exactly at the padded edge. Probabilities - not
thresholded masks - are blended:

``"cosine"``
    A tile's weight is zero in a dead margin along each edge that lies inside the frame (where
    the tile lacks context), then rises with a raised-cosine ramp of ``max(overlap // 4, align)``
    px centred ``overlap / 2`` px from the edge; edges on the frame border are not tapered. With
    an overlap of more than twice the network's reach (the default UNet sees 44 px to each
    side; default overlap 128: every blended pixel lies >= 48 px inside its tile) tiled equals
    whole-frame inference everywhere, borders included, to ~1e-6. At overlap 96 the ramp reaches
    36 px from an inner edge: the shipped model then differs by up to 2.5e-3 (no mask pixel).
``"constant"``
    Plain averaging of the overlapping tiles (not exact at seams).

(``PredictConfig`` still reads ``"gaussian"``, the old name of ``"cosine"``, from old configs.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: maps a float32 ``N x C x H x W`` batch to ``N x H x W`` probabilities (or ``N x K x H x W``:
#: K maps per pixel, e.g. foreground and bead centres, blended alike)
Predictor = Callable[[np.ndarray], np.ndarray]

BLENDS = ("cosine", "constant")


def tile_starts(size: int, tile: int, overlap: int, align: int) -> list[int]:
    """Origins of tiles covering ``[0, size)`` exactly: multiples of ``align``, evenly spaced,
    neighbours sharing at least ``overlap - align`` px, the last tile ending at ``size``.

    ``size`` and ``tile`` must be multiples of ``align`` (pad the frame first).

    Examples
    --------
    >>> tile_starts(1000, 512, 96, 8)
    [0, 240, 488]
    >>> tile_starts(256, 512, 96, 8)
    [0]
    """
    if size % align or tile % align:
        raise ValueError(f"size {size} and tile {tile} must be multiples of align {align}")
    if size <= tile:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be in [0, tile {tile})")
    n = int(np.ceil((size - overlap) / (tile - overlap)))
    last = size - tile  # a multiple of align: the last tile ends at the (padded) edge
    return sorted({int(round(i * last / max(n - 1, 1) / align)) * align for i in range(n)})


def fit_tile(size: int, tile: int, overlap: int, align: int) -> int:
    """The smallest tile side (a multiple of ``align``, at most ``tile``) that covers ``size``
    with as few tiles as ``tile`` needs, neighbours still sharing ``overlap`` px.

    A 3840-px side needs 4 tiles of 1152 px with 96 px of overlap; 4 tiles of 1032 px do the
    same, so the network computes 4128 px instead of 4608 (10 % less work along that axis).

    Examples
    --------
    >>> fit_tile(3840, 1152, 96, 8)
    1032
    >>> fit_tile(2160, 1152, 96, 8)
    1128
    >>> fit_tile(256, 512, 96, 8)
    256
    """
    if size <= tile:
        return size
    n = len(tile_starts(size, tile, overlap, align))
    need = -(-(size + (n - 1) * overlap) // n)  # ceil: n tiles of this side cover size
    return min(tile, -(-need // align) * align)


def blend_profile(
    tile: int, overlap: int, align: int, taper_start: bool, taper_end: bool, blend: str = "cosine"
) -> np.ndarray:
    """1-D weight of a tile along one axis (the 2-D weight is the outer product of two).

    ``taper_start`` / ``taper_end``: that edge lies inside the frame. With ``"cosine"`` the
    weight is zero in a dead margin of ``overlap / 2 - ramp / 2`` px there, then rises over the
    ramp (``max(overlap // 4, align)`` px) with a raised cosine, so a pixel is taken only from
    tiles where the tile's missing context no longer reaches it.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend {blend!r} is not one of {', '.join(BLENDS)}")
    w = np.ones(tile, np.float32)
    if blend == "constant":
        return w
    ramp = max(overlap // 4, align)
    dead = max(overlap // 2 - ramp // 2, 0)
    up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
    prof = np.concatenate([np.zeros(dead), up]).astype(np.float32)[:tile]
    if taper_start:
        w[: len(prof)] = prof
    if taper_end:
        w[tile - len(prof) :] = np.minimum(w[tile - len(prof) :], prof[::-1])
    return w


def pad_to_multiple(image: np.ndarray, align: int) -> np.ndarray:
    """Pad a ``C x H x W`` image at the bottom/right to multiples of ``align``, the way
    beadseg's networks pad a whole frame (reflect, or edge when a side is too short)."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % align, (-w) % align
    if not (ph or pw):
        return image
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(image, ((0, 0), (0, ph), (0, pw)), mode=mode)


def predict_tiled(
    predictor: Predictor,
    image: np.ndarray,
    tile: int,
    overlap: int,
    align: int,
    batch: int,
    blend: str = "cosine",
) -> np.ndarray:
    """Probabilities of a ``C x H x W`` frame from tiles, blended (see the module docstring).

    Parameters
    ----------
    predictor : callable
        float32 ``N x C x h x w`` batch -> ``N x h x w`` probabilities, or ``N x K x h x w``
        for K maps (numpy in, numpy out).
    image : ndarray of float32, ``C x H x W``
    tile : int
        Largest tile side in px, a multiple of ``align``; along each axis the tiles are shrunk to
        the smallest side that needs no more of them (:func:`fit_tile`), and to the padded
        frame where it is smaller.
    overlap : int
        px shared by neighbouring tiles (at most ``tile // 2``).
    align : int
        Tile origins and sizes are multiples of this (``2**depth`` for a U-Net).
    batch : int
        Tiles per predictor call.
    blend : {"cosine", "constant"}

    Returns
    -------
    ndarray of float32, ``H x W`` (``K x H x W`` for a predictor of K maps)
    """
    if tile % align or tile <= 0:
        raise ValueError(f"tile {tile} must be a positive multiple of align {align}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    h, w = image.shape[-2:]
    padded = pad_to_multiple(np.asarray(image, np.float32), align)
    ph, pw = padded.shape[-2:]
    overlap = min(overlap, tile // 2)
    th, tw = fit_tile(ph, tile, overlap, align), fit_tile(pw, tile, overlap, align)
    positions = [
        (y, x) for y in tile_starts(ph, th, overlap, align) for x in tile_starts(pw, tw, overlap, align)
    ]
    acc = None  # (K x) ph x pw, shaped by the predictor's first output
    wsum = np.zeros((ph, pw), np.float32)
    weights: dict[tuple[bool, ...], np.ndarray] = {}  # one per edge pattern
    for b in range(0, len(positions), batch):
        chunk = positions[b : b + batch]
        probs = predictor(np.stack([padded[:, y : y + th, x : x + tw] for y, x in chunk]))
        if acc is None:
            acc = np.zeros(probs.shape[1:-2] + (ph, pw), np.float32)
        for (y, x), p in zip(chunk, probs):
            key = (y > 0, y + th < ph, x > 0, x + tw < pw)
            if key not in weights:
                weights[key] = np.outer(
                    blend_profile(th, overlap, align, key[0], key[1], blend),
                    blend_profile(tw, overlap, align, key[2], key[3], blend),
                )
            wt = weights[key]
            acc[..., y : y + th, x : x + tw] += p * wt
            wsum[y : y + th, x : x + tw] += wt
    return (acc[..., :h, :w] / np.maximum(wsum[:h, :w], 1e-8)).astype(np.float32, copy=False)
