"""Exact-truth families: composites that randomise what a model could learn instead of beads.

A composite of the first generator (:func:`.compose.make_composite`) pastes each real bead as
it was cut, on a real background, at one touching distance: a model trained on such images
learns their look (the shipped model counted within 0.5 % on them and 4-10 % low on tiles of
another generator). A :class:`Family` draws, per bead and per image:

- **geometry** (:mod:`.packing`): centre spacing of touching beads in a range of diameters,
  pairs, chains, clumps and 2-D packs, densities up to a touching monolayer, beads cut by the
  image border (their centre outside: not in the count);
- **appearance**: sprites of every source frame given (a frame is drawn first, then one of its
  sprites, so frames with few isolated beads count as much), bead size (resampled about the
  centre: any sub-pixel centre), contrast and blur (focus);
- **image**: illumination gradient, blur, noise, JPEG compression, and faint smudges that are
  no beads (not in the truth).

Two families: ``train`` (what the shipped model trains on) and ``heldout`` (what the counting
benchmark scores on): other ranges, another way of building groups (ballistic aggregates, no
lattice packs); the benchmark also takes its sprites and backgrounds from frames the training
composites never use (``weights/default_split.json``), so its numbers are generalisation
numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ...core.errors import InputError
from ...core.filters import gaussian_blur


@dataclass(frozen=True)
class Family:
    """The random ranges of a family of composites (each value drawn uniformly in its range).

    Attributes
    ----------
    spacing : (float, float)
        Centre distance of touching beads, in the sum of their radii (1.0: just touching).
    scale : float
        Bead radius multiplied by ``U(1 - scale, 1 + scale)``.
    contrast : (float, float)
        Bead darkness (1 - transmission) multiplied by this.
    bead_blur_px : (float, float)
        Gaussian SD of each bead's blur (focus).
    image_blur_px, noise_sd : (float, float)
        Blur of the whole image; SD of Gaussian noise (in [0, 1] units).
    jpeg_probability : float
        Share of images saved through JPEG at a quality in ``jpeg_quality``.
    gradient : float
        Largest relative change of illumination across the image.
    smudges : (float, float)
        Faint out-of-focus smudges per 512 x 512 px (no beads: not in the truth; at most 8 %
        dark at their centre).
    min_darkness : float
        Every bead stays at least this dark at its darkest (its contrast is raised when its
        draw would make it fainter): a bead a person can see, and darker than any smudge. The
        faintest 5 % of the real sprites are 25 % dark.
    layout : str
        ``grown`` or ``ballistic`` (:mod:`.packing`).
    pack_probability : float
        ``grown``: share of groups of 8+ beads that are lattice packs.
    """

    name: str
    spacing: tuple[float, float]
    scale: float
    contrast: tuple[float, float]
    bead_blur_px: tuple[float, float]
    image_blur_px: tuple[float, float]
    noise_sd: tuple[float, float]
    jpeg_probability: float
    jpeg_quality: tuple[int, int]
    gradient: float
    smudges: tuple[float, float]
    layout: str
    pack_probability: float = 0.5
    min_darkness: float = 0.15

    def as_dict(self) -> dict:
        return asdict(self)


#: The two families. ``heldout`` differs from ``train`` in every range and in how groups are
#: built; the benchmark never tunes anything on it.
FAMILIES = {
    "train": Family(
        "train",
        spacing=(0.75, 1.1),
        scale=0.25,
        contrast=(0.55, 1.3),
        bead_blur_px=(0.0, 1.0),
        image_blur_px=(0.0, 0.7),
        noise_sd=(0.0, 0.02),
        jpeg_probability=0.5,
        jpeg_quality=(60, 95),
        gradient=0.15,
        smudges=(0.0, 4.0),
        layout="grown",
    ),
    "heldout": Family(
        "heldout",
        spacing=(0.8, 1.05),
        scale=0.2,
        contrast=(0.6, 1.2),
        bead_blur_px=(0.2, 1.3),
        image_blur_px=(0.0, 0.9),
        noise_sd=(0.003, 0.025),
        jpeg_probability=0.7,
        jpeg_quality=(50, 90),
        gradient=0.2,
        smudges=(1.0, 3.0),
        layout="ballistic",
    ),
}


def family(name: str) -> Family:
    """A family by name; an unknown one is a one-line error naming the known ones."""
    if name not in FAMILIES:
        raise InputError(f"unknown family {name!r}; use one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def bead_patch(sprite, centre, scale: float, contrast: float, blur_px: float, min_darkness: float = 0.0):
    """A sprite resampled so that its centre lands on ``centre`` (row, col; any sub-pixel
    position), its size times ``scale``, its darkness times ``contrast`` (raised so that its
    darkest pixel, mean over channels, is at least ``min_darkness``), blurred by ``blur_px``:
    ``(top, left, transmission h x w x C)``."""
    from scipy.ndimage import map_coordinates

    dark = 1.0 - sprite.transmission
    h, w = dark.shape[:2]
    half = int(np.ceil(max(h, w) / 2 * scale + 3 * blur_px)) + 2
    iy, ix = int(np.floor(centre[0])), int(np.floor(centre[1]))
    yy, xx = np.mgrid[iy - half : iy + half + 1, ix - half : ix + half + 1].astype(np.float64)
    coords = [sprite.center[0] + (yy - centre[0]) / scale, sprite.center[1] + (xx - centre[1]) / scale]
    planes = [map_coordinates(dark[..., c], coords, order=1, cval=0.0) for c in range(dark.shape[2])]
    out = np.stack(planes, -1)
    if blur_px > 0.05:
        out = gaussian_blur(out.astype(np.float32), blur_px)
    peak = float(out.mean(-1).max())
    if peak > 0 and contrast * peak < min_darkness:
        contrast = min_darkness / peak
    return iy - half, ix - half, (1.0 - contrast * out).astype(np.float32)


def multiply_in(image: np.ndarray, top: int, left: int, patch: np.ndarray) -> None:
    """``image[window] *= patch``, the window clipped to the image."""
    h, w = image.shape[:2]
    ph, pw = patch.shape[:2]
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + ph, h), min(left + pw, w)
    if y0 < y1 and x0 < x1:
        image[y0:y1, x0:x1] *= patch[y0 - top : y1 - top, x0 - left : x1 - left]


def smudge_patch(rng, radius_px: float):
    """A faint out-of-focus smudge: a broad Gaussian darkening (SD 1.2-2.5 bead radii, 3-8 %
    at its centre), grey."""
    sd = rng.uniform(1.2, 2.5) * radius_px
    half = int(np.ceil(3 * sd))
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    g = rng.uniform(0.03, 0.08) * np.exp(-(yy**2 + xx**2) / (2 * sd**2))
    return half, (1.0 - g)[..., None].astype(np.float32)


def degrade(rng, image: np.ndarray, fam: Family) -> np.ndarray:
    """Illumination gradient, blur, noise and (sometimes) JPEG of a float ``H x W x C`` image in
    [0, 1]; returns uint8."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[:h, :w] / max(h, w) - 0.5
    a = rng.uniform(-1, 1, 3) * fam.gradient
    image = image * (1 + a[0] * yy + a[1] * xx + a[2] * (yy**2 + xx**2 - 1 / 6))[..., None]
    sigma = rng.uniform(*fam.image_blur_px)
    if sigma > 0.05:
        image = gaussian_blur(image.astype(np.float32), sigma)
    image = image + rng.normal(0, rng.uniform(*fam.noise_sd), image.shape)
    out = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    if rng.random() < fam.jpeg_probability:
        out = jpeg(out, int(rng.integers(fam.jpeg_quality[0], fam.jpeg_quality[1] + 1)))
    return out


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """An 8-bit image through a JPEG encoder and decoder (its block artefacts)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image.squeeze()).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf)).reshape(image.shape)


def sprite_choices(rng, sprites, n: int) -> np.ndarray:
    """``n`` sprite indices: a source frame drawn uniformly, then one of its sprites."""
    from ...core.naming import source_frame

    by_frame: dict[str, list[int]] = {}
    for i, s in enumerate(sprites):
        by_frame.setdefault(source_frame(s.source), []).append(i)
    frames = sorted(by_frame)
    out = np.empty(n, np.int64)
    for k, f in enumerate(rng.integers(len(frames), size=n)):
        members = by_frame[frames[f]]
        out[k] = members[int(rng.integers(len(members)))]
    return out
