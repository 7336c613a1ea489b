"""Where the beads of a family composite go (:mod:`.family`): single beads, touching pairs,
chains, compact clumps and 2-D packs, up to a touching monolayer, each bead with its own radius.

Two placements that do not share their way of building a group, so that a model trained on one
and scored on the other is scored on geometry it did not learn:

``grown`` (the training family)
    a group grows bead by bead, each new bead touching one already placed (the previous one in
    a chain, any one in a clump); groups of ``pack_min`` beads or more are, with
    ``pack_probability``, 2-D packs: a patch of a jittered hexagonal lattice with vacancies.
``ballistic`` (the held-out family)
    each new bead comes from a random direction along a straight line and sticks where it first
    touches the group (ballistic aggregation: branched, compact aggregates); no lattice.

Touching means a centre distance of ``U(spacing) x (r_i + r_j)``: below 1 the beads overlap as
they do when tight clumps are imaged. No two beads of a group come closer than
``spacing[0] x (r_i + r_j)``; beads of different groups keep ``r_i + r_j + gap_px`` apart.
Beads may be cut by the image border: a centre lies up to one radius outside the image (such a
bead is a sliver: it belongs to the image whose area holds its centre, and is not counted here:
:func:`beadseg.core.beads.centre_inside`).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .layout import BeadLayout

STYLES = ("grown", "ballistic")


class _Grid:
    """Placed beads (centre, radius) hashed into square cells, for fast clearance checks."""

    def __init__(self, cell_px: float):
        self.cell = float(cell_px)
        self.cells: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.centres: list[np.ndarray] = []
        self.radii: list[float] = []

    def _key(self, p) -> tuple[int, int]:
        return int(np.floor(p[0] / self.cell)), int(np.floor(p[1] / self.cell))

    def clear(self, pts: np.ndarray, radii: np.ndarray, gap_px: float) -> bool:
        """Whether every point keeps ``r + r_j + gap_px`` from every bead placed."""
        for p, r in zip(pts, radii):
            ky, kx = self._key(p)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    for j in self.cells.get((ky + dy, kx + dx), ()):
                        c = self.centres[j]
                        if (c[0] - p[0]) ** 2 + (c[1] - p[1]) ** 2 < (r + self.radii[j] + gap_px) ** 2:
                            return False
        return True

    def add(self, pts: np.ndarray, radii: np.ndarray) -> None:
        for p, r in zip(pts, radii):
            self.cells[self._key(p)].append(len(self.centres))
            self.centres.append(np.asarray(p, float))
            self.radii.append(float(r))


def _fits(pos: np.ndarray, radii: np.ndarray, new: np.ndarray, r: float, low: float) -> bool:
    """A new bead keeps ``low x (r + r_j)`` from every bead of its group."""
    if not len(pos):
        return True
    d = np.hypot(*(pos - new).T)
    return bool(np.all(d >= low * (radii + r) - 1e-9))


def grown_group(rng, radii: np.ndarray, spacing, chain: bool, tries: int = 60) -> np.ndarray | None:
    """Centres (relative) of a chain or compact clump: each bead touches one placed before."""
    low, high = spacing
    pos = np.zeros((1, 2))
    angle = rng.uniform(0, 2 * np.pi)
    for i in range(1, len(radii)):
        for _ in range(tries):
            j = i - 1 if chain else int(rng.integers(i))
            angle = angle + rng.normal(0, 0.6) if chain else rng.uniform(0, 2 * np.pi)
            step = rng.uniform(low, high) * (radii[i] + radii[j])
            cand = pos[j] + step * np.array([np.sin(angle), np.cos(angle)])
            if _fits(np.delete(pos, j, 0), np.delete(radii[:i], j), cand, radii[i], low):
                pos = np.vstack([pos, cand])
                break
        else:
            return None
    return pos


def lattice_pack(rng, radii: np.ndarray, spacing) -> np.ndarray:
    """Centres (relative) of a 2-D pack: the ``len(radii)`` sites of a hexagonal lattice (pitch
    ``U(spacing)`` mean diameters, 8 % jitter, 15 % vacancies) nearest an elliptic centre."""
    k = len(radii)
    pitch = rng.uniform(*spacing) * 2 * float(np.mean(radii))
    side = int(np.ceil(np.sqrt(k * 1.6))) + 3
    ii, jj = np.mgrid[-side : side + 1, -side : side + 1]
    sites = np.stack([ii * np.sqrt(3) / 2, jj + (ii % 2) / 2], -1).reshape(-1, 2) * pitch
    aspect = rng.uniform(0.5, 1.0)
    dist = np.hypot(sites[:, 0] * aspect, sites[:, 1]) + rng.uniform(0, 0.6 * pitch, len(sites))
    order = np.argsort(dist)
    keep = order[rng.random(len(order)) >= 0.15][:k]
    theta = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    pos = sites[keep] @ rot.T + rng.normal(0, 0.08 * pitch, (len(keep), 2))
    return pos - pos[0]


def ballistic_group(rng, radii: np.ndarray, spacing, tries: int = 40) -> np.ndarray | None:
    """Centres (relative) of a ballistic aggregate: bead i travels along a random line towards
    the group and sticks at its first contact (centre distance ``U(spacing) x (r_i + r_j)``)."""
    low, high = spacing
    pos = np.zeros((1, 2))
    for i in range(1, len(radii)):
        for _ in range(tries):
            s = rng.uniform(low, high)
            reach = s * (radii[:i] + radii[i])  # contact distance to each member
            u = rng.uniform(0, 2 * np.pi)
            direction = np.array([np.sin(u), np.cos(u)])  # travel direction
            normal = np.array([-direction[1], direction[0]])
            centre = pos.mean(0)
            span = float(np.max(np.hypot(*(pos - centre).T) + reach)) + 1e-6
            start = centre - direction * (span + 1) + normal * rng.uniform(-span, span)
            # first contact along start + t * direction with any member's contact circle
            rel = pos - start
            along = rel @ direction
            across2 = (rel**2).sum(1) - along**2
            hit = across2 <= reach**2
            if not hit.any():
                continue
            t = along[hit] - np.sqrt(reach[hit] ** 2 - across2[hit])
            cand = start + direction * float(t.min())
            if _fits(pos, radii[:i], cand, radii[i], low):
                pos = np.vstack([pos, cand])
                break
        else:
            return None
    return pos


def _group(rng, radii, spacing, style: str, pack_min: int, pack_probability: float, chain_probability):
    """Relative centres of one group of ``len(radii)`` beads, or None when it did not fit."""
    k = len(radii)
    if k == 1:
        return np.zeros((1, 2))
    if style == "ballistic":
        return ballistic_group(rng, radii, spacing)
    if k >= pack_min and rng.random() < pack_probability:
        return lattice_pack(rng, radii, spacing)
    return grown_group(rng, radii, spacing, k == 2 or rng.random() < chain_probability)


def layout_family(
    rng: np.random.Generator,
    shape: tuple[int, int],
    sizes: list[int],
    radii: np.ndarray,
    spacing: tuple[float, float],
    style: str = "grown",
    gap_px: float = 1.0,
    pack_min: int = 8,
    pack_probability: float = 0.5,
    chain_probability: float = 0.4,
    max_attempts: int = 200,
) -> tuple[BeadLayout, np.ndarray]:
    """Place groups of beads (``sizes`` from :func:`.layout.group_sizes`, radii per bead in
    group order) in an image; see the module docstring.

    A group that finds no room after ``max_attempts`` random positions is split in two and
    tried again; a single bead that finds none is left out, so at densities near a full
    monolayer the layout may hold a few beads fewer than asked (the truth is what it holds).

    Returns
    -------
    layout : BeadLayout
        ``radius`` set; ``group_id`` / ``group_size`` as placed (split groups are new groups).
    index : ndarray of int
        Which of the asked beads (their index in ``radii``) each placed bead is.
    """
    if style not in STYLES:
        raise ValueError(f"layout style {style!r} is not one of {', '.join(STYLES)}")
    radii = np.asarray(radii, float)
    grid = _Grid(2 * float(radii.max(initial=1.0)) + gap_px + 1)
    h, w = shape
    queue, start = [], 0
    for s in sizes:
        queue.append(np.arange(start, start + s))
        start += s
    centres, kept, gid, gsize = [], [], [], []
    while queue:
        idx = queue.pop(0)
        rr = radii[idx]
        placed = None
        for _ in range(max_attempts):
            rel = _group(rng, rr, spacing, style, pack_min, pack_probability, chain_probability)
            if rel is None:
                continue
            rel = rel - rel.mean(0)
            # every bead at least touches the image: its centre within one radius of it
            low = np.max(-rel + (-rr[:, None] + 0.5), 0)
            high = np.min(np.array([h - 1, w - 1]) - rel + (rr[:, None] - 0.5), 0)
            if np.any(high < low):
                continue
            pts = rel + rng.uniform(low, high)
            if grid.clear(pts, rr, gap_px):
                placed = pts
                break
        if placed is None:
            if len(idx) > 1:
                queue += [idx[: len(idx) // 2], idx[len(idx) // 2 :]]
            continue
        grid.add(placed, rr)
        centres.append(placed)
        kept.append(idx)
        gid += [len(gsize) + 1] * len(idx)
        gsize.append(len(idx))
    if not centres:
        empty = np.zeros(0, np.int64)
        return BeadLayout(np.zeros((0, 2)), empty, empty, np.zeros(0)), empty
    index = np.concatenate(kept)
    per_bead = np.repeat(np.asarray(gsize, np.int64), gsize)
    return BeadLayout(np.vstack(centres), np.asarray(gid, np.int64), per_bead, radii[index]), index
