"""Where the beads of an exact-truth composite go: density levels, touching groups (pairs,
chains, clusters) at a given centre spacing, and the labels drawn from the centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.errors import InputError


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
    # the levels of the family composites (`synth --from --family`): packed frames of 10x-160x
    "packed": TruthLevel("packed", 1000, 0.6, 30),
    "monolayer": TruthLevel("monolayer", 2000, 0.85, 60),
}

#: the levels of a family set when none are asked for: sparse to a touching monolayer
FAMILY_LEVELS = ("sparse", "medium", "dense", "clumped", "packed", "monolayer")


@dataclass(frozen=True)
class BeadLayout:
    """Bead centres of one image (row, col; px) with their touching group.

    ``group_id`` numbers the groups 1..G (a single bead is a group of one); ``group_size`` is
    the size of each bead's group; ``radius`` (px), per bead, when beads differ in size.
    """

    centers: np.ndarray
    group_id: np.ndarray
    group_size: np.ndarray
    radius: np.ndarray | None = None

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


def draw_labels(shape: tuple[int, int], centers: np.ndarray, radius_px) -> np.ndarray:
    """Instance labels: bead ``k`` (1-based, in ``centers`` order) is the disc of ``radius_px``
    (one value, or one per bead) around its centre; a pixel inside several discs belongs to the
    nearest centre, distances measured in each disc's radii."""
    labels = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf)
    centers = np.asarray(centers, float).reshape(-1, 2)
    radii = np.broadcast_to(np.asarray(radius_px, float), (len(centers),))
    for k, ((cy, cx), rad) in enumerate(zip(centers, radii), start=1):
        r = int(np.ceil(rad)) + 1
        y0, x0 = max(int(np.floor(cy)) - r, 0), max(int(np.floor(cx)) - r, 0)
        y1, x1 = min(int(np.floor(cy)) + r + 2, shape[0]), min(int(np.floor(cx)) + r + 2, shape[1])
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / rad**2
        win = best[y0:y1, x0:x1]
        take = (d2 <= 1) & (d2 < win)
        win[take] = d2[take]
        labels[y0:y1, x0:x1][take] = k
    return labels


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
