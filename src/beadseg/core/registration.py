"""Mask-to-image registration: find and undo masks that sit a few pixels off their beads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest mask shift (px) searched when a mask is registered onto its image's beads, by every
#: caller: `beadseg analyze` (``registration_radius_px``, ``owner_search_radius_px``), training
#: (``data.align_radius_px``), `beadseg fix-masks` and the functions below. The largest shift
#: found on the 79 dev tiles is 5.1 px (dy=5, dx=-1): a radius of 5 puts it on the edge of the
#: search, where it cannot be told from a larger shift cut off; 8 leaves 3 px of margin and
#: finds the same shifts as 5, 6 and 12 on every dev tile.
REGISTRATION_RADIUS_PX = 8


def shift_mask(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift a 2-D array by (dy, dx) pixels; pixels shifted in are zero (background)."""
    out = np.zeros_like(mask)
    h, w = mask.shape[:2]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src = mask[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    out[max(dy, 0) : h - max(-dy, 0), max(dx, 0) : w - max(-dx, 0)] = src
    return out


def bead_evidence(
    image: np.ndarray, background_sigma_px: float = 8.0, smooth_sigma_px: float = 1.0
) -> np.ndarray:
    """Per-pixel evidence of a dark bead, in units of the image's noise.

    ``image`` is ``H x W x C`` or an already grey ``H x W`` array.

    Grey level, background (a wide Gaussian) minus the image, smoothed at about the bead's core
    size, divided by a robust noise estimate (1.4826 x median absolute deviation). Beads are
    positive, flat background is ~N(0, 1).
    """
    from .filters import box_mean, gaussian_smooth
    from .images import to_grey

    grey = to_grey(image)
    # two box filters approximate a Gaussian of this sigma at a fraction of the cost
    box = max(int(round(background_sigma_px * np.sqrt(6))) | 1, 3)
    background = box_mean(grey, box, passes=2)
    resp = gaussian_smooth(background - grey, smooth_sigma_px, truncate=3.0)
    sample = resp[::3, ::3]  # noise statistics from a subsample: same answer, 9x less work
    med = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - med)))
    resp -= med
    resp /= max(noise, 1e-6)
    return resp


@dataclass(frozen=True)
class Registration:
    """Best integer shift of a mask onto its image's bead evidence.

    ``fit_zero`` and ``fit_best`` are the mean evidence (noise units) under the mask at (0, 0)
    and at the best shift ``(dy, dx)``; ``gain = fit_best / fit_zero - 1``. ``corr_zero`` and
    ``corr_best`` are the Pearson correlation of mask and evidence over all pixels at those
    shifts: scale-free, so comparable between images (about 0.5-0.8 for a mask drawn on its
    image, about 0 for a mask of another image). NaN for an empty mask.
    """

    dy: int
    dx: int
    fit_zero: float
    fit_best: float
    gain: float
    flagged: bool
    corr_zero: float = float("nan")
    corr_best: float = float("nan")

    @property
    def shift_px(self) -> float:
        return float(np.hypot(self.dy, self.dx))


def cross_sums(a: np.ndarray, b: np.ndarray, radius_px: int, dtype=np.float32) -> np.ndarray:
    """``C[dy + r, dx + r] = sum_x a(x) b(x + (dy, dx))`` for every shift in ``[-r, r]^2``.

    One FFT cross-correlation (zero-padded, so pixels shifted past the border count as zero, as
    with :func:`shift_mask`) instead of ``(2r + 1)^2`` shifted sums. ``dtype`` is that of the
    transforms: float64 keeps sums of 0/1 masks within 1e-6 of whole numbers on 4K frames.
    """
    from scipy import fft

    r = int(radius_px)
    h, w = a.shape
    shape = (fft.next_fast_len(h + r, real=True), fft.next_fast_len(w + r, real=True))
    fa = fft.rfft2(np.asarray(a, dtype), shape)
    fb = fft.rfft2(np.asarray(b, dtype), shape)
    full = fft.irfft2(np.conj(fa) * fb, shape)
    rows = np.arange(-r, r + 1) % shape[0]
    cols = np.arange(-r, r + 1) % shape[1]
    return full[np.ix_(rows, cols)].astype(np.float64)


def correlation_by_shift(a: np.ndarray, b: np.ndarray, radius_px: int) -> np.ndarray:
    """Pearson correlation of ``a`` shifted by every ``(dy, dx)`` in ``[-r, r]^2`` with ``b``.

    Means and standard deviations are those of the whole arrays (a shift of a few pixels hardly
    changes them). All NaN when either array is constant.
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    n = a.size
    sa, sb = float(a.std()), float(b.std())
    if sa == 0 or sb == 0:
        return np.full((2 * radius_px + 1,) * 2, np.nan)
    return (cross_sums(a, b, radius_px) / n - float(a.mean()) * float(b.mean())) / (sa * sb)


def register_mask(
    mask: np.ndarray,
    evidence: np.ndarray,
    radius_px: int = REGISTRATION_RADIUS_PX,
    min_shift_px: float = 2.0,
    min_gain: float = 0.15,
) -> Registration:
    """Find the integer shift that best aligns a mask with the bead evidence of its image.

    Flagged when the best shift is at least ``min_shift_px`` (Euclidean) and improves the fit by
    at least ``min_gain`` (relative): a mask that is clearly off its beads.
    """
    mask = np.asarray(mask, bool)
    r = int(radius_px)
    n = int(np.count_nonzero(mask))
    if n == 0:
        return Registration(0, 0, 0.0, 0.0, 0.0, False)
    sums = cross_sums(mask, evidence, r)
    fits = sums / n
    i, j = np.unravel_index(np.argmax(fits), fits.shape)
    dy, dx = int(i - r), int(j - r)
    zero, best = float(fits[r, r]), float(fits[i, j])
    gain = best / zero - 1 if zero > 0 else (np.inf if best > 0 else 0.0)
    flagged = bool(np.hypot(dy, dx) >= min_shift_px and gain >= min_gain and best > 0)
    # Pearson correlation of the 0/1 mask with the evidence, from the same sums
    p = n / mask.size
    se = float(evidence.std())
    scale = np.sqrt(p * (1 - p)) * se
    mean_e = float(evidence.mean())
    corr = (sums / mask.size - p * mean_e) / scale if scale > 0 else np.full_like(sums, np.nan)
    return Registration(dy, dx, zero, best, float(gain), flagged, float(corr[r, r]), float(corr[i, j]))


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` blocks (the last partial rows/columns are dropped).

    Sums of strided views: 30x faster than ``reshape(...).mean((1, 3))`` on a 512 x 512 array
    (0.05 vs 1.7 ms).
    """
    h, w = values.shape[0] // factor, values.shape[1] // factor
    v = values[: h * factor, : w * factor]
    rows = v[0::factor].astype(np.float32)
    for k in range(1, factor):
        rows += v[k::factor]
    out = rows[:, 0::factor].copy()
    for k in range(1, factor):
        out += rows[:, k::factor]
    return out / (factor * factor)


def align_mask(
    image: np.ndarray,
    mask: np.ndarray,
    radius_px: int = REGISTRATION_RADIUS_PX,
    min_shift_px: float = 2.0,
    min_gain: float = 0.15,
) -> tuple[np.ndarray, Registration]:
    """Shift a mask onto its beads when :func:`register_mask` flags it; otherwise return it as is."""
    reg = register_mask(mask, bead_evidence(image), radius_px, min_shift_px, min_gain)
    if reg.flagged:
        return shift_mask(mask, reg.dy, reg.dx), reg
    return mask, reg


def fix_masks(
    data, out, radius_px: int = REGISTRATION_RADIUS_PX, min_shift_px: float = 2.0, min_gain: float = 0.15
) -> list[dict]:
    """Write re-registered masks for flagged images and copies of the rest; never touches ``data``.

    Writes ``out/images`` (copies), ``out/masks`` and ``out/shifts.csv``, every file atomically
    (a killed run leaves no truncated file under a final name). ``out`` may not be ``data``,
    hold it, or reach into it through a link.

    Returns
    -------
    list of dict
        One row per image: name, dy, dx, fit_zero, fit_best, gain, fixed.
    """
    import shutil
    from pathlib import Path

    from .errors import InputError
    from .files import atomic_path, find_pairs, write_csv
    from .limits import check_shift_radius
    from .masks import read_pair, write_mask

    check_shift_radius(radius_px, "--radius")
    data, out = Path(data), Path(out)
    data_r = data.resolve()
    inputs = [data_r, (data / "images").resolve(), (data / "masks").resolve()]
    for target in (out, out / "images", out / "masks"):
        t = target.resolve()  # follows links: out/masks linked to data/masks is caught
        if t in inputs or any(i in t.parents for i in inputs[1:]) or t in data_r.parents:
            raise InputError(
                f"--out {out}: {target} is (or leads into) the input folder {data}; fix-masks "
                "never writes into its input: give another --out"
            )
    pairs = find_pairs(data)
    rows = []
    for p in pairs:
        image, info = read_pair(p)
        mask, reg = align_mask(image, info.mask, radius_px, min_shift_px, min_gain)
        write_mask(out / "masks" / f"{p.name}.png", mask)
        with atomic_path(out / "images" / p.image.name) as tmp:
            shutil.copy2(p.image, tmp)
        rows.append(
            {
                "name": p.name,
                "dy": reg.dy,
                "dx": reg.dx,
                "fit_zero": round(reg.fit_zero, 4),
                "fit_best": round(reg.fit_best, 4),
                "gain": round(reg.gain, 4),
                "fixed": reg.flagged,
            }
        )
    write_csv(out / "shifts.csv", rows)
    return rows


def scaled_about_centre(values: np.ndarray, scale: float) -> np.ndarray:
    """``values`` magnified by ``scale`` about the array centre (linear interpolation).

    For the reduced (block-mean) copies of the mask-scale search only; masks themselves are
    never interpolated.
    """
    from scipy import ndimage as ndi

    c = (np.array(values.shape, float) - 1) / 2
    inverse = np.diag([1 / scale, 1 / scale])
    return ndi.affine_transform(np.asarray(values, np.float32), inverse, c - inverse @ c, order=1)


def best_scale(
    mask_small: np.ndarray, evidence_small: np.ndarray, scales, radius: int
) -> tuple[float, float]:
    """The scale (about the centre) at which a reduced mask correlates best with the reduced
    evidence, shifts up to ``radius`` allowed; returns (scale, correlation)."""
    best = (1.0, -np.inf)
    for s in scales:
        c = correlation_by_shift(
            scaled_about_centre(mask_small, s) if s != 1 else mask_small, evidence_small, radius
        )
        v = float(np.nanmax(c)) if np.isfinite(c).any() else -np.inf
        if v > best[1]:
            best = (float(s), v)
    return best
