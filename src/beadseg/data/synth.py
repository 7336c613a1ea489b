"""Synthetic brightfield microbead images with exact masks and instance labels.

The images imitate the real tiles: dark, slightly blue-violet discs ~6 px across with a dark rim
and a lighter centre, on a flat grey background (~100/255) with uneven illumination, blur and
noise; beads isolated, in touching pairs and in chains/clusters. Every bead is a disc in the label
image, so ``mask == labels > 0`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError
from ..core.filters import gaussian_blur
from ..core.images import write_image
from ..core.masks import write_labels, write_mask
from ..core.naming import record_synthetic_names


@dataclass
class SynthImage:
    """One synthetic image: ``image`` uint8 H x W x 3, ``labels`` int32 H x W, bead centres."""

    image: np.ndarray
    labels: np.ndarray
    centers: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    radii: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def mask(self) -> np.ndarray:
        return self.labels > 0


def _place_beads(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    radius_px: float,
    radius_sd_px: float,
    cluster_fraction: float,
    min_gap_px: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place non-overlapping discs; a fraction of them touch others in chains/clusters."""
    h, w = shape
    labels = np.zeros(shape, np.int32)
    centers, radii = [], []
    attempts = 0
    max_attempts = 60 * max(n, 1)
    while len(centers) < n and attempts < max_attempts:
        attempts += 1
        r = float(np.clip(rng.normal(radius_px, radius_sd_px), 0.6 * radius_px, 1.6 * radius_px))
        clustered = bool(centers) and rng.random() < cluster_fraction
        if clustered:
            # touch an existing bead: centre at distance r_i + r (+ up to half a pixel)
            i = rng.integers(len(centers))
            ang = rng.uniform(0, 2 * np.pi)
            dist = radii[i] + r + rng.uniform(0.3, 0.9)
            cy, cx = centers[i][0] + dist * np.sin(ang), centers[i][1] + dist * np.cos(ang)
        else:
            cy, cx = rng.uniform(-r / 2, h - 1 + r / 2), rng.uniform(-r / 2, w - 1 + r / 2)
        # free space needed: the disc itself, plus a gap for beads that are meant to stand alone
        rr = r + (0.0 if clustered else min_gap_px)
        y0, y1 = max(int(np.floor(cy - rr)), 0), min(int(np.ceil(cy + rr)) + 1, h)
        x0, x1 = max(int(np.floor(cx - rr)), 0), min(int(np.ceil(cx + rr)) + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        disc = d2 <= r * r
        if disc.sum() < 3 or np.any(labels[y0:y1, x0:x1][d2 <= rr * rr]):
            continue  # touching is fine (watershed must split it), overlap is not
        labels[y0:y1, x0:x1][disc] = len(centers) + 1
        centers.append((cy, cx))
        radii.append(r)
    return labels, np.array(centers, float).reshape(-1, 2), np.array(radii, float)


def _render(
    rng: np.random.Generator,
    shape: tuple[int, int],
    centers: np.ndarray,
    radii: np.ndarray,
    background: float,
    contrast: float,
    illumination: float,
    blur_sigma: float,
    noise_sd: float,
) -> np.ndarray:
    h, w = shape
    darkness = np.zeros(shape, np.float32)
    for (cy, cx), r in zip(centers, radii):
        pad = r + 2
        y0, y1 = max(int(cy - pad), 0), min(int(cy + pad) + 2, h)
        x0, x1 = max(int(cx - pad), 0), min(int(cx + pad) + 2, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / r
        # dark rim, lighter centre, soft edge over ~half a pixel
        profile = np.where(d <= 1, 0.7 + 0.3 * d**2, np.clip(1 - (d - 1) * r / 0.8, 0, 1))
        np.maximum(darkness[y0:y1, x0:x1], profile.astype(np.float32), out=darkness[y0:y1, x0:x1])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(ang) * xx / max(w, 1) + np.sin(ang) * yy / max(h, 1)) - 0.5
    vignette = (xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2
    illum = 1 + illumination * ramp - 0.5 * illumination * vignette
    # beads are darker in red/green than in blue: blue-violet tint
    tint = np.array([1.0, 0.95, 0.6], np.float32) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    grey_tint = np.array([1.0, 1.01, 0.98], np.float32)
    img = background * illum[..., None] * grey_tint * (1 - contrast * darkness[..., None] * tint)
    img = gaussian_blur(img, blur_sigma)
    img = img + rng.normal(0, noise_sd, img.shape).astype(np.float32)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def synth_image(
    size: int | tuple[int, int] = 512,
    n_beads: int = 200,
    seed: int | np.random.Generator | None = 0,
    radius_px: float = 3.4,
    radius_sd_px: float = 0.35,
    cluster_fraction: float | None = None,
    background: float | None = None,
    contrast: float | None = None,
    illumination: float = 0.08,
    blur_sigma: float = 0.7,
    noise_sd: float = 0.012,
    min_gap_px: float = 0.0,
) -> SynthImage:
    """Make one synthetic brightfield bead image.

    Parameters
    ----------
    size : int or (int, int)
        Image height and width in pixels.
    n_beads : int
        Beads to place (fewer when the image is too full to place them without overlap).
    seed : int or Generator
        Random seed; the same seed gives the same image.
    radius_px, radius_sd_px : float
        Bead radius distribution (default ~3 px, like the real data).
    cluster_fraction : float, optional
        Probability that a bead is placed touching an existing one. Default grows with density
        (real low-dilution frames clump).
    background, contrast : float, optional
        Background grey level in [0, 1] and bead darkness; drawn at random when None.
    illumination, blur_sigma, noise_sd : float
        Uneven illumination amplitude, Gaussian blur sigma (px) and noise SD (in [0, 1] units).
    min_gap_px : float
        Free space kept around beads that are not placed in a cluster (2 keeps them apart).

    Returns
    -------
    SynthImage

    Examples
    --------
    >>> s = synth_image(64, n_beads=5, seed=1)
    >>> s.image.shape, s.labels.max()
    ((64, 64, 3), 5)
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = (size, size) if isinstance(size, int) else tuple(size)
    area_frac = n_beads * np.pi * radius_px**2 / (shape[0] * shape[1])
    if cluster_fraction is None:
        cluster_fraction = float(np.clip(0.1 + 2.5 * area_frac, 0.1, 0.6))
    background = rng.uniform(0.3, 0.6) if background is None else background
    contrast = rng.uniform(0.3, 0.5) if contrast is None else contrast
    labels, centers, radii = _place_beads(
        rng, shape, n_beads, radius_px, radius_sd_px, cluster_fraction, min_gap_px
    )
    image = _render(rng, shape, centers, radii, background, contrast, illumination, blur_sigma, noise_sd)
    return SynthImage(image, labels, centers, radii)


def _write_one(out: Path, name: str, s: SynthImage) -> None:
    write_image(out / "images" / f"{name}.png", s.image)
    write_mask(out / "masks" / f"{name}.png", s.mask)
    write_labels(out / "labels" / f"{name}.tif", s.labels)


#: the largest synthetic image side: one 4096 x 4096 image peaks at 1.8 GB of memory (measured;
#: memory grows with the area, so 8192 px would need ~7 GB)
MAX_SIZE_PX = 4096


def _check_sizes(size: int, seed: int) -> None:
    if not 16 <= size <= MAX_SIZE_PX:
        raise ConfigError(f"size {size} px is out of range; give 16 to {MAX_SIZE_PX} px")
    if seed < 0:
        raise ConfigError(f"seed {seed} is negative; give a seed >= 0")


def synth_dataset(
    out: str | Path,
    n: int = 8,
    size: int = 512,
    seed: int = 0,
    min_beads: int = 3,
    max_beads: int = 750,
    progress=None,
) -> list[str]:
    """Write ``n`` synthetic pairs to ``out/images``, ``out/masks`` and ``out/labels``;
    ``progress()`` is called after each.

    Bead counts span ``min_beads`` to ``max_beads`` (per 512x512, scaled to ``size``) on a log
    scale, so the set covers sparse to dense images like a dilution series.

    Returns
    -------
    list of str
        The names written.
    """
    _check_sizes(size, seed)
    if not 0 <= min_beads <= max_beads:
        raise ConfigError(
            f"min_beads {min_beads} / max_beads {max_beads}: need 0 <= min_beads <= max_beads "
            "(e.g. --min-beads 3 --max-beads 750)"
        )
    out = Path(out)
    rng = np.random.default_rng(seed)
    scale = (size / 512) ** 2
    counts = np.geomspace(max(min_beads * scale, 1), max(max_beads * scale, 1), max(n, 1))
    rng.shuffle(counts)
    names = []
    for i, c in enumerate(counts[:n]):
        name = f"synth_{i:03d}"
        _write_one(out, name, synth_image(size, int(round(c)), seed=rng))
        names.append(name)
        if progress is not None:
            progress()
    record_synthetic_names(out, names, "beadseg synth")
    return names


SERIES_DILUTIONS = (160, 320, 640, 1280, 2560, 5120)
#: images of the default series: 6 dilutions x 2 frames x 2 tiles
SERIES_IMAGES = len(SERIES_DILUTIONS) * 2 * 2


def synth_dilution_series(
    out: str | Path,
    dilutions: tuple[int, ...] = SERIES_DILUTIONS,
    frames_per_dilution: int = 2,
    tiles_per_frame: int = 2,
    size: int = 256,
    beads_at_160x_per_mp: float = 2200.0,
    seed: int = 0,
    progress=None,
) -> list[str]:
    """Write a synthetic dilution series named like the real data.

    Bead density per megapixel is ``beads_at_160x_per_mp * 160 / dilution`` (Poisson), so the
    true log-log slope of density against dilution is -1. Names are
    ``<dilution>x_synthframe<k>_grid_r0_c<j>``; ``progress()`` is called after each image.
    """
    _check_sizes(size, seed)
    out = Path(out)
    rng = np.random.default_rng(seed)
    names = []
    for d in dilutions:
        for k in range(frames_per_dilution):
            for j in range(tiles_per_frame):
                lam = beads_at_160x_per_mp * 160 / d * size * size / 1e6
                name = f"{d}x_synthframe{k}_grid_r0_c{j}"
                s = synth_image(size, int(rng.poisson(lam)), seed=rng, cluster_fraction=0.1)
                _write_one(out, name, s)
                names.append(name)
                if progress is not None:
                    progress()
    record_synthetic_names(out, names, "beadseg synth --dilution-series")
    return names


def synth_tiled_frame(
    out: str | Path,
    frame_name: str = "640x_synthframe",
    rows: int = 2,
    cols: int = 3,
    tile: int = 128,
    overlap_px: int = 37,
    n_beads: int = 200,
    seed: int = 0,
) -> list[str]:
    """Cut one synthetic frame into a grid of overlapping tiles named like the real data.

    Neighbouring tiles share ``overlap_px`` columns (and rows), so their masks agree exactly on
    the shared strips. Returns the tile names ``<frame_name>_grid_r<r>_c<c>``.
    """
    out = Path(out)
    step = tile - overlap_px
    h, w = tile + step * (rows - 1), tile + step * (cols - 1)
    frame = synth_image((h, w), n_beads, seed=seed)
    names = []
    for r in range(rows):
        for c in range(cols):
            sl = (slice(r * step, r * step + tile), slice(c * step, c * step + tile))
            name = f"{frame_name}_grid_r{r}_c{c}"
            lab = frame.labels[sl]
            _write_one(out, name, SynthImage(frame.image[sl], lab))
            names.append(name)
    record_synthetic_names(out, names, "beadseg synth (tiled frame)")
    return names
