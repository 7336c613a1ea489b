"""Accuracy: grouped K-fold cross-validation over source frames.

For each fold a model is trained on the other folds' frames with the default recipe
(configs/default_model.yaml, time-capped) and evaluated on the held-out frames; the classical
baseline (beadseg.classical, threshold calibrated on the training folds) runs on the same folds.
Out-of-fold counts give the dilution slope. Writes bench-out/accuracy/<set>/accuracy.json.

    python benchmarks/bench_accuracy.py --set real --folds 4 --models unet --minutes 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, machine, real_subset, subset, synthetic_subset  # noqa: E402

from beadseg.classical import calibrate_threshold, classical_segment  # noqa: E402
from beadseg.config import InstanceConfig, PredictConfig, load_config  # noqa: E402
from beadseg.dilution import fit_dilution  # noqa: E402
from beadseg.evaluate import _truth_labels, aggregate, evaluate, evaluate_image  # noqa: E402
from beadseg.io import find_pairs, read_pair  # noqa: E402
from beadseg.naming import parse_name  # noqa: E402
from beadseg.train import train  # noqa: E402


def summarise(agg: dict) -> dict:
    return {
        "iou_mean": agg["iou_mean"], "iou_pooled": agg["iou_pooled"],
        "iou_best_shift_mean": agg["iou_best_shift_mean"],
        "object_f1": agg["object"]["f1"], "centroid_f1": agg["centroid"]["f1"],
        "median_abs_count_error": agg["counts"]["median_abs_error"],
        "total_count_error": agg["counts"]["total_relative_error"],
    }


def slope(rows: list[dict], key: str):
    pts = [(r["dilution"], r[key] / (r["px_tp"] + r["px_fp"] + r["px_fn"] + r["px_tn"]) * 1e6)
           for r in rows if r["dilution"]]
    f = fit_dilution([p[0] for p in pts], [p[1] for p in pts]) if pts else None
    return f.slope if f else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=["real", "synthetic"], default="real")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--models", default="unet")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    data = real_subset() if args.set == "real" else synthetic_subset()
    out = OUT / "accuracy" / args.set
    out.mkdir(parents=True, exist_ok=True)
    pairs = find_pairs(data)
    result = {"machine": machine(), "set": args.set, "folds": args.folds,
              "minutes_per_fold": args.minutes, "methods": {}}
    inst = InstanceConfig()

    # classical baseline, same folds as the models (folds come from the first model's split)
    oof: dict[str, list] = {}
    for name in args.models.split(","):
        rows = []
        for k in range(args.folds):
            run = out / f"{name}_fold{k}"
            cfg = load_config(ROOT / "configs" / "default_model.yaml", [
                f"data.path={data}", f"model.name={name}", f"split.folds={args.folds}",
                f"split.fold={k}", f"train.max_minutes={args.minutes}",
                f"train.epochs={args.epochs}"])
            if not (run / "result.json").exists():
                train(cfg, run, progress=False,
                      log=lambda s, tag=f"[{name} fold {k}]": print(tag, s, flush=True))
            split = json.loads((run / "split.json").read_text())
            val = set(split["val"])
            val_data = subset(f"{args.set}_fold{k}_val", lambda stem, v=val: stem in v)
            ev = evaluate(run, val_data, out / f"{name}_fold{k}_eval", PredictConfig())
            rows += ev["per_image"]
            oof.setdefault("folds", []).append(split)
        result["methods"][name] = rows
    folds = oof["folds"][: args.folds]
    rows = []
    t0 = time.time()
    by_name = {p.name: p for p in pairs}
    for split in folds:
        train_imgs, train_labs = [], []
        for n in split["train"]:
            img, info = read_pair(by_name[n])
            train_imgs.append(img)
            train_labs.append(_truth_labels(data, by_name[n], info.mask, inst))
        thr = calibrate_threshold(train_imgs, train_labs)
        for n in split["val"]:
            img, info = read_pair(by_name[n])
            r = evaluate_image(classical_segment(img, thr), info.mask,
                               _truth_labels(data, by_name[n], info.mask, inst))
            r.update(image=n, dilution=parse_name(n).dilution, threshold_sd=thr)
            rows.append(r)
    result["methods"]["classical"] = rows
    result["classical_seconds"] = time.time() - t0

    table = {}
    for name, rows in result["methods"].items():
        for r in rows:
            r.setdefault("dilution", parse_name(r["image"]).dilution)
        agg = aggregate(rows)
        table[name] = {**summarise(agg), "n_images": len(rows),
                       "dilution_slope_pred": slope(rows, "pred_count"),
                       "dilution_slope_true": slope(rows, "true_count")}
    result["table"] = table
    (out / "accuracy.json").write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps(table, indent=2, default=float))


if __name__ == "__main__":
    main()
