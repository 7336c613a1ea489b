"""Exact-truth composites: real bead appearances pasted at known centres on real backgrounds.

Annotations of the real tiles disagree with each other (centroid F1 0.50 where neighbouring tiles
overlap), so they cannot say whether a method counts touching beads right. Here the truth is
exact by construction:

1. :func:`collect_sources` reads the sparse labelled tiles of a data folder, re-registers their
   masks (:func:`beadseg.registration.align_mask`), in-paints every bead (annotated, or dark
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

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .errors import InputError

EIGHT = np.ones((3, 3), bool)


# ----------------------------------------------------------------------------- sources


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
    from .registration import bead_evidence

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
        weight = ndi.gaussian_filter(free, sigma)
        est = ndi.gaussian_filter(image * free[..., None], (sigma, sigma, 0))
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
    from .registration import shift_mask

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


def _single_area(masks: list[np.ndarray]) -> float:
    """Median area of the annotated objects of the given masks (the single-bead area)."""
    areas = [np.bincount(ndi.label(m, structure=EIGHT)[0].ravel())[1:] for m in masks]
    areas = np.concatenate(areas) if areas else np.zeros(0)
    return float(np.median(areas)) if len(areas) else 0.0


def _select_tiles(pairs, frames: list[str] | None, data: Path):
    """The pairs whose stem or source frame is in ``frames`` (all when None)."""
    from .naming import source_frame

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
    from .io import read_pair
    from .registration import align_mask

    image, info = read_pair(pair)
    mask, reg = align_mask(image, info.mask)
    shift = (reg.dy, reg.dx) if reg.flagged else (0, 0)
    return pair.name, mask, bead_pixels(image, mask), shift


def _source_tile(name, mask, fraction, shift, n_sprites, max_bead_fraction) -> SourceTile:
    from .naming import source_frame

    used = fraction <= max_bead_fraction
    note = "" if used else f"bead fraction {fraction:.3f} > {max_bead_fraction}: not used"
    n_beads = int(ndi.label(mask, structure=EIGHT)[1])
    return SourceTile(name, source_frame(name), n_beads, round(fraction, 5), shift, n_sprites, used, note)


def collect_sources(
    data: str | Path,
    frames: list[str] | None = None,
    max_bead_fraction: float = 0.02,
    halo_px: int = 7,
    isolation_px: int = 16,
) -> Sources:
    """Cut sprites and bead-free backgrounds out of the sparse labelled tiles of ``data``.

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

    Returns
    -------
    Sources

    Raises
    ------
    InputError
        When no tile (of ``frames``) is sparse or none holds an isolated single bead.
    """
    from .io import find_pairs, read_image

    data = Path(data)
    pairs = _select_tiles(find_pairs(data), frames, data)
    # pass 1 keeps only masks (images are read again for the sparse tiles: memory stays small)
    read = [_read_tile(p) for p in pairs]
    sparse = [r for r in read if r[2].mean() <= max_bead_fraction]
    single_area = _single_area([r[1] for r in sparse])
    sprites, backgrounds, tiles = [], [], []
    for pair, (name, mask, beads, shift) in zip(pairs, read):
        fraction = float(beads.mean())
        cut: list[Sprite] = []
        if fraction <= max_bead_fraction and single_area > 0:
            image = read_image(pair.image)
            holes = ndi.binary_dilation(beads, structure=EIGHT, iterations=halo_px)
            smooth = local_background(image, holes)
            bg = inpaint_beads(image, holes, smooth=smooth)
            backgrounds.append(Background(bg, name, int(ndi.label(beads, EIGHT)[1])))
            # transmission against the smooth background: no copied texture divided in
            cut = cut_sprites(image, mask, beads, smooth, name, single_area, halo_px, isolation_px)
            sprites += cut
        tiles.append(_source_tile(name, mask, fraction, shift, len(cut), max_bead_fraction))
    if not sprites:
        raise InputError(
            f"{data} has no sparse labelled tile with isolated single beads ({len(read)} tiles "
            f"read, {len(sparse)} with bead fraction <= {max_bead_fraction}); give a folder (or "
            "--frames) with sparse annotated tiles, e.g. high dilutions"
        )
    radius = float(np.sqrt(np.median([s.area_px for s in sprites]) / np.pi))
    return Sources(sprites, backgrounds, radius, tiles)


# ----------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class TruthLevel:
    """A density level: beads per 512 x 512 px, the fraction of them in touching groups, and
    the largest group (groups have 2..``max_group`` beads)."""

    name: str
    n_beads: int
    clump_fraction: float
    max_group: int = 7

    def __post_init__(self):
        if self.n_beads < 0:
            raise InputError(f"level {self.name}: bead count {self.n_beads} < 0; give >= 0")
        if not 0 <= self.clump_fraction <= 1:
            raise InputError(f"level {self.name}: clump fraction {self.clump_fraction} is not in [0, 1]")
        if self.max_group < 2:
            raise InputError(f"level {self.name}: largest group {self.max_group} < 2")


#: The benchmark levels: isolated beads only, then more and more of them in touching groups.
LEVELS = {
    "sparse": TruthLevel("sparse", 40, 0.0),
    "medium": TruthLevel("medium", 200, 0.2),
    "dense": TruthLevel("dense", 450, 0.35),
    "clumped": TruthLevel("clumped", 300, 0.7),
    "crowded": TruthLevel("crowded", 600, 0.5),
}


@dataclass(frozen=True)
class BeadLayout:
    """Bead centres of one image (row, col; px) with their touching group.

    ``group_id`` numbers the groups 1..G (a single bead is a group of one); ``group_size`` is
    the size of each bead's group.
    """

    centers: np.ndarray
    group_id: np.ndarray
    group_size: np.ndarray

    def __len__(self) -> int:
        return len(self.centers)


def group_sizes(rng: np.random.Generator, n_beads: int, clump_fraction: float, max_group: int) -> list[int]:
    """Split ``n_beads`` into single beads and groups of 2..``max_group`` (uniform sizes) so
    that ``round(n_beads * clump_fraction)`` beads are in groups (largest groups first)."""
    grouped = int(round(n_beads * clump_fraction))
    if grouped == 1:
        grouped = 2 if n_beads >= 2 else 0  # a group of one is a single bead
    if max_group == 2 and grouped % 2:
        grouped -= 1  # only pairs: an even number of grouped beads
    sizes = []
    left = grouped
    while left > 0:
        s = min(int(rng.integers(2, max_group + 1)), left)
        if left - s == 1:  # never leave one bead over
            s = s + 1 if s < max_group else s - 1
        sizes.append(s)
        left -= s
    return sorted(sizes, reverse=True) + [1] * (n_beads - grouped)


def _snap(point: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """The point nearest to ``point`` whose sub-pixel part is ``fraction``."""
    return np.round(point - fraction) + fraction


def _build_group(
    rng: np.random.Generator,
    fractions: np.ndarray,
    diameter_px: float,
    touch: tuple[float, float],
    chain: bool,
    tries: int = 60,
) -> np.ndarray | None:
    """Centres of one touching group (relative to its first bead), or None if it did not fit.

    Each new bead touches one already placed (the previous one in a chain, any in a clump) at
    ``touch`` diameters and keeps at least ``touch[0]`` diameters from all the others.
    """
    lo, hi = touch[0] * diameter_px, touch[1] * diameter_px
    pos = [_snap(np.zeros(2), fractions[0])]
    angle = rng.uniform(0, 2 * np.pi)
    for i in range(1, len(fractions)):
        for _ in range(tries):
            j = i - 1 if chain else int(rng.integers(i))
            angle = angle + rng.normal(0, 0.6) if chain else rng.uniform(0, 2 * np.pi)
            step = rng.uniform(lo, hi) * np.array([np.sin(angle), np.cos(angle)])
            cand = _snap(pos[j] + step, fractions[i])
            d = np.hypot(*(np.asarray(pos) - cand).T)
            if lo <= d[j] <= hi and d.min() >= lo:
                pos.append(cand)
                break
        else:
            return None
    return np.asarray(pos)


def layout_beads(
    rng: np.random.Generator,
    shape: tuple[int, int],
    sizes: list[int],
    diameter_px: float,
    fractions: np.ndarray | None = None,
    touch: tuple[float, float] = (0.9, 1.0),
    min_gap_px: float = 4.0,
    chain_probability: float = 0.5,
    max_attempts: int = 400,
) -> BeadLayout:
    """Place groups of beads (sizes from :func:`group_sizes`) in an image.

    Parameters
    ----------
    rng : Generator
    shape : (int, int)
        Image height and width.
    sizes : list of int
        One entry per group: 1 for a single bead, k for a touching pair, chain or clump of k.
    diameter_px : float
        Single-bead diameter; every bead's disc lies inside the image.
    fractions : ndarray, optional
        ``n x 2`` sub-pixel parts (row, col) the centres must have, one per bead in group
        order (the sub-pixel centres of their sprites); integers when None.
    touch : (float, float)
        Range of the centre distance of touching beads, in diameters (at least 0.05 wide).
    min_gap_px : float
        Free space between the discs of beads of different groups.
    chain_probability : float
        Probability that a group of 3+ is a chain (else a compact clump).
    max_attempts : int
        Random positions tried per group before giving up.

    Returns
    -------
    BeadLayout

    Raises
    ------
    InputError
        When the groups do not fit (too many beads for the image).
    """
    if not (0.5 <= touch[0] and touch[0] + 0.05 <= touch[1] <= 1.5):
        # centres snap to their sprites' sub-pixel grids, so the range needs some width
        raise InputError(
            f"touch range {touch[0]}-{touch[1]} diameters: give 0.5 <= low, low + 0.05 <= high <= 1.5"
        )
    n = int(sum(sizes))
    fractions = np.zeros((n, 2)) if fractions is None else np.asarray(fractions, float)
    radius = diameter_px / 2
    clear = diameter_px + min_gap_px
    lo = np.array([radius, radius])
    hi = np.array([shape[0] - 1 - radius, shape[1] - 1 - radius])
    centers, gid, gsize = np.zeros((0, 2)), [], []
    start = 0
    for g, size in enumerate(sizes, start=1):
        frac = fractions[start : start + size]
        chain = size == 2 or rng.random() < chain_probability
        for _ in range(max_attempts):
            rel = _build_group(rng, frac, diameter_px, touch, chain)
            if rel is None:
                continue
            low, high = np.ceil(lo - rel.min(0)), np.floor(hi - rel.max(0))
            if np.any(high < low):
                continue
            # integer shifts keep each centre on its sprite's sub-pixel grid
            pos = rel + rng.integers(low, high + 1)
            if len(centers) == 0 or np.min(_pair_distances(pos, centers)) >= clear:
                break
        else:
            raise InputError(
                f"placed {start} of {n} beads on a {shape[0]}x{shape[1]} image before a group "
                f"of {size} found no room; ask for fewer beads or a bigger --size"
            )
        centers = np.vstack([centers, pos])
        gid += [g] * size
        gsize += [size] * size
        start += size
    return BeadLayout(centers, np.asarray(gid, np.int64), np.asarray(gsize, np.int64))


def _pair_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


# ----------------------------------------------------------------------------- rendering


def draw_labels(shape: tuple[int, int], centers: np.ndarray, radius_px: float) -> np.ndarray:
    """Instance labels: bead ``k`` (1-based, in ``centers`` order) is the disc of ``radius_px``
    around its centre; a pixel inside several discs belongs to the nearest centre."""
    labels = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf)
    r = int(np.ceil(radius_px)) + 1
    for k, (cy, cx) in enumerate(np.asarray(centers, float), start=1):
        y0, x0 = max(int(cy) - r, 0), max(int(cx) - r, 0)
        y1, x1 = min(int(cy) + r + 1, shape[0]), min(int(cx) + r + 1, shape[1])
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        win = best[y0:y1, x0:x1]
        take = (d2 <= radius_px**2) & (d2 < win)
        win[take] = d2[take]
        labels[y0:y1, x0:x1][take] = k
    return labels


def paste_sprites(
    background: np.ndarray, sprites: list[Sprite], sprite_index: np.ndarray, centers: np.ndarray
) -> np.ndarray:
    """Multiply each bead's sprite into a copy of ``background`` so that its centre lands on
    ``centers[k]`` (which must share the sprite centre's sub-pixel part)."""
    image = np.array(background, np.float32)
    h, w = image.shape[:2]
    for k, (cy, cx) in enumerate(np.asarray(centers, float)):
        s = sprites[int(sprite_index[k])]
        oy, ox = int(round(cy - s.center[0])), int(round(cx - s.center[1]))
        t = s.transmission
        y0, x0 = max(oy, 0), max(ox, 0)
        y1, x1 = min(oy + t.shape[0], h), min(ox + t.shape[1], w)
        if y0 < y1 and x0 < x1:
            image[y0:y1, x0:x1] *= t[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return np.clip(image, 0, 1)


@dataclass(frozen=True)
class Composite:
    """One exact-truth image: ``image`` uint8 H x W x C, ``labels`` int32 (bead k has id k)."""

    image: np.ndarray
    labels: np.ndarray
    layout: BeadLayout
    sprite_index: np.ndarray
    background: str

    @property
    def mask(self) -> np.ndarray:
        return self.labels > 0


def _background_crop(rng: np.random.Generator, bg: Background, size: int) -> np.ndarray:
    """A random ``size`` crop of a background in one of its 8 flips/rotations."""
    img = np.rot90(bg.image, int(rng.integers(4)))
    if rng.random() < 0.5:
        img = img[:, ::-1]
    h, w = img.shape[:2]
    if size > min(h, w):
        raise InputError(
            f"--size {size} is larger than the background tile {bg.source} "
            f"({w}x{h}); give --size <= {min(h, w)}"
        )
    y, x = rng.integers(h - size + 1), rng.integers(w - size + 1)
    return img[y : y + size, x : x + size]


def make_composite(
    rng: np.random.Generator, sources: Sources, level: TruthLevel, size: int = 512, **layout_options
) -> Composite:
    """One composite of ``level`` (bead count per 512 x 512 px, scaled to ``size``).

    ``layout_options`` go to :func:`layout_beads` (``touch``, ``min_gap_px``, ...).
    """
    bg = sources.backgrounds[int(rng.integers(len(sources.backgrounds)))]
    background = _background_crop(rng, bg, size)
    n = int(round(level.n_beads * size * size / 512**2))
    sizes = group_sizes(rng, n, level.clump_fraction, level.max_group)
    sprite_index = rng.integers(len(sources.sprites), size=n)
    fractions = np.array([np.mod(sources.sprites[i].center, 1.0) for i in sprite_index])
    layout = layout_beads(
        rng, (size, size), sizes, sources.diameter_px, fractions.reshape(-1, 2), **layout_options
    )
    image = paste_sprites(background, sources.sprites, sprite_index, layout.centers)
    labels = draw_labels((size, size), layout.centers, sources.radius_px)
    image8 = np.round(image * 255).astype(np.uint8)
    return Composite(image8, labels, layout, sprite_index, bg.source)


# ----------------------------------------------------------------------------- data sets


def parse_levels(
    levels: str | None = None, counts: str | None = None, clump_fraction: float = 0.3, max_group: int = 7
) -> list[TruthLevel]:
    """Levels from the command line: preset names (``"sparse,dense"``) and/or explicit bead
    counts per 512 x 512 px (``"100,600"``, named ``n100`` ...) with one clump fraction.
    Neither given: the four benchmark levels sparse, medium, dense, clumped."""
    out = []
    for name in filter(None, (s.strip() for s in (levels or "").split(","))):
        if name not in LEVELS:
            raise InputError(f"unknown level {name!r}; use one of {', '.join(LEVELS)} or --counts")
        out.append(LEVELS[name])
    for text in filter(None, (s.strip() for s in (counts or "").split(","))):
        try:
            n = int(text)
        except ValueError:
            raise InputError(f"--counts {counts!r}: {text!r} is not a whole number") from None
        out.append(TruthLevel(f"n{n}", n, clump_fraction, max_group))
    if not out:
        out = [LEVELS[k] for k in ("sparse", "medium", "dense", "clumped")]
    names = [lv.name for lv in out]
    if len(set(names)) != len(names):
        raise InputError(f"levels given twice: {', '.join(names)}")
    return out


def parse_touch(text: str) -> tuple[float, float]:
    """``"0.9,1.0"`` -> ``(0.9, 1.0)``: the touching-distance range in diameters."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--touch {text!r}: give two numbers LOW,HIGH, e.g. 0.9,1.0") from None
    return low, high


@dataclass(frozen=True)
class CompositeSet:
    """What :func:`write_composites` wrote."""

    out: Path
    names: list[str]
    n_sprites: int
    n_backgrounds: int
    radius_px: float
    sprite_tiles: list[str]
    background_tiles: list[str]
    seconds: float


def _image_seed(seed: int, level: str, index: int) -> np.random.Generator:
    """An image's generator depends only on the seed, its level's name and its index, so a set
    made with more levels or images holds the same images for the ones in common."""
    import zlib

    return np.random.default_rng([seed, zlib.crc32(level.encode()), index])


def _write_composite(out: Path, name: str, c: Composite) -> dict:
    from .io import write_csv, write_image, write_labels, write_mask

    write_image(out / "images" / f"{name}.png", c.image)
    write_mask(out / "masks" / f"{name}.png", c.mask)
    write_labels(out / "labels" / f"{name}.tif", c.labels)
    lay = c.layout
    rows = [
        {
            "id": k + 1,
            "x": round(float(x), 3),
            "y": round(float(y), 3),
            "group_id": int(lay.group_id[k]),
            "group_size": int(lay.group_size[k]),
            "sprite": int(c.sprite_index[k]),
        }
        for k, (y, x) in enumerate(lay.centers)
    ]
    write_csv(out / "centres" / f"{name}.csv", rows, ["id", "x", "y", "group_id", "group_size", "sprite"])
    grouped = int((lay.group_size > 1).sum())
    return {
        "name": name,
        "n_beads": len(lay),
        "n_in_groups": grouped,
        "n_groups": int(len(np.unique(lay.group_id[lay.group_size > 1]))),
        "background": c.background,
    }


def _write_source_tables(out: Path, sources: Sources) -> None:
    from .io import write_csv

    write_csv(
        out / "sprites.csv",
        [
            {
                "sprite": i,
                "source": s.source,
                "x": round(s.source_center[1], 3),
                "y": round(s.source_center[0], 3),
                "area_px": s.area_px,
            }
            for i, s in enumerate(sources.sprites)
        ],
    )
    write_csv(
        out / "sources.csv",
        [
            {
                "name": t.name,
                "source_frame": t.source_frame,
                "n_beads": t.n_beads,
                "bead_fraction": t.bead_fraction,
                "mask_dy": t.mask_shift[0],
                "mask_dx": t.mask_shift[1],
                "n_sprites": t.n_sprites,
                "background": t.background,
                "note": t.note,
            }
            for t in sources.tiles
        ],
    )


def write_composites(
    out: str | Path,
    data: str | Path,
    levels: list[TruthLevel] | None = None,
    n_per_level: int = 3,
    size: int = 512,
    seed: int = 0,
    frames: list[str] | None = None,
    prefix: str = "truth",
    max_bead_fraction: float = 0.02,
    **layout_options,
) -> CompositeSet:
    """Write an exact-truth data set made from the sparse labelled tiles of ``data``.

    Parameters
    ----------
    out : path
        Output folder: ``images/NAME.png``, ``masks/NAME.png`` (0/255), ``labels/NAME.tif``
        (bead k of the centres table has id k), ``centres/NAME.csv`` (id, x, y, group_id,
        group_size, sprite), ``composites.csv`` (one row per image), ``sprites.csv`` and
        ``sources.csv`` (what each real tile gave), ``provenance.json``.
    data : path
        Folder with ``images/`` and ``masks/`` of real tiles (see :func:`collect_sources`).
    levels : list of TruthLevel
        Default: sparse, medium, dense, clumped (:data:`LEVELS`).
    n_per_level, size, seed : int
        Images per level, their side in px, random seed (same seed, same files).
    frames : list of str, optional
        Tiles or source frames of ``data`` to use; all when None.
    prefix : str
        Names are ``<prefix>_<level>_<NNN>``; the default cannot be mistaken for a real tile.
    max_bead_fraction : float
        Sparse-tile threshold (see :func:`collect_sources`).
    **layout_options
        Passed to :func:`layout_beads` (``touch``, ``min_gap_px``, ``chain_probability``).

    Returns
    -------
    CompositeSet
    """
    import time

    from .io import write_csv

    t0 = time.perf_counter()
    out, data = Path(out), Path(data)
    if out.resolve() == data.resolve():
        raise InputError(f"output folder {out} is the input folder; give another folder")
    levels = levels or parse_levels()
    sources = collect_sources(data, frames, max_bead_fraction)
    with _staged(out) as stage:
        rows = []
        for level in levels:
            for i in range(n_per_level):
                name = f"{prefix}_{level.name}_{i:03d}"
                rng = _image_seed(seed, level.name, i)
                c = make_composite(rng, sources, level, size, **layout_options)
                row = _write_composite(stage, name, c)
                rows.append({**row, "level": level.name, "clump_fraction": level.clump_fraction})
        write_csv(stage / "composites.csv", rows)
        _write_source_tables(stage, sources)
        settings = dict(
            data=str(data),
            frames=frames,
            levels=[vars(lv) for lv in levels],
            n_per_level=n_per_level,
            size=size,
            max_bead_fraction=max_bead_fraction,
            layout_options=layout_options,
        )
        result = _record(stage, out, sources, [r["name"] for r in rows], seed, settings, t0)
    return result


@contextmanager
def _staged(out: Path):
    """Yield a hidden folder beside ``out``; move its files into ``out`` only when the block
    succeeds, so a failed run leaves nothing half-written."""
    import os
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield stage
        for f in sorted(p for p in stage.rglob("*") if p.is_file()):
            dest = out / f.relative_to(stage)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _record(
    stage: Path, out: Path, sources: Sources, names: list[str], seed: int, settings: dict, t0: float
) -> CompositeSet:
    """Write provenance.json (settings and which tiles fed what) and return the summary."""
    import time

    from .provenance import write_provenance

    sprite_tiles = sorted({s.source for s in sources.sprites})
    background_tiles = [b.source for b in sources.backgrounds]
    write_provenance(
        stage,
        "synth --from",
        seed=seed,
        **settings,
        radius_px=sources.radius_px,
        n_sprites=len(sources.sprites),
        sprite_tiles=sprite_tiles,
        background_tiles=background_tiles,
    )
    return CompositeSet(
        out,
        names,
        len(sources.sprites),
        len(sources.backgrounds),
        sources.radius_px,
        sprite_tiles,
        background_tiles,
        time.perf_counter() - t0,
    )
