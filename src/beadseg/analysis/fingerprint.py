"""Per-image measurements at native resolution (one image in memory at a time).

Definitions used in the report:

* brightness: mean grey level (mean of the channels) in 0-255 units;
* contrast: RMS contrast, the standard deviation of the grey level in 0-255 units;
* bead contrast: ``(background - bead) / background`` with background the median grey level
  outside the mask and bead the mean grey level inside it (> 0: beads darker than background);
* bead evidence: background-subtracted darkness in units of the image's noise
  (:func:`beadseg.core.registration.bead_evidence`);
* green cast: ``(G - R) / grey`` of the background; bead blue ratio: how much the beads darken the
  blue channel relative to the green one (the two colour features that tell the synthetic tiles
  from the real ones, see :mod:`beadseg.analysis.domains`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.beads import count_beads, local_maxima
from ..core.files import Pair
from ..core.filters import window_max
from ..core.images import to_grey
from ..core.labels import label_components
from ..core.masks import read_pair_meta
from ..core.naming import parse_name
from ..core.registration import Registration, bead_evidence, block_mean, register_mask, shift_mask
from .domains import domain_of

SMALL_SIDE_PX = 128  # side of the reduced evidence/mask kept per image for the owner search


@dataclass
class ImageArrays:
    """Arrays of one image that the set-level checks need (not written to per_image.csv)."""

    areas: np.ndarray  # pixel area of each mask component
    labelled_peak: np.ndarray  # strongest evidence peak inside each component (floor if none)
    peak_values: np.ndarray  # evidence of every candidate peak
    peak_unlabelled: np.ndarray  # bool: candidate with no mask within the tolerance
    peak_rc: np.ndarray  # (n, 2) row, column of each candidate
    mask_small: np.ndarray  # block mean of the mask (owner search)
    evidence_small: np.ndarray  # block mean of the evidence (owner search)
    small_factor: int
    content_hash: str = ""  # identical pixels
    average_hash: bytes = b""  # 16 x 16 block-mean hash: near-identical pixels
    strips: dict | None = None  # edge strips (grey uint8, mask) of grid tiles
    thumbnail: np.ndarray | None = None


@dataclass
class ImageMeasurement:
    """Everything the dataset doctor measures on one image/mask pair.

    The scalar fields are one row of ``per_image.csv`` (:meth:`row`); ``arrays`` feeds the checks.
    """

    name: str
    image_file: str
    mask_file: str
    source_frame: str
    dilution: int | None
    tile_row: int | None
    tile_col: int | None
    domain: str
    height: int
    width: int
    channels: int
    dtype: str
    bit_depth: int
    format: str
    mask_kind: str
    soft_mask: bool
    empty_mask: bool
    objects: int
    beads_split: int | None  # None when measured for grading only
    foreground_fraction: float
    mean_object_area_px: float
    median_object_area_px: float
    median_equivalent_diameter_px: float
    border_objects: int
    brightness: float
    contrast: float
    background_level: float
    bead_level: float
    bead_contrast: float
    green_cast: float
    bead_blue_ratio: float
    registration: Registration
    arrays: ImageArrays = field(repr=False)

    @property
    def area_mp(self) -> float:
        return self.height * self.width / 1e6

    def row(self) -> dict:
        """The scalar measurements as one ``per_image.csv`` row."""
        out = {k: v for k, v in asdict(self).items() if k not in ("registration", "arrays")}
        reg = self.registration
        out.update(
            {
                "registration_dy": reg.dy,
                "registration_dx": reg.dx,
                "registration_shift_px": reg.shift_px,
                "registration_fit_zero": reg.fit_zero,
                "registration_fit_best": reg.fit_best,
                "registration_gain": reg.gain,
                "mask_corr_zero": reg.corr_zero,
                "mask_corr_best": reg.corr_best,
                "misregistered": reg.flagged,
            }
        )
        return out


def _peaks(evidence: np.ndarray, floor: float, min_distance_px: int = 2):
    """Bead candidates: the :func:`~beadseg.core.beads.local_maxima` of the evidence at or
    above ``floor``, as (rows, cols, values)."""
    rows, cols = np.nonzero(local_maxima(evidence, min_distance_px, floor))
    return rows, cols, evidence[rows, cols]


def _colour(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Green cast of the background and the bead blue ratio (NaN without beads or colour).

    Channel sums over every 2nd pixel (the same means, 4x cheaper), plane by plane: 7x faster
    than boolean indexing of the H x W x 3 array (measured 0.23 vs 1.7 ms per 512 x 512 tile).
    """
    if image.shape[-1] < 3:
        return float("nan"), float("nan")
    m = mask[::2, ::2]
    w = m.astype(np.float32)
    n_fg = float(w.sum())
    n_bg = m.size - n_fg
    tot = np.array([float(image[::2, ::2, c].sum()) for c in range(3)])
    fg = np.array([float((image[::2, ::2, c] * w).sum()) for c in range(3)])
    bg = (tot - fg) / n_bg if n_bg else tot / m.size
    cast = float((bg[1] - bg[0]) / max(bg.mean(), 1e-6))
    if not n_fg:
        return cast, float("nan")
    darkening = bg - fg / n_fg
    ratio = float(darkening[2] / darkening[1]) if darkening[1] > 1e-3 else float("nan")
    return cast, ratio


def _object_stats(mask: np.ndarray, rows, cols, vals, floor: float, components):
    """Areas of the components, border objects and each one's strongest peak."""
    comps, n = components
    if n == 0:
        return np.zeros(0, np.int64), 0, np.zeros(0)
    areas = np.bincount(comps.ravel(), minlength=n + 1)[1:]
    border = np.concatenate([comps[0], comps[-1], comps[:, 0], comps[:, -1]])
    n_border = int(np.count_nonzero(np.bincount(border, minlength=n + 1)[1:]))
    # strongest candidate peak inside each object; objects without one sit at the floor
    labelled = np.full(n + 1, float(floor))
    inside = comps[rows, cols]
    np.maximum.at(labelled, inside[inside > 0], vals[inside > 0])
    return areas, n_border, labelled[1:]


def _strips(g8: np.ndarray, mask: np.ndarray, s: int) -> dict:
    return {
        "left": (g8[:, :s], mask[:, :s]),
        "right": (g8[:, -s:], mask[:, -s:]),
        "top": (g8[:s], mask[:s]),
        "bottom": (g8[-s:], mask[-s:]),
    }


def _levels(grey: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Background median (every 2nd pixel: the same value to 1e-3) and bead mean, 0-1 units."""
    sub_bg = grey[::2, ::2][~mask[::2, ::2]]
    if sub_bg.size:
        bg = float(np.median(sub_bg))
    else:
        bg = float(np.median(grey[~mask])) if (~mask).any() else float("nan")
    bead = float(grey[mask].mean()) if mask.any() else float("nan")
    return bg, bead


def _arrays(
    mask, grey, evidence, peaks, areas_peak, reg: Registration, name, settings: dict, full: bool
) -> ImageArrays:
    rows, cols, vals = peaks
    h, w = mask.shape
    # candidates are matched to the mask at its best shift: a shifted mask is not also "partial"
    placed = shift_mask(mask, reg.dy, reg.dx) if reg.flagged else mask
    near_mask = window_max(placed, settings["label_tolerance_px"])  # chessboard distance <= tol
    factor = max(1, min(h, w) // SMALL_SIDE_PX)
    arrays = ImageArrays(
        areas=areas_peak[0],
        labelled_peak=areas_peak[1],
        peak_values=vals,
        peak_unlabelled=~near_mask[rows, cols],
        peak_rc=np.stack([rows, cols], 1),
        mask_small=block_mean(mask, factor),
        evidence_small=block_mean(evidence, factor),
        small_factor=factor,
    )
    if full:
        g8 = np.round(grey * 255).astype(np.uint8)
        arrays.content_hash = hashlib.blake2b(g8.tobytes()).hexdigest()
        arrays.average_hash = _average_hash(grey)
        if name.row is not None:  # edge strips, for the overlap agreement of grid neighbours
            arrays.strips = _strips(g8, mask, settings["max_overlap_px"])
        if settings.get("keep_thumbnail"):
            arrays.thumbnail = _thumbnail(grey)
    return arrays


def measure_image(pair: Pair, settings: dict) -> ImageMeasurement:
    """Everything the dataset doctor needs from one image/mask pair (see :class:`ImageMeasurement`).

    ``settings`` holds the :class:`~beadseg.core.config.AnalyzeConfig` fields; with
    ``settings["grading_only"]`` the measurements only label grading needs are made (no bead
    split count, hashes or edge strips: about half the time).
    """
    full = not settings.get("grading_only", False)
    image, info, meta = read_pair_meta(pair)
    name = parse_name(pair.name)
    mask = info.mask
    grey = to_grey(image)
    evidence = bead_evidence(grey)
    peaks = _peaks(evidence, settings["peak_floor"])
    components = label_components(mask)  # once: object stats and the bead count share it
    areas, n_border, labelled_peak = _object_stats(mask, *peaks, settings["peak_floor"], components)
    reg = register_mask(
        mask,
        evidence,
        settings["registration_radius_px"],
        settings["registration_min_shift_px"],
        settings["registration_min_gain"],
    )
    bg_level, bead_level = _levels(grey, mask)
    cast, blue = _colour(image, mask) if full else (float("nan"), float("nan"))
    n_comp = len(areas)
    return ImageMeasurement(
        name=pair.name,
        image_file=pair.image.name,
        mask_file=pair.mask.name,
        source_frame=name.source_frame,
        dilution=name.dilution,
        tile_row=name.row,
        tile_col=name.col,
        domain=domain_of(pair.name, pair.image.parent.parent),
        height=mask.shape[0],
        width=mask.shape[1],
        channels=meta["channels"],
        dtype=meta["dtype"],
        bit_depth=meta["bit_depth"],
        format=meta["format"],
        mask_kind=info.kind,
        soft_mask=info.soft,
        empty_mask=n_comp == 0,
        objects=n_comp,
        beads_split=count_beads(mask, settings["min_distance_px"], components) if full else None,
        foreground_fraction=float(np.count_nonzero(mask) / mask.size),
        mean_object_area_px=float(areas.mean()) if n_comp else 0.0,
        median_object_area_px=float(np.median(areas)) if n_comp else 0.0,
        median_equivalent_diameter_px=float(np.median(np.sqrt(4 * areas / np.pi))) if n_comp else 0.0,
        border_objects=n_border,
        brightness=float(grey.mean() * 255),
        contrast=float(grey.std() * 255),
        background_level=bg_level * 255,
        bead_level=bead_level * 255,
        bead_contrast=(bg_level - bead_level) / bg_level if n_comp and bg_level > 0 else float("nan"),
        green_cast=cast,
        bead_blue_ratio=blue,
        registration=reg,
        arrays=_arrays(mask, grey, evidence, peaks, (areas, labelled_peak), reg, name, settings, full),
    )


def _thumbnail(grey: np.ndarray, side: int = 64) -> np.ndarray:
    h, w = grey.shape
    return grey[:: max(h // side, 1), :: max(w // side, 1)][:side, :side].copy()


def _average_hash(grey: np.ndarray, side: int = 16) -> bytes:
    """16x16 block-mean hash: equal for the same content, tolerant of re-encoding."""
    h, w = grey.shape
    side = min(side, h, w)
    bh, bw = h // side, w // side
    small = grey[: bh * side, : bw * side].reshape(side, bh, side, bw).mean((1, 3))
    return np.packbits(small > np.median(small)).tobytes()


def measure_all(
    pairs, cfg, workers: int | None = None, progress: bool = False, grading_only: bool = False
) -> list[ImageMeasurement]:
    """Measure every pair with the settings of an AnalyzeConfig ``cfg``, ``workers`` at a time
    (default: CPU count, capped at 4), in the order of ``pairs``.

    Threads: numpy, Pillow's decoder and scipy.fft release the GIL for most of the per-image
    work (scipy.ndimage does not); a process pool would need fork, which can deadlock a process
    that already runs threads, or spawn, which re-imports the caller's main module.
    """
    from concurrent.futures import ThreadPoolExecutor
    from functools import partial

    settings = {**cfg.model_dump(), "grading_only": grading_only}
    workers = min(workers or min(os.cpu_count() or 1, 4), len(pairs))
    work = partial(measure_image, settings=settings)
    if workers <= 1:
        return list(_progress(map(work, pairs), len(pairs), progress))
    with ThreadPoolExecutor(workers, thread_name_prefix="beadseg-measure") as pool:
        return list(_progress(pool.map(work, pairs), len(pairs), progress))


def _progress(results, total: int, show: bool):
    if not show:
        return results
    from rich.progress import track

    return track(results, total=total, description="measuring images", transient=True)
