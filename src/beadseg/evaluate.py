"""`beadseg evaluate`: pixel, object and count metrics per image, source frame, dilution and
overall, all computed with :mod:`beadseg.metrics`.

Next to plain pixel IoU it reports the IoU at the best global shift within +-k px (masks that
sit a few pixels off their beads cap plain IoU) and object F1 with centroid matching, so model
quality can be told apart from label noise. Object scores over a set of images are pooled
(:func:`beadseg.metrics.pool_matchings`). Exact-truth data (`beadseg synth --from`) carry their
bead centres (``centres/NAME.csv``): centroid matching and counts are then against those points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .analysis.domains import domain_by_name
from .analysis.grades import LabelSelection
from .config import InstanceConfig, PredictConfig
from .errors import InputError
from .instances import centroids, instances_from_mask, segment_instances
from .io import Pair, find_pairs, read_centres, read_labels, read_mask, read_pair, write_csv
from .metrics import (
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
from .naming import parse_name
from .provenance import write_json, write_provenance

CALIBRATION_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.2, 0.81, 0.05), 2))


@dataclass(frozen=True)
class ImageEvaluation:
    """Every metric of one image (definitions in :mod:`beadseg.metrics`)."""

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

    @property
    def domain(self) -> str:
        """``real`` or ``synthetic`` (by name, as the dataset doctor tells them apart)."""
        return domain_by_name(self.image)

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

    def as_dict(self) -> dict:
        return {
            "thresholds": self.thresholds,
            "centroid_f1": self.centroid_f1,
            "best_threshold": self.best_threshold,
            "model": self.model,
            "checkpoint": self.checkpoint,
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
        "with the model's instance settings (same size limits as predictions)",
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


# ----------------------------------------------------------------------------- inputs


def _labels_file(data: Path, pair: Pair) -> Path | None:
    """The instance-label file of ``pair`` in ``data/labels/`` (None: there is none)."""
    for ext in (".tif", ".tiff", ".png"):
        p = Path(data) / "labels" / f"{pair.name}{ext}"
        if p.is_file():
            return p
    return None


def truth_labels(data: Path, pair: Pair, mask: np.ndarray, inst: InstanceConfig) -> np.ndarray:
    """Instance labels of the truth: a labels/ folder when the data has one (synthetic sets),
    else the mask split into beads with the same instance settings as the predictions (the same
    hole filling, splitting and size limits, so both sides are counted alike)."""
    p = _labels_file(data, pair)
    return read_labels(p) if p is not None else instances_from_mask(mask, None, inst)


def truth_source(data: Path, pair: Pair, soft_mask: bool) -> str:
    """Where :func:`truth_labels` takes an image's beads from (``labels``, ``soft mask`` or
    ``mask``; ``centres`` are told apart by :func:`evaluate_image`)."""
    if _labels_file(data, pair) is not None:
        return "labels"
    return "soft mask" if soft_mask else "mask"


def truth_centres(data: Path, pair: Pair) -> np.ndarray | None:
    """The exact bead centres of an image (``centres/NAME.csv`` of exact-truth data), or None."""
    p = Path(data) / "centres" / f"{pair.name}.csv"
    return read_centres(p) if p.is_file() else None


def _find_prediction(pred_dir: Path, stem: str) -> np.ndarray | None:
    """The predicted instances of one image in a prediction folder (None: not predicted)."""
    for ext in (".tif", ".tiff"):
        p = pred_dir / "labels" / f"{stem}{ext}"
        if p.is_file():
            return read_labels(p)
    p = pred_dir / "masks" / f"{stem}.png"
    if p.is_file():
        return instances_from_mask(read_mask(p).mask)
    return None


def _load_source_model(source: str | Path, cfg: PredictConfig):
    """The model to run, or None when ``source`` is a folder of predictions."""
    src = Path(str(source))
    if src.is_dir() and ((src / "labels").is_dir() or (src / "masks").is_dir()) and not any(src.glob("*.pt")):
        return None
    from .inference import load_model

    return load_model(source, cfg.device, cfg.runtime, cfg.num_threads)


def _usable_pairs(data: Path, only: set[str] | None, use_all: bool) -> tuple[list[Pair], LabelSelection]:
    """The pairs to score: those named in ``only`` whose labels are usable (graded over the
    whole data set, since grading compares each label with the rest)."""
    from .analysis.grades import select_labels

    everything = find_pairs(data)
    kept, labels = select_labels(everything, use_all)
    if only is not None:
        kept = [p for p in kept if p.name in only]
        labels = LabelSelection({n: r for n, r in labels.left_out.items() if n in only}, {}, labels.graded)
        if not kept:
            raise InputError(f"none of the requested images with a usable label is in {data}")
    return kept, labels


# ----------------------------------------------------------------------------- calibration


class _ThresholdScan:
    """Centroid matchings of one model's probabilities at each candidate threshold."""

    def __init__(self, model, centroid_px: float, thresholds=CALIBRATION_THRESHOLDS):
        self.model, self.centroid_px, self.thresholds = model, centroid_px, list(thresholds)
        self.matchings: list[list[Matching]] = [[] for _ in self.thresholds]

    def add(self, prob: np.ndarray, centres: np.ndarray | None, true_labels: np.ndarray) -> None:
        for t, found in zip(self.thresholds, self.matchings):
            labels = segment_instances(prob, centres, self.model.instances, t)
            found.append(match_centroids(true_labels, labels, self.centroid_px))

    def result(self, out: Path | None) -> Calibration:
        """The F1-best threshold (pooled over images); with ``out`` a calibrated copy of the
        model in ``out/calibrated.pt`` (the model itself is never modified)."""
        from .checkpoint import export_checkpoint
        from .export.onnx import write_onnx_beside

        f1 = [pool_matchings(m).f1 for m in self.matchings]
        best = self.thresholds[int(np.argmax(f1))]
        copy = None
        if out is not None:
            copy = str(export_checkpoint(self.model.source, Path(out) / "calibrated.pt", best))
            write_onnx_beside(copy)  # calibrated.onnx: predict with the copy runs without torch
        return Calibration(self.thresholds, f1, best, self.model.source, copy)


# ----------------------------------------------------------------------------- evaluate


def _group(images: list[ImageEvaluation], key: str) -> dict[str, SetSummary]:
    by = defaultdict(list)
    for e in images:
        if getattr(e, key) is not None:
            by[str(getattr(e, key))].append(e)
    return {k: aggregate(by[k]) for k in sorted(by)}


def _write(out: Path, result: Evaluation, cfg: PredictConfig, worst: list) -> None:
    from .config import save_config

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", result.as_dict())
    write_csv(out / "metrics.csv", [e.row() for e in result.images])
    save_config(cfg, out / "config.yaml")
    if worst:
        from .plots import plot_worst_cases

        plot_worst_cases(worst, out / "worst_cases.png")
    from .reporting import write_report
    from .reporting.evaluation import evaluation_terms, render_evaluation

    body = render_evaluation(result, "worst_cases.png" if worst else None)
    write_report(out, body, evaluation_terms(result))
    write_provenance(out, "evaluate")


def _predict_pair(model, source, pair: Pair, cfg: PredictConfig, threshold: float | None):
    """(image, mask info, predicted instances, probabilities, centres) of one pair: the model's
    prediction (probabilities and, with a centre head, centres), or the one in the prediction
    folder ``source`` (None when it holds none; no probabilities or centres then)."""
    if model is None:
        pred, prob, centres = _find_prediction(Path(str(source)), pair.name), None, None
        if pred is None:
            return None
        image, info = read_pair(pair)
    else:
        from .inference import segment  # torch only when there is a model to run

        image, info = read_pair(pair)
        seg = segment(model, image, cfg, threshold)
        pred, prob, centres = seg.labels, seg.probabilities, seg.centres
    if pred.shape != info.mask.shape:
        raise InputError(
            f"prediction for {pair.name} is {pred.shape[::-1]} but the mask is {info.mask.shape[::-1]}"
        )
    return image, info, pred, prob, centres


def _evaluation(source, data: Path, images, labels, no_prediction, shift_radius_px, centroid_px):
    """The :class:`Evaluation` of the scored images (at least one)."""
    if not images:
        raise InputError(
            f"{source} holds no prediction for any of the {len(no_prediction)} labelled images "
            f"of {data} (e.g. {no_prediction[0]}); run `beadseg predict` on {data} first"
        )
    return Evaluation(
        str(source),
        str(data),
        _definitions(shift_radius_px, centroid_px),
        aggregate(images),
        _group(images, "source_frame"),
        _group(images, "dilution"),
        images,
        labels=labels,
        no_prediction=no_prediction,
        per_domain=_group(images, "domain"),
    )


def evaluate(
    source: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    cfg: PredictConfig | None = None,
    threshold: float | None = None,
    shift_radius_px: int = 3,
    centroid_px: float = 3.0,
    calibrate: bool = False,
    gallery: bool = True,
    only: set[str] | None = None,
    use_all_labels: bool = False,
) -> Evaluation:
    """Evaluate predictions (a `beadseg predict` folder) or a model against a labelled set.

    Parameters
    ----------
    source : path or "default"
        A prediction folder, a run folder, a checkpoint or ``default``.
    data : path
        Folder with images/ and masks/ (and optionally labels/).
    out : path, optional
        Writes metrics.csv, metrics.json, config.yaml, worst_cases.png, report.md and the
        self-contained report.html (and calibrated.pt).
    calibrate : bool
        With a model: choose the probability threshold that maximises pooled object F1
        (centroid matching) on this set; with ``out``, write a copy of the model carrying it
        to ``out/calibrated.pt``.
    only : set of str, optional
        Evaluate only these image names (e.g. the validation side of a split).
    use_all_labels : bool
        Score against every label as it is; by default labels graded unusable
        (:func:`beadseg.analysis.select_labels`) are left out and listed (``labels.left_out``).

    Notes
    -----
    A prediction folder that covers only part of the data is evaluated on the images it holds;
    the labelled images without a prediction are listed (``no_prediction``).
    """
    cfg = cfg or PredictConfig()
    data = Path(data)
    if threshold is not None and not 0 < threshold < 1:
        raise InputError(f"--threshold {threshold} is not a probability between 0 and 1 (exclusive)")
    pairs, labels = _usable_pairs(data, only, use_all_labels)
    model = _load_source_model(source, cfg)
    if calibrate and model is None:
        raise InputError(
            "--calibrate needs a model (run folder, checkpoint or default), not a folder of predictions"
        )
    inst = model.instances if model else InstanceConfig()
    scan = _ThresholdScan(model, centroid_px) if calibrate else None
    images, worst, no_prediction = [], [], []
    for pair in pairs:
        found = _predict_pair(model, source, pair, cfg, threshold)
        if found is None:
            no_prediction.append(pair.name)
            continue
        image, info, pred, prob, centres = found
        truth = truth_labels(data, pair, info.mask, inst)
        points = truth_centres(data, pair)
        source_of_truth = truth_source(data, pair, info.soft)
        images.append(
            evaluate_image(
                pred, info.mask, truth, shift_radius_px, centroid_px, pair.name, points, source_of_truth
            )
        )
        if scan is not None:
            scan.add(prob, centres, truth)
        if gallery and out is not None:
            worst.append((images[-1].centroids.f1, pair.name, image, info.mask, pred > 0))
            worst = sorted(worst, key=lambda w: w[0])[:4]  # keep only the 4 worst in memory
    result = _evaluation(source, data, images, labels, no_prediction, shift_radius_px, centroid_px)
    if scan is not None:
        result = replace(result, calibration=scan.result(out))
    if out is not None:
        _write(Path(out), result, cfg, worst)
    return result
