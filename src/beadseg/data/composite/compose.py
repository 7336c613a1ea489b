"""Exact-truth composites put together and written: sprites pasted at the layout's centres on a
background crop; images, masks, labels, centres and the sources used.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.beads import centre_inside
from ...core.errors import InputError
from .family import Family, bead_patch, degrade, multiply_in, smudge_patch, sprite_choices
from .layout import BeadLayout, TruthLevel, draw_labels, group_sizes, layout_beads, parse_levels
from .packing import layout_family
from .sources import Background, Sources, Sprite, collect_sources


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


def make_family_composite(
    rng: np.random.Generator, sources: Sources, level: TruthLevel, fam: Family, size: int = 512
) -> Composite:
    """One composite of ``level`` drawn from a :class:`~.family.Family`: every bead with its own
    sprite (frame first), size, contrast and blur, placed by the family's layout (beads may be
    cut by the border), smudges that are no beads, then the image's gradient, blur, noise and
    JPEG (:func:`~.family.degrade`). Labels are discs of each bead's radius (its sprite's
    annotated area, scaled)."""
    bg = sources.backgrounds[int(rng.integers(len(sources.backgrounds)))]
    background = _background_crop(rng, bg, size).astype(np.float32)
    n = int(round(level.n_beads * size * size / 512**2))
    sizes = group_sizes(rng, n, level.clump_fraction, level.max_group)
    sprite_index = sprite_choices(rng, sources.sprites, n)
    scale = rng.uniform(1 - fam.scale, 1 + fam.scale, n)
    radii = np.sqrt(np.array([sources.sprites[i].area_px for i in sprite_index], float) / np.pi) * scale
    layout, kept = layout_family(
        rng, (size, size), sizes, radii, fam.spacing, fam.layout, pack_probability=fam.pack_probability
    )
    sprite_index, scale = sprite_index[kept], scale[kept]
    image = np.array(background, np.float32)
    for k, centre in enumerate(layout.centers):
        contrast, blur = rng.uniform(*fam.contrast), rng.uniform(*fam.bead_blur_px)
        sprite = sources.sprites[int(sprite_index[k])]
        multiply_in(image, *bead_patch(sprite, centre, scale[k], contrast, blur, fam.min_darkness))
    for _ in range(int(rng.poisson(rng.uniform(*fam.smudges) * size * size / 512**2))):
        half, patch = smudge_patch(rng, sources.radius_px)
        multiply_in(image, int(rng.integers(size)) - half, int(rng.integers(size)) - half, patch)
    image8 = degrade(rng, np.clip(image, 0, 1), fam)
    labels = draw_labels((size, size), layout.centers, layout.radius)
    return Composite(image8, labels, layout, sprite_index, bg.source)


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
    from ...core.files import write_csv
    from ...core.images import write_image
    from ...core.masks import write_labels, write_mask

    write_image(out / "images" / f"{name}.png", c.image)
    write_mask(out / "masks" / f"{name}.png", c.mask)
    write_labels(out / "labels" / f"{name}.tif", c.labels)
    lay = c.layout
    columns = ["id", "x", "y", "group_id", "group_size", "sprite"]
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
    counted = centre_inside(lay.centers, c.labels.shape)
    if lay.radius is not None:  # a family composite: sizes differ, beads cut by the border
        columns += ["radius_px", "inside"]
        for row, r, ins in zip(rows, lay.radius, counted):
            row |= {"radius_px": round(float(r), 3), "inside": int(ins)}
    write_csv(out / "centres" / f"{name}.csv", rows, columns)
    grouped = int((lay.group_size > 1).sum())
    return {
        "name": name,
        "n_beads": int(counted.sum()),
        "n_cut_outside": int((~counted).sum()),
        "n_in_groups": grouped,
        "n_groups": int(len(np.unique(lay.group_id[lay.group_size > 1]))),
        "background": c.background,
    }


def _write_source_tables(out: Path, sources: Sources) -> None:
    from ...core.files import write_csv

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


def _compose_one(stage, sources, level, i, prefix, seed, size, family, layout_options) -> dict:
    """Image ``i`` of ``level`` written into ``stage``; its row of composites.csv."""
    rng = _image_seed(seed, level.name, i)
    if family is not None:
        c = make_family_composite(rng, sources, level, family, size)
    else:
        c = make_composite(rng, sources, level, size, **layout_options)
    row = _write_composite(stage, f"{prefix}_{level.name}_{i:03d}", c)
    return {**row, "level": level.name, "clump_fraction": level.clump_fraction}


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
    family: Family | None = None,
    **layout_options,
) -> CompositeSet:
    """Write an exact-truth data set made from the sparse labelled tiles of ``data`` (with
    ``family``, sprites from every tile: :func:`make_family_composite`).

    Parameters
    ----------
    out : path
        Output folder: ``images/NAME.png``, ``masks/NAME.png`` (0/255), ``labels/NAME.tif``
        (bead k of the centres table has id k), ``centres/NAME.csv`` (id, x, y, group_id,
        group_size, sprite; with ``family`` also radius_px, and inside: 0 for a bead cut by the
        border whose centre lies outside the image, not counted), ``composites.csv`` (one row
        per image, ``n_beads`` the count: centres inside), ``sprites.csv`` and
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
    family : Family, optional
        Randomise geometry, appearance and image (:mod:`.family`); ``layout_options`` then
        do not apply.
    **layout_options
        Passed to :func:`layout_beads` (``touch``, ``min_gap_px``, ``chain_probability``).

    Returns
    -------
    CompositeSet
    """
    import time

    from ...core.files import write_csv

    t0 = time.perf_counter()
    out, data = Path(out), Path(data)
    if out.resolve() == data.resolve():
        raise InputError(f"output folder {out} is the input folder; give another folder")
    levels = levels or parse_levels()
    sources = collect_sources(data, frames, max_bead_fraction, dense_sprites=family is not None)
    with _staged(out) as stage:
        rows = [
            _compose_one(stage, sources, level, i, prefix, seed, size, family, layout_options)
            for level in levels
            for i in range(n_per_level)
        ]
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
            family=family.as_dict() if family is not None else None,
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

    from ...outputs.provenance import write_provenance

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
