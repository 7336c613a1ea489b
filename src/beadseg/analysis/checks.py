"""Dataset-level checks over the per-image measurements: missing labels, masks filed under the
wrong image, label quality, mask registration, leakage and agreement of overlapping tiles.

Every check reads the :class:`~beadseg.analysis.fingerprint.ImageMeasurement` list and returns a
dataclass; none changes its arguments.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..core.beads import clumps
from ..core.config import BLOB_AREA_RATIO
from ..core.registration import REGISTRATION_RADIUS_PX, best_scale, correlation_by_shift
from .domains import REAL
from .overlaps import Leakage, OverlapAgreement, leakage_groups, overlap_agreement


@dataclass
class MissingLabels:
    """Bead candidates without a mask, per image.

    ``unlabelled_fraction = unlabelled candidates / (mask objects + unlabelled candidates)``; an
    image is flagged when it is at least ``max_fraction`` and there are at least ``min_count``
    candidates. ``detector_threshold[domain]`` is the domain's threshold; an image with at least
    three labelled objects uses ``max(domain threshold, relative x the median evidence of its own
    labelled objects)`` (``image_threshold[name]``): in a sparse, flat tile the noise is tiny and
    faint specks reach the domain threshold, but they look nothing like the beads annotated there.
    """

    detector_threshold: dict[str, float]
    image_threshold: dict[str, float]
    max_fraction: float
    min_count: int
    unlabelled_candidates: dict[str, int]
    unlabelled_fraction: dict[str, float]
    flagged: list[str]
    faint_candidates: dict[str, int]  # unlabelled, above the domain's threshold, below the image's

    def median_fraction(self, names) -> float:
        v = [self.unlabelled_fraction[n] for n in names]
        return float(np.median(v)) if v else float("nan")


def missing_label_threshold(measurements, floor: float, relative: float) -> float:
    """Evidence a detector peak needs to count as a bead, tuned on the set's labelled beads.

    ``max(floor, relative * median evidence of labelled objects)``: the detector is calibrated
    on what the annotated beads of these very images look like.
    """
    labelled = np.concatenate([m.arrays.labelled_peak for m in measurements] + [np.zeros(0)])
    if len(labelled) == 0:
        return float(floor)
    return float(max(floor, relative * np.median(labelled)))


def missing_labels(
    measurements, floor: float, relative: float, max_fraction: float, min_count: int
) -> MissingLabels:
    """Score each image by the share of bead candidates with no mask under them."""
    by_domain = defaultdict(list)
    for m in measurements:
        by_domain[m.domain].append(m)
    thresholds = {d: missing_label_threshold(ms, floor, relative) for d, ms in by_domain.items()}
    image_thr, counts, fractions, flagged, faint = {}, {}, {}, [], {}
    for m in measurements:
        a = m.arrays
        thr = thresholds[m.domain]
        if len(a.labelled_peak) >= 3:
            thr = max(thr, relative * float(np.median(a.labelled_peak)))
        unl = int(np.count_nonzero((a.peak_values >= thr) & a.peak_unlabelled))
        faint[m.name] = (
            int(np.count_nonzero((a.peak_values >= thresholds[m.domain]) & a.peak_unlabelled)) - unl
        )
        frac = unl / max(m.objects + unl, 1)
        image_thr[m.name], counts[m.name], fractions[m.name] = thr, unl, frac
        if frac >= max_fraction and unl >= min_count:
            flagged.append(m.name)
    return MissingLabels(thresholds, image_thr, max_fraction, min_count, counts, fractions, flagged, faint)


#: The reasons :func:`mask_polarity` gives (each makes a label unusable).
INVERTED = "inverted (beads 0, background 255): save beads as 255"
WHOLE_IMAGE = "mask covers the whole image"


def mask_polarity(measurements) -> dict[str, str]:
    """Masks that cannot describe beads on a background, each with the reason.

    A mask whose every pixel is foreground covers the whole image (:data:`WHOLE_IMAGE`). A
    mask whose foreground covers most of the image (more than half) while the image's bead
    evidence lies under its background (negative correlation of mask and evidence) is
    inverted (:data:`INVERTED`): the beads were saved as 0 and the background as 255. Dense
    masks drawn the right way round correlate positively with the evidence (the synthetic dev
    tiles: 57 % foreground, correlation +0.5), and the masks of bright beads on a dark
    background, which correlate negatively with darkness, cover little of their image.
    """
    out = {}
    for m in measurements:
        if m.foreground_fraction >= 1.0:
            out[m.name] = WHOLE_IMAGE
        elif m.foreground_fraction > 0.5 and m.registration.corr_zero < 0:
            out[m.name] = INVERTED
    return out


@dataclass(frozen=True)
class MaskFit:
    """How well one mask fits its image, and which image it belongs to when not its own.

    ``fit`` is the mask/evidence correlation at the best shift; ``reference`` the median fit of
    the other tiles of its source frame (or, with fewer than two of those, of its domain).
    ``belongs_to`` names another image of the set whose beads the mask matches ("" when none
    does or the mask fits its own image); ``belongs_fit`` is that match's correlation at the
    reduced scale of the search, ``own_fit_small`` the mask's own at that scale.
    """

    name: str
    fit: float
    reference: float
    reference_of: str
    fits_image: bool
    belongs_to: str = ""
    belongs_fit: float = float("nan")
    own_fit_small: float = float("nan")


@dataclass
class MaskFits:
    """Result of :func:`mask_fits`: one :class:`MaskFit` per image."""

    fit_ratio: float
    per_image: dict[str, MaskFit]

    @property
    def not_fitting(self) -> list[str]:
        return [n for n, f in self.per_image.items() if not f.fits_image]

    @property
    def misfiled(self) -> dict[str, str]:
        return {n: f.belongs_to for n, f in self.per_image.items() if f.belongs_to}


def _references(measurements, values: dict[str, float]) -> dict[str, tuple[float, str]]:
    """Median of the other tiles of a frame (>= 2 of them), else of the domain (>= 2)."""
    by_frame, by_domain = defaultdict(list), defaultdict(list)
    for m in measurements:
        if np.isfinite(values[m.name]):
            by_frame[m.source_frame].append(m.name)
            by_domain[m.domain].append(m.name)
    out = {}
    for m in measurements:
        for group, label in ((by_frame[m.source_frame], "source frame"), (by_domain[m.domain], "domain")):
            others = [values[n] for n in group if n != m.name]
            if len(others) >= 2:
                out[m.name] = (float(np.median(others)), label)
                break
        else:
            out[m.name] = (float("nan"), "none")
    return out


def _small_fit(mask_small: np.ndarray, evidence_small: np.ndarray, radius: int) -> float:
    c = correlation_by_shift(mask_small, evidence_small, radius)
    return float(np.nanmax(c)) if np.isfinite(c).any() else float("nan")


def _find_owner(
    m, candidates, own_small: float, ref_small: dict, fit_ratio: float, radius: int
) -> tuple[str, float]:
    """The image whose beads this mask matches best, if it matches clearly (else "")."""
    best, best_fit = "", -np.inf
    for c in candidates:
        if c.name == m.name or c.arrays.evidence_small.shape != m.arrays.mask_small.shape:
            continue
        f = _small_fit(m.arrays.mask_small, c.arrays.evidence_small, radius)
        if f > best_fit:
            best, best_fit = c.name, f
    if not best:
        return "", float("nan")
    ref = ref_small[best][0]
    clear = best_fit >= fit_ratio * ref and best_fit >= 2 * max(own_small, 0.0)
    return (best if clear else ""), float(best_fit)


def mask_fits(
    measurements, fit_ratio: float = 0.4, search_radius_px: int = REGISTRATION_RADIUS_PX, exclude=()
) -> MaskFits:
    """Flag masks that fit their own image far worse than their neighbours do, and name the
    image each belongs to.

    A mask fits its image when its correlation with the image's bead evidence (best shift
    within the registration radius) is at least ``fit_ratio`` x the median of the other tiles of
    its source frame (or of its domain). A mask that does not fit is correlated with every other
    image of the same size (FFT cross-correlation on block-mean reduced copies, shifts up to
    ``search_radius_px``); the best match is named when it reaches ``fit_ratio`` x that image's
    reference and at least twice the mask's fit to its own image. The masks ``exclude``
    (inverted ones, :func:`mask_polarity`) are neither judged nor part of a reference.
    """
    fits = {m.name: float("nan") if m.name in exclude else m.registration.corr_best for m in measurements}
    refs = _references(measurements, fits)
    out = {}
    for m in measurements:
        ref, label = refs[m.name]
        ok = not (np.isfinite(fits[m.name]) and np.isfinite(ref)) or fits[m.name] >= fit_ratio * ref
        out[m.name] = MaskFit(m.name, fits[m.name], ref, label, bool(ok))
    if all(f.fits_image for f in out.values()):
        return MaskFits(fit_ratio, out)
    by_name = {m.name: m for m in measurements}
    radius = {m.name: max(1, int(np.ceil(search_radius_px / m.arrays.small_factor))) for m in measurements}
    small = {
        m.name: _small_fit(m.arrays.mask_small, m.arrays.evidence_small, radius[m.name]) for m in measurements
    }
    ref_small = _references(measurements, small)
    for name, f in list(out.items()):
        if f.fits_image:
            continue
        m = by_name[name]
        owner, owner_fit = _find_owner(m, measurements, small[name], ref_small, fit_ratio, radius[name])
        out[name] = MaskFit(name, f.fit, f.reference, f.reference_of, False, owner, owner_fit, small[name])
    return MaskFits(fit_ratio, out)


@dataclass(frozen=True)
class MaskScale:
    """A mask drawn at another scale than its image (e.g. on a resized copy).

    ``corr_unscaled`` and ``corr_scaled`` are the correlations of the reduced mask with the
    reduced evidence (best shift) at scale 1 and at ``scale`` (about the image centre);
    ``corner_px`` is how far the mask sits off at the image corners at that scale.
    """

    name: str
    scale: float
    corr_unscaled: float
    corr_scaled: float
    corner_px: float


def mask_scales(
    measurements,
    names,
    search_radius_px: int = REGISTRATION_RADIUS_PX,
    min_gain: float = 0.05,
    scales=tuple(np.round(np.arange(0.96, 1.0401, 0.01), 2)),
) -> dict[str, MaskScale]:
    """Among the masks ``names`` (those that do not fit or are misregistered: searching every
    mask would cost ~5 ms each), the ones that fit clearly better (correlation + ``min_gain``)
    at a scale other than 1."""
    out = {}
    for m in measurements:
        if m.name not in names:
            continue
        a = m.arrays
        radius = max(1, int(np.ceil(search_radius_px / a.small_factor)))
        base = _small_fit(a.mask_small, a.evidence_small, radius)
        scale, corr = best_scale(a.mask_small, a.evidence_small, scales, radius)
        if scale != 1.0 and np.isfinite(base) and corr >= base + min_gain:
            corner = abs(scale - 1) * float(np.hypot(m.height, m.width)) / 2
            out[m.name] = MaskScale(m.name, scale, base, corr, corner)
    return out


@dataclass
class LabelQuality:
    """Specks, objects cut by the border, soft and empty masks, and clumps drawn as blobs.

    ``clump_fraction[name]``: share of the mask area in blobs, objects larger than
    ``blob_area_ratio`` single beads of the image's domain (the annotator outlined a clump as
    one smooth blob; :func:`beadseg.core.beads.clumps`).
    """

    speck_area_px: dict[str, float]
    blob_area_ratio: float
    specks: dict[str, int]
    clump_fraction: dict[str, float]
    soft_masks: list[str]
    empty_masks: list[str]
    border_objects_total: int
    border_object_fraction: float

    @property
    def images_with_specks(self) -> list[str]:
        return [n for n, k in self.specks.items() if k]


def label_quality(
    measurements,
    single_area: dict[str, float],
    speck_area_px: float | None,
    blob_area_ratio: float = BLOB_AREA_RATIO,
) -> LabelQuality:
    """Specks below ``speck_area_px`` (default a quarter of the domain's single bead), border
    objects, soft and empty masks, and the clump fraction of each mask."""
    specks, blobs, speck_px = {}, {}, {}
    for m in measurements:
        bead = single_area.get(m.domain, 0.0)
        speck_px[m.domain] = speck_area_px or max(3.0, bead / 4)
        a = m.arrays.areas
        specks[m.name] = int(np.count_nonzero(a < speck_px[m.domain]))
        big = a[clumps(a, bead, blob_area_ratio)] if bead else a[:0]
        blobs[m.name] = float(big.sum() / a.sum()) if a.sum() else 0.0
    border = sum(m.border_objects for m in measurements)
    return LabelQuality(
        speck_px,
        blob_area_ratio,
        specks,
        blobs,
        soft_masks=[m.name for m in measurements if m.soft_mask],
        empty_masks=[m.name for m in measurements if m.empty_mask],
        border_objects_total=int(border),
        border_object_fraction=float(border / max(sum(m.objects for m in measurements), 1)),
    )


@dataclass
class RegistrationSummary:
    """Masks whose fit to their beads improves clearly at a shift of >= 2 px; real tiles first."""

    flagged: list[dict]
    n_shift_ge_2px: int
    max_shift_px: float

    @property
    def n_flagged(self) -> int:
        return len(self.flagged)


def registration_summary(measurements, exclude=()) -> RegistrationSummary:
    """Misregistered masks, leaving out ``exclude`` (masks that do not fit their image at all:
    a mask of another image is not "shifted by 3 px")."""
    flagged = sorted(
        (m for m in measurements if m.registration.flagged and m.name not in exclude),
        key=lambda m: (m.domain != REAL, -m.registration.gain),
    )
    shifts = [m.registration.shift_px for m in measurements]
    return RegistrationSummary(
        flagged=[
            {
                "name": m.name,
                "domain": m.domain,
                "dy": m.registration.dy,
                "dx": m.registration.dx,
                "fit_zero": m.registration.fit_zero,
                "fit_best": m.registration.fit_best,
                "gain": m.registration.gain,
                "corr_zero": m.registration.corr_zero,
                "corr_best": m.registration.corr_best,
            }
            for m in flagged
        ],
        n_shift_ge_2px=int(sum(s >= 2 for s in shifts)),
        max_shift_px=float(max(shifts)) if shifts else 0.0,
    )


@dataclass
class Checks:
    """All dataset checks, as computed by :func:`run_checks`."""

    missing: MissingLabels
    fits: MaskFits
    quality: LabelQuality
    registration: RegistrationSummary
    scales: dict[str, MaskScale]
    overlaps: OverlapAgreement | None
    leakage: Leakage | None
    polarity: dict[str, str] = field(default_factory=dict)  # name -> reason (mask_polarity)


def run_checks(measurements, cfg, single_area: dict[str, float], overlaps: bool = True) -> Checks:
    """Run every check with the settings of an :class:`~beadseg.core.config.AnalyzeConfig`.

    ``overlaps=False`` skips the overlap-agreement and leakage checks (label grading needs
    neither).
    """
    agree = overlap_agreement(measurements, cfg.min_overlap_px, cfg.overlap_match_tol) if overlaps else None
    polarity = mask_polarity(measurements)
    fits = mask_fits(measurements, cfg.mask_fit_ratio, cfg.owner_search_radius_px, polarity)
    # masks that fit worse than most of their frame (and belong to no other image) or sit
    # shifted: a scale may explain it (an inverted mask's fit and shift mean nothing)
    odd = {n for n, f in fits.per_image.items() if not f.belongs_to and f.fit < 0.85 * f.reference}
    odd |= {m.name for m in measurements if m.registration.flagged and m.name not in fits.not_fitting}
    odd -= set(polarity)
    placed = [m for m in measurements if m.name not in polarity]
    return Checks(
        missing=missing_labels(
            measurements,
            cfg.detector_floor,
            cfg.detector_relative,
            cfg.missing_max_fraction,
            cfg.missing_min_count,
        ),
        fits=fits,
        quality=label_quality(measurements, single_area, cfg.speck_area_px, cfg.blob_area_ratio),
        registration=registration_summary(placed, set(fits.not_fitting)),
        scales=mask_scales(measurements, odd, cfg.owner_search_radius_px),
        overlaps=agree,
        leakage=leakage_groups(measurements, agree.pairs) if agree else None,
        polarity=polarity,
    )
