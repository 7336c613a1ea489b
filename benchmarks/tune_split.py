"""Fit and choose the split by size (`InstanceConfig.split_area_ratio`, core/size_split.py) of a
centre-head model on exact truth from its TRAINING frames.

1. Builds 5 tiles per level (sparse to monolayer) of the ``train`` family from the frames the
   counting benchmark does not hold out (seed 701: neither a training tile, seeds 301/401,
   nor a calibration tile, seed 601), once, in bench-out/tune_split/truth_train.
2. Runs the model once per tile, its instance settings with the split off, and fits a
   logistic regression of "this object holds two true centres or more" on the log of its
   area over the single-bead area (``ln r``) and its elongation (``e``). Its boundary
   ``a ln r + c e + b = 0`` is the rule of core/size_split.py: ``ln r + (c / a)(e - 1) >=
   ln ratio``, so it prints the fitted ``ELONGATION_WEIGHT`` (c / a) and ratio, and the AUC of
   each feature alone and together.
3. Scores ``split_area_ratio`` 0 (off) and a grid around the fit, with the package's
   ``ELONGATION_WEIGHT``, per level (centroid F1 within 3 px, total count error) and picks the
   one with the smallest worst |count error| (ties: the higher worst F1).

Writes bench-out/tune_split_<tag>.json and prints a Markdown table. The counting benchmark's
held-out family is never used here.

    python benchmarks/tune_split.py [MODEL] [--tag TAG]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_counting import beadseg  # noqa: E402
from calibrate_counts import training_frames  # noqa: E402
from common import DATA, OUT, machine  # noqa: E402
from train_default import FAMILY_LEVELS  # noqa: E402
from tune_instances import truth_centres  # noqa: E402

from beadseg.core.beads import _whole_bead_area, segment_instances  # noqa: E402
from beadseg.core.labels import centroids  # noqa: E402
from beadseg.core.metrics import match_points  # noqa: E402
from beadseg.core.size_split import ELONGATION_WEIGHT, object_shapes  # noqa: E402

# the ratios `beadseg evaluate --calibrate` scans: one list for both
from beadseg.evaluation.evaluate import CALIBRATION_SPLIT_RATIOS as RATIOS  # noqa: E402
from beadseg.inference import load_model, segment  # noqa: E402


def truth_set() -> Path:
    out = OUT / "tune_split" / "truth_train"
    if not (out / "composites.csv").exists():
        beadseg("synth", out, "--from", DATA, "--frames", ",".join(training_frames()), "--levels",
                FAMILY_LEVELS, "--n", 5, "--seed", 701, "--prefix", "truth", "--family", "train")  # fmt: skip
    return out


def auc(y: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(score[y], score[~y]).statistic / (y.sum() * (~y).sum()))


def fit(features: np.ndarray, y: np.ndarray) -> dict:
    """Logistic regression of ``y`` on (ln r, e) -> the rule's weight and ratio, and AUCs."""
    from scipy.optimize import minimize

    x = np.column_stack([np.log(features[:, 0]), features[:, 1], np.ones(len(y))])

    def nll(w):
        z = x @ w
        return float(np.sum(np.logaddexp(0, z) - y * z))

    a, c, b = minimize(nll, np.zeros(3), method="BFGS").x
    return {
        "elongation_weight": c / a,
        "ratio": float(np.exp(-(b + c) / a)),
        "auc_area": auc(y, x[:, 0]),
        "auc_elongation": auc(y, x[:, 1]),
        "auc_both": auc(y, x[:, :2] @ np.array([a, c])),
        "objects": len(y),
        "with_two_or_more": int(y.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="default")
    ap.add_argument("--tag", default=None)
    a = ap.parse_args()
    truth = truth_set()
    m = load_model(a.model)
    base = m.instances.model_copy(update={"split_area_ratio": 0.0})
    feats, ys, scores = [], [], {r: {} for r in RATIOS}
    for row in csv.DictReader(open(truth / "composites.csv")):
        name, level = row["name"], row["level"]
        seg = segment(m, truth / "images" / f"{name}.png", instances=base)
        pts = truth_centres(truth / "centres" / f"{name}.csv")
        labels = seg.labels
        area, _, _, elong = object_shapes(labels)
        single = _whole_bead_area(labels, area, np.ones(len(area), bool))
        at = np.clip(np.rint(pts).astype(int), 0, np.array(labels.shape) - 1)
        held = np.bincount(labels[at[:, 0], at[:, 1]], minlength=len(area))
        ids = np.flatnonzero(area > 0)  # object_shapes leaves the background's area at 0
        feats.append(np.column_stack([area[ids] / single, elong[ids]]))
        ys.append(held[ids] >= 2)
        for r in RATIOS:
            inst = base.model_copy(update={"split_area_ratio": r})
            lab = segment_instances(seg.probabilities, seg.centres, inst, m.threshold)
            mt = match_points(pts, centroids(lab), 3.0)
            scores[r].setdefault(level, []).append((mt.tp, mt.fp, mt.fn, mt.n_pred, mt.n_true))
    fitted = fit(np.concatenate(feats), np.concatenate(ys))
    table = {}
    for r, by_level in scores.items():
        table[r] = {}
        for level, rows in by_level.items():
            tp, fp, fn, n_pred, n_true = np.array(rows, float).sum(0)
            f1, err = 2 * tp / max(2 * tp + fp + fn, 1), (n_pred - n_true) / n_true
            table[r][level] = {"f1": f1, "total_count_error": err}
    worst = {
        r: (min(v["f1"] for v in t.values()), max(abs(v["total_count_error"]) for v in t.values()))
        for r, t in table.items()
    }
    best = min(RATIOS, key=lambda r: (round(worst[r][1], 4), -worst[r][0]))
    tag = a.tag or Path(a.model).stem
    result = {"model": a.model, "machine": machine(), "truth": str(truth), "fit": fitted,
              "elongation_weight_used": ELONGATION_WEIGHT, "table": {str(k): v for k, v in table.items()},
              "chosen": best}  # fmt: skip
    (OUT / f"tune_split_{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    f = fitted
    print(f"fit on {f['objects']} objects ({f['with_two_or_more']} with 2+ centres): elongation weight "
          f"{f['elongation_weight']:.2f}, ratio {f['ratio']:.2f}; AUC area {f['auc_area']:.3f}, "
          f"elongation {f['auc_elongation']:.3f}, both {f['auc_both']:.3f}")  # fmt: skip
    levels = list(next(iter(table.values())))
    print("| split_area_ratio | " + " | ".join(levels) + " |")
    print("|---" * (len(levels) + 1) + "|")
    for r, t in table.items():
        cells = " | ".join(f"{t[lv]['f1']:.3f} / {100 * t[lv]['total_count_error']:+.1f} %" for lv in levels)
        print(f"| {r}{' (chosen)' if r == best else ''} | {cells} |")


if __name__ == "__main__":
    main()
