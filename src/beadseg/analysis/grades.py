"""A grade per label: good, fixable or unusable, with the reasons.

* **unusable**: the mask does not describe its image: it is inverted (beads 0, background
  255) or covers the whole image; it fits the image's beads far worse than its neighbours'
  masks fit theirs (often it belongs to another image, which is named); it was
  drawn at another scale (e.g. on a resized copy) and sits more than twice the label tolerance
  off at the image corners; most bead candidates are unlabelled; or the mask is empty while the
  image shows beads.
* **fixable**: usable after an automatic fix or with a known caveat: shifted by N px
  (re-register by ``dy, dx``), drawn at a slightly different scale, partly unlabelled, soft
  (thresholded at half its maximum), clumps drawn as blobs (components count clumps, not beads).
* **good**: none of the above.

:func:`grade_labels` is the entry point for training and evaluation (it runs at every
``train`` start, so it measures only what grading needs).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import AnalyzeConfig

GOOD, FIXABLE, UNUSABLE = "good", "fixable", "unusable"


@dataclass(frozen=True)
class LabelGrade:
    """The grade of one image's label.

    ``dy, dx`` is the shift that puts a misregistered mask onto its beads (0, 0 otherwise):
    ``registration.shift_mask(mask, dy, dx)``. ``belongs_to`` names the image a misfiled mask was
    drawn for ("" when it is its own image's or no image matches).
    """

    name: str
    grade: str
    reasons: tuple[str, ...]
    dy: int = 0
    dx: int = 0
    belongs_to: str = ""

    @property
    def usable(self) -> bool:
        return self.grade != UNUSABLE

    @property
    def shifted(self) -> bool:
        return (self.dy, self.dx) != (0, 0)


def _fit_reasons(fit) -> list[str]:
    if fit.fits_image:
        return []
    if fit.belongs_to:
        return [
            f"mismatched: the mask belongs to {fit.belongs_to} (correlation with its beads "
            f"{fit.belongs_fit:.2f}, with this image's {fit.own_fit_small:.2f})"
        ]
    return [
        f"poor fit: correlation with the image's beads {fit.fit:.2f} vs {fit.reference:.2f} "
        f"(median of its {fit.reference_of}); no image of the set matches it better"
    ]


def grade_one(m, checks, cfg: AnalyzeConfig) -> LabelGrade:
    """Grade one measured image from the set-level checks (:func:`checks.run_checks`)."""
    if m.name in checks.polarity:  # inverted or all foreground: every other finding follows from it
        return LabelGrade(m.name, UNUSABLE, (checks.polarity[m.name],))
    unusable, fixable = _fit_reasons(checks.fits.per_image[m.name]), []
    unl = checks.missing.unlabelled_candidates[m.name]
    frac = checks.missing.unlabelled_fraction[m.name]
    if m.empty_mask and unl >= cfg.missing_min_count:
        unusable.append(f"empty mask while the image shows {unl} bead candidates")
    elif frac >= cfg.unusable_unlabelled_fraction and unl >= cfg.missing_min_count:
        unusable.append(f"most beads unlabelled: {frac:.0%} of bead candidates ({unl}) have no mask")
    elif m.name in checks.missing.flagged:
        fixable.append(f"partly unlabelled: {frac:.0%} of bead candidates ({unl}) have no mask")
    sc = checks.scales.get(m.name)
    if sc is not None:
        text = (
            f"drawn at another scale: fits best magnified {sc.scale:.2f}x about the centre "
            f"(correlation {sc.corr_unscaled:.2f} -> {sc.corr_scaled:.2f}), {sc.corner_px:.1f} px "
            "off at the corners; a shift cannot fix that"
        )
        (unusable if sc.corner_px > 2 * cfg.label_tolerance_px else fixable).append(text)
    reg = m.registration
    shift = (0, 0)
    if reg.flagged and not unusable:
        shift = (reg.dy, reg.dx)
        fixable.append(
            f"shifted by {reg.shift_px:.1f} px: re-register by dy={reg.dy}, dx={reg.dx} (fit +{reg.gain:.0%})"
        )
    if m.soft_mask:
        fixable.append("soft mask: thresholded at half its maximum")
    clumps = checks.quality.clump_fraction[m.name]
    if clumps >= cfg.clump_max_fraction:
        fixable.append(
            f"clumps drawn as blobs: {clumps:.0%} of the mask area in objects larger "
            f"than {cfg.blob_area_ratio:g} beads"
        )
    grade = UNUSABLE if unusable else FIXABLE if fixable else GOOD
    return LabelGrade(
        m.name, grade, tuple(unusable + fixable), shift[0], shift[1], checks.fits.per_image[m.name].belongs_to
    )


def grade_labels(
    pairs, cfg: AnalyzeConfig | None = None, workers: int | None = None, progress: bool = False
) -> list[LabelGrade]:
    """Grade the label of every image/mask pair (see the module docstring).

    Parameters
    ----------
    pairs : list of :class:`beadseg.core.files.Pair`
        The data set (grading compares each mask with the rest of the set, so give all pairs).
    cfg : AnalyzeConfig, optional
        Thresholds of the checks (default settings when None).
    workers : int, optional
        Threads for the per-image pass (default: CPU count, capped at 4).

    Returns
    -------
    list of LabelGrade
        In the order of ``pairs``.

    Examples
    --------
    >>> from beadseg.core.files import find_pairs
    >>> grades = grade_labels(find_pairs("data"))  # doctest: +SKIP
    >>> [g.name for g in grades if not g.usable]  # doctest: +SKIP
    """
    from ..core.beads import single_area_of_objects
    from .checks import run_checks
    from .fingerprint import measure_all

    cfg = cfg or AnalyzeConfig()
    ms = measure_all(list(pairs), cfg, workers, progress, grading_only=True)
    single = {
        d: single_area_of_objects(_areas([m for m in ms if m.domain == d])) for d in {m.domain for m in ms}
    }
    checks = run_checks(ms, cfg, single, overlaps=False)
    return [grade_one(m, checks, cfg) for m in ms]


def _areas(ms):
    import numpy as np

    return np.concatenate([m.arrays.areas for m in ms] + [np.zeros(0)])


@dataclass(frozen=True)
class LabelSelection:
    """Which labels training and evaluation use, by the grades (:func:`select_labels`).

    ``left_out`` maps each unusable label to its reasons; ``shifts`` maps each shifted (fixable)
    label to the ``(dy, dx)`` that re-registers it. Both are empty when every label is used.
    """

    left_out: dict[str, tuple[str, ...]]
    shifts: dict[str, tuple[int, int]]
    graded: bool = True

    def as_dict(self) -> dict:
        """The ``labels`` entry of a run's ``split.json`` (and of ``metrics.json``)."""
        return {
            "graded": self.graded,
            "left_out": [{"name": n, "reasons": list(r)} for n, r in sorted(self.left_out.items())],
            "re_registered": [{"name": n, "dy": dy, "dx": dx} for n, (dy, dx) in sorted(self.shifts.items())],
        }

    def summary_line(self) -> str:
        """One line for the console ("" when nothing was left out or shifted)."""
        parts = []
        if self.left_out:
            first, reasons = next(iter(sorted(self.left_out.items())))
            parts.append(f"left out {len(self.left_out)} unusable label(s) (e.g. {first}: {reasons[0]})")
        if self.shifts:
            parts.append(f"re-registered {len(self.shifts)} shifted mask(s)")
        if not parts:
            return ""
        return "; ".join(parts) + " (set data.use_all_labels=true to use every label as it is)"


def select_labels(pairs, use_all: bool = False, cfg: AnalyzeConfig | None = None, reregister: bool = True):
    """The usable pairs of a data set and what was left out or shifted, from the grades.

    Parameters
    ----------
    pairs : list of :class:`beadseg.core.files.Pair`
        The whole data set (grading compares each label with the rest).
    use_all : bool
        Use every label as it is (``data.use_all_labels``): nothing graded, nothing left out.
    reregister : bool
        Report the shifts of fixable masks (False: the caller aligns masks its own way).

    Returns
    -------
    (list of Pair, LabelSelection)
        The pairs whose labels are usable, in the given order, and the selection.

    Raises
    ------
    InputError
        Every label is unusable.
    """
    from ..core.errors import InputError

    pairs = list(pairs)
    if use_all or not pairs:
        return pairs, LabelSelection({}, {}, graded=False)
    grades = grade_labels(pairs, cfg)
    left_out = {g.name: g.reasons for g in grades if not g.usable}
    shifts = {g.name: (g.dy, g.dx) for g in grades if reregister and g.usable and g.shifted}
    kept = [p for p in pairs if p.name not in left_out]
    if not kept:
        name, reasons = next(iter(sorted(left_out.items())))
        raise InputError(
            f"all {len(pairs)} labels are graded unusable (e.g. {name}: {reasons[0]}); fix them "
            "(see `beadseg analyze`) or set data.use_all_labels=true"
        )
    return kept, LabelSelection(left_out, shifts)
