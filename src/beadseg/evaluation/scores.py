"""The scores of an evaluation: one image's metrics, their aggregates per source frame, dilution
and domain, the threshold calibration, and the :class:`Evaluation` result with its headlines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..analysis.domains import domain_by_name
from ..analysis.grades import LabelSelection
from ..core.labels import centroids
from ..core.metrics import (
    CountSummary,
    Matching,
    PixelScores,
    best_shift_iou,
    count_error,
    count_summary,
    match_centroids,
    match_objects,
    match_points,
    pixel_scores,
    pool_matchings,
    pooled,
)
from ..core.naming import parse_name


@dataclass(frozen=True)
class ImageEvaluation:
    """Every metric of one image (definitions in :mod:`beadseg.core.metrics`)."""

    image: str
    source_frame: str | None
    dilution: int | None
    pixels: PixelScores
    iou_best_shift: float
    best_shift: tuple[int, int]
    objects: Matching
    centroids: Matching
    #: where the true beads come from: "centres" (exact truth), "labels" (instance labels),
    #: "mask" (a binary mask split into beads) or "soft mask" (a soft mask split into beads: its
    #: components are areas, so object and count scores measure them, not beads)
    truth_source: str = "mask"
    #: ``real`` or ``synthetic`` as the dataset doctor tells them apart (the folder's record of
    #: generated tiles, else the name); None: by the name
    named_domain: str | None = None

    @property
    def domain(self) -> str:
        """``real`` or ``synthetic`` (as the dataset doctor tells them apart)."""
        return self.named_domain or domain_by_name(self.image)

    @property
    def true_count(self) -> int:
        """Beads in the truth: its centres when known exactly, else its instances."""
        return self.centroids.n_true

    @property
    def count_error(self) -> float:
        return count_error(self.objects.n_pred, self.true_count)

    def row(self) -> dict:
        """One row of ``metrics.csv``."""
        px, obj, cen = self.pixels, self.objects, self.centroids
        return {
            "iou": px.iou,
            "dice": px.dice,
            "precision": px.precision,
            "recall": px.recall,
            "iou_best_shift": self.iou_best_shift,
            "best_shift_dy": self.best_shift[0],
            "best_shift_dx": self.best_shift[1],
            "object_f1": obj.f1,
            "object_precision": obj.precision,
            "object_recall": obj.recall,
            "mean_matched_iou": obj.mean_matched_score,
            "panoptic_quality": obj.panoptic_quality,
            "centroid_f1": cen.f1,
            "true_count": self.true_count,
            "pred_count": obj.n_pred,
            "count_error": self.count_error,
            "px_tp": px.tp,
            "px_fp": px.fp,
            "px_fn": px.fn,
            "px_tn": px.tn,
            "obj_tp": obj.tp,
            "obj_fp": obj.fp,
            "obj_fn": obj.fn,
            "cen_tp": cen.tp,
            "cen_fp": cen.fp,
            "cen_fn": cen.fn,
            "image": self.image,
            "source_frame": self.source_frame,
            "dilution": self.dilution,
            "domain": self.domain,
            "truth_source": self.truth_source,
        }


def evaluate_image(
    pred_labels: np.ndarray,
    true_mask: np.ndarray,
    true_labels: np.ndarray,
    shift_radius_px: int = 3,
    centroid_px: float = 3.0,
    name: str | None = None,
    true_centres: np.ndarray | None = None,
    truth_source: str = "mask",
    domain: str | None = None,
) -> ImageEvaluation:
    """All metrics of one image; its ``name`` gives its source frame and dilution.

    With ``true_centres`` (``N x 2`` row/col, exact truth) centroid matching and the true count
    use those points; otherwise the centroids of ``true_labels``. ``truth_source`` records where
    ``true_labels`` came from (:attr:`ImageEvaluation.truth_source`).
    """
    pred_mask = pred_labels > 0
    shift_iou, dy, dx = best_shift_iou(pred_mask, true_mask, shift_radius_px)
    parsed = parse_name(name) if name else None
    return ImageEvaluation(
        image=name or "",
        source_frame=parsed.source_frame if parsed else None,
        dilution=parsed.dilution if parsed else None,
        pixels=pixel_scores(pred_mask, true_mask),
        iou_best_shift=shift_iou,
        best_shift=(dy, dx),
        objects=match_objects(true_labels, pred_labels, 0.5),
        centroids=(
            match_centroids(true_labels, pred_labels, centroid_px)
            if true_centres is None
            else match_points(true_centres, centroids(pred_labels), centroid_px)
        ),
        truth_source="centres" if true_centres is not None else truth_source,
        named_domain=domain,
    )


@dataclass(frozen=True)
class SetSummary:
    """Metrics of a set of images: means over images and pooled counts."""

    n_images: int
    pixels: PixelScores
    iou_mean: float
    dice_mean: float
    iou_best_shift_mean: float
    objects: Matching
    centroids: Matching
    object_f1_mean: float
    counts: CountSummary

    def as_dict(self) -> dict:
        def scores(m: Matching) -> dict:
            return {
                "tp": m.tp,
                "fp": m.fp,
                "fn": m.fn,
                "precision": m.precision,
                "recall": m.recall,
                "f1": m.f1,
            }

        return {
            "n_images": self.n_images,
            "iou_mean": self.iou_mean,
            "iou_pooled": self.pixels.iou,
            "dice_mean": self.dice_mean,
            "dice_pooled": self.pixels.dice,
            "iou_best_shift_mean": self.iou_best_shift_mean,
            "object": scores(self.objects),
            "centroid": scores(self.centroids),
            "object_f1_mean": self.object_f1_mean,
            "counts": self.counts.as_dict(),
        }


def aggregate(images: list[ImageEvaluation]) -> SetSummary:
    """Pool the evaluations of a (non-empty) set of images."""
    if not images:
        raise ValueError("aggregate needs at least one image")
    return SetSummary(
        n_images=len(images),
        pixels=pooled([e.pixels for e in images]),
        iou_mean=float(np.mean([e.pixels.iou for e in images])),
        dice_mean=float(np.mean([e.pixels.dice for e in images])),
        iou_best_shift_mean=float(np.mean([e.iou_best_shift for e in images])),
        objects=pool_matchings([e.objects for e in images]),
        centroids=pool_matchings([e.centroids for e in images]),
        object_f1_mean=float(np.mean([e.objects.f1 for e in images])),
        counts=count_summary([e.objects.n_pred for e in images], [e.true_count for e in images]),
    )


@dataclass(frozen=True)
class Calibration:
    """The threshold scan of ``--calibrate`` and the calibrated copy of the model."""

    thresholds: list[float]
    centroid_f1: list[float]
    best_threshold: float
    model: str
    checkpoint: str | None = None
    #: the F1-best split-by-size ratio (centre-head model, exact truth); None: not scanned
    split_area_ratio: float | None = None

    def as_dict(self) -> dict:
        return {
            "thresholds": self.thresholds,
            "centroid_f1": self.centroid_f1,
            "best_threshold": self.best_threshold,
            "model": self.model,
            "checkpoint": self.checkpoint,
            "split_area_ratio": self.split_area_ratio,
        }


def _definitions(shift_radius_px: int, centroid_px: float) -> dict:
    return {
        "iou_mean": "mean over images of pixel IoU (empty-empty = 1)",
        "iou_pooled": "pixel IoU of all pixels of all images pooled",
        "iou_best_shift": f"pixel IoU at the best global shift within +-{shift_radius_px} px",
        "object": "instances matched one-to-one at IoU >= 0.5 (stardist's matching), TP/FP/FN "
        "summed over images (stardist's matching_dataset)",
        "centroid": f"instances matched one-to-one by centroid distance <= {centroid_px} px",
        "count_error": "(predicted - true) / max(true, 1) per image; true = the exact centres of "
        "centres/NAME.csv when the data has them, else the true instances",
        "true_instances": "labels/ of the data if present, else its masks split into beads "
        "with the model's instance settings (same size limits as predictions; a mask's holes, "
        "the gaps between beads drawn one by one, are left open)",
    }


def soft_truth_warning(images: list[ImageEvaluation]) -> str:
    """A caveat for images whose true beads were split from soft masks ('' when there are none)."""
    n = sum(e.truth_source == "soft mask" for e in images)
    if not n:
        return ""
    return (
        f"{n} of {len(images)} truths are soft masks without instance labels: their objects are "
        "areas, not beads, so read the pixel scores"
    )


def headline(s: SetSummary) -> str:
    """The main scores of a set of images in one line."""
    return (
        f"pixel IoU mean {s.iou_mean:.3f} / pooled {s.pixels.iou:.3f}, best-shift IoU "
        f"{s.iou_best_shift_mean:.3f}; object F1 (IoU 0.5) {s.objects.f1:.3f}, centroid F1 "
        f"{s.centroids.f1:.3f}; median |count error| {s.counts.median_abs_error:.3f}"
    )


@dataclass
class Evaluation:
    """Everything :func:`evaluate` measured (``metrics.json`` is :meth:`as_dict`).

    ``per_domain`` pools real and synthetic images apart: their bead densities and masks differ
    so much (the dev set's synthetic tiles have dense soft masks) that ``overall`` is a mix of two
    populations whenever the set holds both; headlines are read per domain.
    """

    source: str
    data: str
    definitions: dict
    overall: SetSummary
    per_source_frame: dict[str, SetSummary]
    per_dilution: dict[str, SetSummary]
    images: list[ImageEvaluation] = field(default_factory=list)
    calibration: Calibration | None = None
    labels: LabelSelection = field(default_factory=lambda: LabelSelection({}, {}, graded=False))
    no_prediction: list[str] = field(default_factory=list)
    per_domain: dict[str, SetSummary] = field(default_factory=dict)
    out: Path | None = None  #: where metrics.json and the report were written (None: nowhere)

    def headlines(self) -> list[str]:
        """One line of the main scores per domain (only the overall one for a single domain),
        with a warning where the true beads were split from soft masks."""

        def line(s: SetSummary, caveat: str) -> str:
            return headline(s) + (f" ({caveat})" if caveat else "")

        if len(self.per_domain) < 2:
            return [line(self.overall, self.caveat())]
        return [
            f"{k} ({v.n_images} image{'s' * (v.n_images != 1)}): {line(v, self.caveat(k))}"
            for k, v in sorted(self.per_domain.items())
        ]

    def caveat(self, domain: str | None = None) -> str:
        """:func:`soft_truth_warning` of the images of ``domain`` (None: all images)."""
        return soft_truth_warning([e for e in self.images if domain in (None, e.domain)])

    def as_dict(self) -> dict:
        out = {
            "source": self.source,
            "data": self.data,
            "definitions": self.definitions,
            "labels": {k: v for k, v in self.labels.as_dict().items() if k != "re_registered"},
            "no_prediction": self.no_prediction,
            "overall": self.overall.as_dict(),
            "per_domain": {k: v.as_dict() for k, v in self.per_domain.items()},
            "per_source_frame": {k: v.as_dict() for k, v in self.per_source_frame.items()},
            "per_dilution": {k: v.as_dict() for k, v in self.per_dilution.items()},
            "per_image": [e.row() for e in self.images],
        }
        if self.calibration is not None:
            out["calibration"] = self.calibration.as_dict()
        return out
