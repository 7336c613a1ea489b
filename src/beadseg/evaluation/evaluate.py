"""`beadseg evaluate`: pixel, object and count metrics per image, source frame, dilution and
overall, all computed with :mod:`beadseg.core.metrics`.

Next to plain pixel IoU it reports the IoU at the best global shift within +-k px (masks that
sit a few pixels off their beads cap plain IoU) and object F1 with centroid matching, so model
quality can be told apart from label noise. Object scores over a set of images are pooled
(:func:`beadseg.core.metrics.pool_matchings`). Exact-truth data (`beadseg synth --from`) carry their
bead centres (``centres/NAME.csv``): centroid matching and counts are then against those points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..analysis.domains import domain_of
from ..analysis.grades import LabelSelection
from ..core.beads import finish_instances, instances_from_mask, seed_instances
from ..core.config import Config, InstanceConfig, PredictConfig
from ..core.errors import InputError
from ..core.files import Pair, find_pairs, write_csv
from ..core.images import to_unit_float
from ..core.limits import check_centroid_distance, check_shift_radius, check_threshold
from ..core.masks import read_labels, read_mask, read_pair, read_pair_raw
from ..core.metrics import (
    match_centroids,
    pool_matchings,
)
from ..outputs.progress import progress_bar
from ..outputs.provenance import write_json, write_provenance
from .scores import (
    Calibration,
    Evaluation,
    ImageEvaluation,
    SetSummary,
    _definitions,
    aggregate,
    evaluate_image,
)
from .truth import truth_centres, truth_labels, truth_source

CALIBRATION_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.2, 0.81, 0.05), 2))


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


def _load_source_model(source, cfg: PredictConfig):
    """The model to run (``source`` itself when it is a loaded model), or None when ``source``
    is a folder of predictions."""
    if not isinstance(source, (str, Path)):
        return source
    src = Path(str(source))
    if src.is_dir() and ((src / "labels").is_dir() or (src / "masks").is_dir()) and not any(src.glob("*.pt")):
        return None
    from ..inference import load_model

    return load_model(source, cfg.device, cfg.runtime, cfg.num_threads, cfg.precision)


def _usable_pairs(data: Path, only: set[str] | None, use_all: bool) -> tuple[list[Pair], LabelSelection]:
    """The pairs to score: those named in ``only`` whose labels are usable (graded over the
    whole data set, since grading compares each label with the rest)."""
    from ..analysis.grades import select_labels

    everything = find_pairs(data)
    kept, labels = select_labels(everything, use_all)
    if only is not None:
        kept = [p for p in kept if p.name in only]
        labels = LabelSelection({n: r for n, r in labels.left_out.items() if n in only}, {}, labels.graded)
        if not kept:
            raise InputError(
                f"none of the requested images with a usable label is in {data}; check the image names, "
                "or score every label with --all-labels"
            )
    return kept, labels


#: Split-by-size ratios ``--calibrate`` tries for a centre-head model on exact truth (0: off;
#: the shipped model's 2.15 was chosen the same way, benchmarks/tune_split.py).
CALIBRATION_SPLIT_RATIOS = (0.0, 1.9, 2.0, 2.15, 2.3, 2.5)


class _ThresholdScan:
    """Centroid matchings of one model's probabilities at each candidate threshold (and, for a
    centre-head model scored against exact truth, each split-by-size ratio)."""

    def __init__(self, model, centroid_px: float, split: bool, thresholds=CALIBRATION_THRESHOLDS):
        self.model, self.centroid_px, self.thresholds = model, centroid_px, list(thresholds)
        self.ratios = list(CALIBRATION_SPLIT_RATIOS) if split else [model.instances.split_area_ratio]
        self.settings = {r: model.instances.model_copy(update={"split_area_ratio": r}) for r in self.ratios}
        self.matchings = {(t, r): [] for t in self.thresholds for r in self.ratios}

    def add(self, prob: np.ndarray, centres: np.ndarray | None, true_labels: np.ndarray) -> None:
        for t in self.thresholds:  # one seeding per threshold serves every split ratio
            seeds = seed_instances(prob, centres, self.model.instances, t)  # the ratio plays no part
            for r in self.ratios:
                labels = finish_instances(seeds, prob, centres, self.settings[r])
                self.matchings[(t, r)].append(match_centroids(true_labels, labels, self.centroid_px))

    def result(self, out: Path | None) -> Calibration:
        """The F1-best threshold (and split ratio; pooled over images); with ``out`` a
        calibrated copy of the model in ``out/calibrated.pt`` (the model itself is never
        modified)."""
        from ..models.checkpoint import export_checkpoint
        from ..models.onnx import write_onnx_beside

        f1 = {key: pool_matchings(m).f1 for key, m in self.matchings.items()}
        best_t, best_r = max(f1, key=lambda k: (f1[k], -abs(k[1] - self.model.instances.split_area_ratio)))
        split = best_r if len(self.ratios) > 1 else None
        copy = None
        if out is not None:
            inst = None if split is None else {"split_area_ratio": split}
            copy = str(export_checkpoint(self.model.source, Path(out) / "calibrated.pt", best_t, inst))
            write_onnx_beside(copy)  # calibrated.onnx: predict with the copy runs without torch
        table = [f1[(t, best_r)] for t in self.thresholds]
        return Calibration(self.thresholds, table, best_t, self.model.source, copy, split)


def _group(images: list[ImageEvaluation], key: str) -> dict[str, SetSummary]:
    by = defaultdict(list)
    for e in images:
        if getattr(e, key) is not None:
            by[str(getattr(e, key))].append(e)
    return {k: aggregate(by[k]) for k in sorted(by)}


def _write(out: Path, result: Evaluation, cfg: PredictConfig, worst: list) -> None:
    from ..core.config import save_config

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", result.as_dict())
    write_csv(out / "metrics.csv", [e.row() for e in result.images])
    save_config(Config(predict=cfg), out / "config.yaml")  # the one schema of every command
    if worst:
        from ..outputs.figures import plot_worst_cases

        plot_worst_cases(worst, out / "worst_cases.png")
    from ..outputs.document import write_report
    from .report import evaluation_terms, render_evaluation

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
        from ..inference import segment  # torch only when there is a model to run

        raw, info = read_pair_raw(pair)  # the network input is made from the file as stored
        seg = segment(model, raw, cfg, threshold, name=str(pair.image))
        pred, prob, centres = seg.labels, seg.probabilities, seg.centres
        image = to_unit_float(raw)  # for the worst-case figure
    if pred.shape != info.mask.shape:
        raise InputError(
            f"the prediction of {pair.name} is {pred.shape[::-1]} px but its mask is "
            f"{info.mask.shape[::-1]} px; predict the images of this data folder again into a new --out"
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


def _score_pair(pair, model, source, data, cfg, threshold, inst, shift_radius_px, centroid_px,
                images, worst, no_prediction, scan, gallery) -> None:  # fmt: skip
    """Score one labelled image (appended to ``images``; the worst kept in ``worst``)."""
    found = _predict_pair(model, source, pair, cfg, threshold)
    if found is None:
        no_prediction.append(pair.name)
        return
    image, info, pred, prob, centres = found
    truth = truth_labels(data, pair, info.mask, inst)
    points = truth_centres(data, pair)
    source_of_truth = truth_source(data, pair, info.soft)
    images.append(
        evaluate_image(
            pred,
            info.mask,
            truth,
            shift_radius_px,
            centroid_px,
            pair.name,
            points,
            source_of_truth,
            domain_of(pair.name, data),
        )
    )
    if scan is not None:
        scan.add(prob, centres, truth)
    if gallery:
        worst.append((images[-1].centroids.f1, pair.name, image, info.mask, pred > 0))
        worst[:] = sorted(worst, key=lambda w: w[0])[:4]  # keep only the 4 worst in memory


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
    progress: bool = False,
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
    check_threshold(threshold)
    check_shift_radius(shift_radius_px, "--shift-radius")
    check_centroid_distance(centroid_px, "--centroid-px")
    pairs, labels = _usable_pairs(data, only, use_all_labels)
    model = _load_source_model(source, cfg)
    if calibrate and model is None:
        raise InputError(
            "--calibrate needs a model (run folder, checkpoint or default), not a folder of predictions"
        )
    inst = model.instances if model else InstanceConfig()
    # the split ratio only against exact truth: masks outline clumps as blobs
    exact = calibrate and model is not None and model.centre_head and (data / "centres").is_dir()
    scan = _ThresholdScan(model, centroid_px, exact) if calibrate else None
    images, worst, no_prediction = [], [], []
    with progress_bar(progress, len(pairs), "evaluating") as advance:
        for pair in pairs:
            advance()
            _score_pair(pair, model, source, data, cfg, threshold, inst, shift_radius_px, centroid_px,
                        images, worst, no_prediction, scan, gallery and out is not None)  # fmt: skip
    result = _evaluation(source, data, images, labels, no_prediction, shift_radius_px, centroid_px)
    if scan is not None:
        result = replace(result, calibration=scan.result(out))
    if out is not None:
        result = replace(result, out=Path(out))
        _write(Path(out), result, cfg, worst)
    return result
