"""Exact-truth composites: real bead appearances pasted at known centres on real backgrounds.

Annotations of the real tiles disagree with each other (centroid F1 0.50 where neighbouring tiles
overlap), so they cannot say whether a method counts touching beads right. Here the truth is
exact by construction:

1. :func:`collect_sources` reads the sparse labelled tiles of a data folder, re-registers their
   masks (:func:`beadseg.core.registration.align_mask`), in-paints every bead (annotated, or dark
   enough to be one) to get **backgrounds** with no bead left, and cuts the isolated single
   annotated beads out as **sprites**: the bead's transmission, image / bead-free background,
   exactly 1 outside a halo around the bead.
2. :func:`layout_beads` places centres at a given density: single beads apart from everything,
   touching pairs, chains and clumps of 3-7 at centre distances of about one diameter.
3. :func:`make_composite` multiplies sprites into a background at those centres
   (:func:`paste_sprites`; transmissions multiply where halos overlap, as light through two
   beads does) and draws the instance labels (:func:`draw_labels`): a disc of the single-bead
   radius per centre, overlapping pixels going to the nearer centre.
4. :func:`write_composites` writes ``images/``, ``masks/``, ``labels/``, ``centres/NAME.csv``,
   ``composites.csv``, ``sprites.csv``, ``sources.csv`` and ``provenance.json``.

Each bead is pasted at an integer offset, so its centre lies on the sub-pixel grid of its
sprite; no appearance is resampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ...core.errors import InputError
from ...core.filters import gaussian_blur

EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class Sprite:
    """One real bead appearance.

    Attributes
    ----------
    transmission : ndarray of float32, h x w x C
        Image / bead-free background around the bead; exactly 1 outside its halo.
    center : (float, float)
        Bead centre (row, col) inside the patch: centroid of the dark core.
    source : str
        The tile it was cut from.
    source_center : (float, float)
        The centre (row, col) in that tile.
    area_px : int
        Area of its (re-registered) annotation.
    """

    transmission: np.ndarray
    center: tuple[float, float]
    source: str
    source_center: tuple[float, float]
    area_px: int


@dataclass(frozen=True)
class Background:
    """A real tile with every bead in-painted (``image`` float32 H x W x C in [0, 1])."""

    image: np.ndarray
    source: str
    n_inpainted: int


@dataclass(frozen=True)
class SourceTile:
    """What one tile of the data folder contributed (a row of ``sources.csv``)."""

    name: str
    source_frame: str
    n_beads: int
    bead_fraction: float
    mask_shift: tuple[int, int]
    n_sprites: int
    background: bool
    note: str


@dataclass(frozen=True)
class Sources:
    """Sprites and backgrounds cut from real tiles, and the single-bead size they imply."""

    sprites: list[Sprite]
    backgrounds: list[Background]
    radius_px: float
    tiles: list[SourceTile]

    @property
    def diameter_px(self) -> float:
        return 2 * self.radius_px


def bead_pixels(
    image: np.ndarray, mask: np.ndarray, min_evidence: float = 6.0, min_area_px: int = 4
) -> np.ndarray:
    """Annotated beads plus dark blobs the annotation missed (bead evidence >= ``min_evidence``
    noise units over at least ``min_area_px`` pixels): everything a background must not keep."""
    from ...core.registration import bead_evidence

    blobs, n = ndi.label(bead_evidence(image) >= min_evidence)
    big = np.bincount(blobs.ravel(), minlength=n + 1) >= min_area_px
    big[0] = False
    return np.asarray(mask, bool) | big[blobs]


def local_background(image: np.ndarray, holes: np.ndarray, sigma_px: float = 5.0) -> np.ndarray:
    """Smooth background of an ``H x W x C`` image from the pixels outside ``holes``.

    A normalised Gaussian average (the image times the bead-free weight, blurred, divided by
    the blurred weight); where a hole is too large for ``sigma_px`` (weight < 1 %), the same at
    4 x ``sigma_px``. On 22-px bead-free discs of the dev tiles (25 per tile, 7 tiles) the mean
    error per disc has an SD of 0.36 grey levels (of 255), max 1.2, in 43 ms per 512-px tile;
    ``skimage.restoration.inpaint_biharmonic`` gives 1.03, max 3.0, in 111 ms: it carries the
    noise of the hole's edge into its middle.
    """
    free = (~np.asarray(holes, bool)).astype(np.float32)
    image = np.asarray(image, np.float32)
    out, ok = None, None
    for sigma in (sigma_px, 4 * sigma_px):
        weight = gaussian_blur(free, sigma)
        est = gaussian_blur(image * free[..., None], sigma)
        est /= np.maximum(weight, 1e-12)[..., None]
        if out is None:
            out, ok = est, weight >= 0.01
            if ok.all():  # the usual case: no hole too large for sigma_px
                break
        else:
            out = np.where(ok[..., None], out, est)
    return out


def inpaint_beads(
    image: np.ndarray,
    holes: np.ndarray,
    texture_sigma_px: float = 2.0,
    block_px: int = 8,
    smooth: np.ndarray | None = None,
) -> np.ndarray:
    """Fill ``holes`` of an ``H x W x C`` image with a background that looks like the rest.

    The smooth part is :func:`local_background`. A smooth fill has no noise, so the fine
    texture (image minus its local mean) is copied in from the nearest bead-free place a whole
    number of ``block_px`` away, which keeps the 8 x 8 JPEG block pattern of the real tiles in
    phase. Pixels outside ``holes`` are returned unchanged. ``smooth`` is the local background
    when the caller already has it.
    """
    from ...core.registration import shift_mask

    holes = np.asarray(holes, bool)
    image = np.asarray(image, np.float32)
    if not holes.any():
        return image.copy()
    smooth = local_background(image, holes) if smooth is None else smooth
    texture = image - local_background(image, holes, texture_sigma_px)
    fill = np.zeros_like(image)
    todo = holes.copy()
    steps = [(dy, dx) for dy in range(-6, 7) for dx in range(-6, 7) if dy or dx]
    for dy, dx in sorted(steps, key=lambda s: (s[0] ** 2 + s[1] ** 2, s)):
        dy, dx = dy * block_px, dx * block_px
        # pixel p takes the texture at p + (dy, dx) where that pixel is bead-free
        take = todo & shift_mask(~holes, -dy, -dx)
        fill[take] = shift_mask(texture, -dy, -dx)[take]
        todo &= ~take
        if not todo.any():
            break
    out = np.where(holes[..., None], smooth + fill, image)
    return np.clip(out, 0, 1)


def _sprite_center(transmission: np.ndarray) -> tuple[float, float]:
    """Centroid of the dark core: darkness ``1 - T`` over the pixels at >= half its maximum."""
    dark = np.clip(1 - transmission.mean(-1), 0, None)
    core = dark >= 0.5 * dark.max()
    cy, cx = ndi.center_of_mass(dark * core)
    return float(cy), float(cx)


def cut_sprites(
    image: np.ndarray,
    mask: np.ndarray,
    beads: np.ndarray,
    background: np.ndarray,
    name: str,
    single_area_px: float,
    halo_px: int = 7,
    isolation_px: int = 16,
    area_tolerance: float = 0.3,
    max_offset_px: float = 2.0,
) -> list[Sprite]:
    """Cut the clean isolated single annotated beads of one tile as sprites.

    A component of ``beads`` qualifies when it holds exactly one annotated object whose area is
    within ``area_tolerance`` (relative) of ``single_area_px``, no other bead pixel lies within
    ``isolation_px`` of it, it spans at most 1.5 single-bead diameters, its halo (``halo_px``
    around it) lies inside the image, and the centre of its dark core is within
    ``max_offset_px`` of the annotation's centroid. ``background`` is the tile's smooth
    bead-free background (:func:`local_background`).
    """
    from skimage.segmentation import expand_labels

    lab, n = ndi.label(beads, structure=EIGHT)
    if n == 0:
        return []
    annotated = np.bincount(lab[mask], minlength=n + 1)
    # exactly one annotated object per bead component: two annotations joined by a dark bridge
    # are a touching pair, not a single bead
    objects, n_objects = ndi.label(mask, structure=EIGHT)
    first = np.zeros(n_objects + 1, np.int64)
    first[objects[mask]] = lab[mask]
    per_component = np.bincount(first[1:], minlength=n + 1)
    ok = (per_component == 1) & (np.abs(annotated / single_area_px - 1) <= area_tolerance)
    # two components closer than isolation_px meet when each grows by half of it
    grown = expand_labels(lab, isolation_px / 2)
    for a, b in ((grown[:, 1:], grown[:, :-1]), (grown[1:], grown[:-1])):
        meet = (a != b) & (a > 0) & (b > 0)
        ok[a[meet]] = False
        ok[b[meet]] = False
    ok[0] = False
    halo = expand_labels(lab, halo_px)
    h, w = lab.shape
    max_extent = 1.5 * 2 * np.sqrt(single_area_px / np.pi)
    sprites = []
    for i, sl in enumerate(ndi.find_objects(halo), start=1):
        if sl is None or not ok[i]:
            continue
        extent = max(s.stop - s.start for s in sl) - 2 * halo_px
        if extent > max_extent:
            continue  # elongated dark blob: a doublet or debris, not one clean bead
        if sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == h or sl[1].stop == w:
            continue  # the halo is cut by the image border
        inside = halo[sl] == i
        t = np.where(inside[..., None], image[sl] / np.maximum(background[sl], 1e-3), 1.0)
        t = t.astype(np.float32)
        cy, cx = _sprite_center(t)
        my, mx = ndi.center_of_mass(mask[sl] & (lab[sl] == i))
        if np.hypot(cy - my, cx - mx) > max_offset_px:
            continue  # annotation and appearance disagree
        src = (float(sl[0].start + cy), float(sl[1].start + cx))
        sprites.append(Sprite(t, (cy, cx), name, src, int(annotated[i])))
    return sprites


def _select_tiles(pairs, frames: list[str] | None, data: Path):
    """The pairs whose stem or source frame is in ``frames`` (all when None)."""
    from ...core.naming import source_frame

    if frames is None:
        return pairs
    wanted = set(frames)
    chosen = [p for p in pairs if p.name in wanted or source_frame(p.name) in wanted]
    if not chosen:
        known = sorted({source_frame(p.name) for p in pairs})
        raise InputError(
            f"none of --frames {', '.join(sorted(wanted))} is a tile or source frame of {data}; "
            f"its source frames are: {', '.join(known[:8])}{' ...' if len(known) > 8 else ''}"
        )
    return chosen


def _read_tile(pair) -> tuple[str, np.ndarray, np.ndarray, tuple[int, int]]:
    """Name, re-registered mask, bead pixels and the mask shift applied, of one tile."""
    from ...core.masks import read_pair
    from ...core.registration import align_mask

    image, info = read_pair(pair)
    mask, reg = align_mask(image, info.mask)
    shift = (reg.dy, reg.dx) if reg.flagged else (0, 0)
    return pair.name, mask, bead_pixels(image, mask), shift


def _source_tile(name, mask, fraction, shift, n_sprites, max_bead_fraction) -> SourceTile:
    from ...core.naming import source_frame

    used = fraction <= max_bead_fraction
    note = "" if used else f"bead fraction {fraction:.3f} > {max_bead_fraction}: no background"
    n_beads = int(ndi.label(mask, structure=EIGHT)[1])
    return SourceTile(name, source_frame(name), n_beads, round(fraction, 5), shift, n_sprites, used, note)


def collect_sources(
    data: str | Path,
    frames: list[str] | None = None,
    max_bead_fraction: float = 0.02,
    halo_px: int = 7,
    isolation_px: int = 16,
    dense_sprites: bool = False,
    dense_isolation_px: int = 10,
    max_sprite_bead_fraction: float = 0.3,
) -> Sources:
    """Cut sprites and bead-free backgrounds out of the sparse labelled tiles of ``data``
    (with ``dense_sprites``, sprites out of the denser tiles too).

    Parameters
    ----------
    data : path
        A folder with ``images/`` and ``masks/`` (binary or label masks).
    frames : list of str, optional
        Use only these tiles or source frames (the stem before ``_grid_``), e.g. the held-out
        frames of a model, so that a benchmark never sees data it is evaluated on.
    max_bead_fraction : float
        A tile is sparse, and feeds sprites and a background, when at most this fraction of its
        pixels are beads (annotated or dark blobs). Denser tiles have too few isolated beads and
        too little background left to in-paint from.
    halo_px, isolation_px : int
        Sprite halo around the bead pixels, and the bead-free distance a sprite needs around
        it (see :func:`cut_sprites`).
    dense_sprites : bool
        Cut sprites from the tiles denser than ``max_bead_fraction`` too (up to
        ``max_sprite_bead_fraction``; their beads need ``dense_isolation_px`` of bead-free space),
        so that the beads of every frame, blurred or sharp, lend their appearance; backgrounds
        still come only from the sparse tiles. On the dev set: 1,641 sprites from all 8 frames
        instead of 258 from 4 (the dense 160x and 320x frames give 49 and 171).

    Returns
    -------
    Sources

    Raises
    ------
    InputError
        When no tile (of ``frames``) is sparse or none holds an isolated single bead.
    """
    from ...core.beads import single_bead_area
    from ...core.files import find_pairs
    from ...core.images import read_image

    data = Path(data)
    pairs = _select_tiles(find_pairs(data), frames, data)
    # pass 1 keeps only masks (images are read again for the sparse tiles: memory stays small)
    read = [_read_tile(p) for p in pairs]
    sparse = [r for r in read if r[2].mean() <= max_bead_fraction]
    single_area = single_bead_area([r[1] for r in sparse])
    sprites, backgrounds, tiles = [], [], []
    for pair, (name, mask, beads, shift) in zip(pairs, read):
        fraction = float(beads.mean())
        cut: list[Sprite] = []
        sparse_tile = fraction <= max_bead_fraction
        if single_area > 0 and (sparse_tile or (dense_sprites and fraction <= max_sprite_bead_fraction)):
            image = read_image(pair.image)
            holes = ndi.binary_dilation(beads, structure=EIGHT, iterations=halo_px)
            smooth = local_background(image, holes)
            if sparse_tile:
                bg = inpaint_beads(image, holes, smooth=smooth)
                backgrounds.append(Background(bg, name, int(ndi.label(beads, EIGHT)[1])))
            # transmission against the smooth background: no copied texture divided in
            iso = isolation_px if sparse_tile else dense_isolation_px
            cut = cut_sprites(image, mask, beads, smooth, name, single_area, halo_px, iso)
            sprites += cut
        tiles.append(_source_tile(name, mask, fraction, shift, len(cut), max_bead_fraction))
    if not sprites or not backgrounds:
        raise InputError(
            f"{data} has no sparse labelled tile with isolated single beads ({len(read)} tiles "
            f"read, {len(sparse)} with bead fraction <= {max_bead_fraction}); give a folder (or "
            "--frames) with sparse annotated tiles, e.g. high dilutions"
        )
    radius = float(np.sqrt(np.median([s.area_px for s in sprites]) / np.pi))
    return Sources(sprites, backgrounds, radius, tiles)
