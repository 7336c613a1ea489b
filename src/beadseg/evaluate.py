"""`beadseg evaluate`: pixel, object and count metrics per image, source frame, dilution and
overall, all computed with :mod:`beadseg.metrics`.

Next to plain pixel IoU it reports the IoU at the best global shift within +-k px (masks that
sit a few pixels off their beads cap plain IoU) and object F1 with centroid matching, so model
quality can be told apart from label noise.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .config import InstanceConfig, PredictConfig
from .errors import InputError
from .instances import instances_from_mask
from .io import Pair, find_pairs, read_labels, read_mask, read_pair, write_csv
from .metrics import (
    PixelScores,
    best_shift_iou,
    count_error,
    count_summary,
    match_centroids,
    match_objects,
    pixel_scores,
    pooled,
)
from .naming import parse_name
from .provenance import write_json, write_provenance


def _truth_labels(data: Path, pair: Pair, mask: np.ndarray, inst: InstanceConfig) -> np.ndarray:
    """Instance labels of the truth: a labels/ folder when the data has one (synthetic sets),
    else the mask split into beads with the same instance settings as the predictions (the same
    hole filling, splitting and size limits, so both sides are counted alike)."""
    for ext in (".tif", ".tiff", ".png"):
        p = data / "labels" / f"{pair.name}{ext}"
        if p.is_file():
            return read_labels(p)
    return instances_from_mask(mask, None, inst)


def _find_prediction(pred_dir: Path, stem: str) -> np.ndarray:
    for ext in (".tif", ".tiff"):
        p = pred_dir / "labels" / f"{stem}{ext}"
        if p.is_file():
            return read_labels(p)
    p = pred_dir / "masks" / f"{stem}.png"
    if p.is_file():
        return instances_from_mask(read_mask(p).mask)
    raise InputError(f"no prediction for {stem} in {pred_dir}/labels or {pred_dir}/masks; run "
                     "`beadseg predict` on the same images first")


def _sums(rows: list[dict], prefix: str) -> dict:
    tp, fp, fn = (int(sum(r[f"{prefix}_{k}"] for r in rows)) for k in ("tp", "fp", "fn"))
    return {"tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0}


def evaluate_image(pred_labels: np.ndarray, true_mask: np.ndarray, true_labels: np.ndarray,
                   shift_radius_px: int = 3, centroid_px: float = 3.0) -> dict:
    """All metrics of one image (see :mod:`beadseg.metrics` for the definitions), with the raw
    counts (``px_*``, ``obj_*``, ``cen_*``) needed to pool images."""
    pred_mask = pred_labels > 0
    px = pixel_scores(pred_mask, true_mask)
    shift_iou, dy, dx = best_shift_iou(pred_mask, true_mask, shift_radius_px)
    obj = match_objects(true_labels, pred_labels, 0.5)
    cen = match_centroids(true_labels, pred_labels, centroid_px)
    n_pred, n_true = int(obj.n_pred), int(obj.n_true)
    return {
        "iou": px.iou, "dice": px.dice, "precision": px.precision, "recall": px.recall,
        "iou_best_shift": shift_iou, "best_shift_dy": dy, "best_shift_dx": dx,
        "object_f1": obj.f1, "object_precision": obj.precision, "object_recall": obj.recall,
        "mean_matched_iou": obj.mean_matched_score, "panoptic_quality": obj.panoptic_quality,
        "centroid_f1": cen.f1, "true_count": n_true, "pred_count": n_pred,
        "count_error": count_error(n_pred, n_true),
        "px_tp": px.tp, "px_fp": px.fp, "px_fn": px.fn, "px_tn": px.tn,
        "obj_tp": obj.tp, "obj_fp": obj.fp, "obj_fn": obj.fn,
        "cen_tp": cen.tp, "cen_fp": cen.fp, "cen_fn": cen.fn,
    }


def aggregate(rows: list[dict]) -> dict:
    """Pool per-image rows of :func:`evaluate_image`: means, pooled pixel scores, object and
    centroid matching (TP/FP/FN summed), count errors."""
    px = pooled([PixelScores(r["px_tp"], r["px_fp"], r["px_fn"], r["px_tn"]) for r in rows])
    cs = count_summary([r["pred_count"] for r in rows], [r["true_count"] for r in rows])
    return {
        "n_images": len(rows),
        "iou_mean": float(np.mean([r["iou"] for r in rows])),
        "iou_pooled": px.iou,
        "dice_mean": float(np.mean([r["dice"] for r in rows])),
        "dice_pooled": px.dice,
        "iou_best_shift_mean": float(np.mean([r["iou_best_shift"] for r in rows])),
        "object": _sums(rows, "obj"),
        "centroid": _sums(rows, "cen"),
        "object_f1_mean": float(np.mean([r["object_f1"] for r in rows])),
        "counts": cs.as_dict(),
    }


def _predictions(source: str | Path, pairs: list[Pair], cfg: PredictConfig,
                 threshold: float | None):
    """Yield (pair, image, info, pred_labels, prob or None) for each pair."""
    src = Path(str(source))
    is_pred_dir = src.is_dir() and ((src / "labels").is_dir() or (src / "masks").is_dir()) \
        and not any(src.glob("*.pt"))
    model = None
    if not is_pred_dir:
        from .devices import resolve_device
        from .inference import load_model

        model = load_model(source, resolve_device(cfg.device))
    for pair in pairs:
        image, info = read_pair(pair)
        if model is None:
            yield pair, image, info, _find_prediction(src, pair.name), None, None
        else:
            from .inference import segment_image

            prob, labels, _ = segment_image(model, image, cfg, threshold)
            yield pair, image, info, labels, prob, model


def evaluate(source: str | Path, data: str | Path, out: str | Path | None = None,
             cfg: PredictConfig | None = None, threshold: float | None = None,
             shift_radius_px: int = 3, centroid_px: float = 3.0, calibrate: bool = False,
             gallery: bool = True, only: set[str] | None = None) -> dict:
    """Evaluate predictions (a `beadseg predict` folder) or a model against a labelled set.

    Parameters
    ----------
    source : path or "default"
        A prediction folder, a run folder, a checkpoint or ``default``.
    data : path
        Folder with images/ and masks/ (and optionally labels/).
    out : path, optional
        Writes metrics.csv, metrics.json and worst_cases.png.
    calibrate : bool
        With a model: choose the probability threshold that maximises object F1 (centroid
        matching) on this set and store it in the checkpoint.
    only : set of str, optional
        Evaluate only these image names (e.g. the validation side of a split).

    Returns
    -------
    dict
        ``{"overall", "per_source_frame", "per_dilution", "per_image", "calibration"?}``.
    """
    cfg = cfg or PredictConfig()
    data = Path(data)
    pairs = find_pairs(data)
    if only is not None:
        pairs = [p for p in pairs if p.name in only]
        if not pairs:
            raise InputError(f"none of the requested images is in {data}")
    rows, worst = [], []
    thresholds = np.round(np.arange(0.2, 0.81, 0.05), 2)
    cal_sums = np.zeros((len(thresholds), 3))  # tp, fp, fn per threshold
    model = None
    for pair, image, info, pred, prob, model in _predictions(source, pairs, cfg, threshold):
        true_labels = _truth_labels(data, pair, info.mask, model.instances if model else
                                    InstanceConfig())
        if pred.shape != info.mask.shape:
            raise InputError(f"prediction for {pair.name} is {pred.shape[::-1]} but the mask is "
                             f"{info.mask.shape[::-1]}")
        r = evaluate_image(pred, info.mask, true_labels, shift_radius_px, centroid_px)
        name = parse_name(pair.name)
        r.update(image=pair.name, source_frame=name.source_frame, dilution=name.dilution)
        rows.append(r)
        if calibrate and prob is not None:
            for i, t in enumerate(thresholds):
                lab = instances_from_mask(prob > t, prob, model.instances)
                m = match_centroids(true_labels, lab, centroid_px)
                cal_sums[i] += (m.tp, m.fp, m.fn)
        if gallery and out is not None:
            worst.append((r["centroid_f1"], pair.name, image, info.mask, pred > 0))
            worst = sorted(worst, key=lambda w: w[0])[:4]  # keep only the 4 worst in memory
    groups = {}
    for key in ("source_frame", "dilution"):
        by = defaultdict(list)
        for r in rows:
            if r[key] is not None:
                by[r[key]].append(r)
        groups[key] = {str(k): aggregate(v) for k, v in sorted(by.items(), key=lambda kv: str(kv[0]))}
    result = {
        "source": str(source),
        "data": str(data),
        "definitions": {
            "iou_mean": "mean over images of pixel IoU (empty-empty = 1)",
            "iou_pooled": "pixel IoU of all pixels of all images pooled",
            "iou_best_shift": f"pixel IoU at the best global shift within +-{shift_radius_px} px",
            "object": "instances matched one-to-one at IoU >= 0.5 (stardist's matching)",
            "centroid": f"instances matched one-to-one by centroid distance <= {centroid_px} px",
            "count_error": "(predicted - true) / max(true, 1) per image",
            "true_instances": "labels/ of the data if present, else its masks split into beads "
                              "with the model's instance settings (same size limits as predictions)",
        },
        "overall": aggregate(rows),
        "per_source_frame": groups["source_frame"],
        "per_dilution": groups["dilution"],
        "per_image": rows,
    }
    if calibrate:
        if model is None:
            raise InputError("--calibrate needs a model (run folder, checkpoint or default), "
                             "not a folder of predictions")
        tp, fp, fn = cal_sums.T
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        best = float(thresholds[int(np.argmax(f1))])
        result["calibration"] = {"thresholds": thresholds.tolist(), "centroid_f1": f1.tolist(),
                                 "best_threshold": best, "model": model.source}
        store_threshold(model.source, best)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "metrics.json", result)
        write_csv(out / "metrics.csv", result["per_image"])
        if gallery and worst:
            from .plots import plot_worst_cases

            plot_worst_cases(worst, out / "worst_cases.png")
        write_provenance(out, "evaluate")
    return result


def store_threshold(checkpoint: str | Path, threshold: float) -> None:
    """Write a calibrated threshold into a checkpoint (atomically)."""
    from .checkpoint import is_shipped, load_checkpoint, save_checkpoint

    path = Path(checkpoint)
    if is_shipped(path):
        raise InputError("the shipped default model is read-only; copy it (e.g. "
                         f"cp {path} my_model.pt) and calibrate the copy")
    state = load_checkpoint(path)
    state["meta"]["threshold"] = float(threshold)
    state["meta"]["threshold_calibrated"] = True
    save_checkpoint(path, state)
