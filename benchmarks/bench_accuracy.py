"""Accuracy: grouped K-fold cross-validation over source frames.

For each fold a model is trained on the other folds' frames with the default recipe
(configs/default_model.yaml, time-capped) and evaluated on the held-out frames, against the masks
as given ("raw") and against re-registered masks ("fixed", `beadseg fix-masks`). The classical
baseline (beadseg.classical, threshold calibrated on the training folds) runs on the same folds.
Out-of-fold counts give the dilution slope. Writes bench-out/accuracy/<set>/accuracy.json.

    python benchmarks/bench_accuracy.py --set real --folds 4 --variants unet:align,unet:raw
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
from beadseg.evaluate import aggregate, evaluate, evaluate_image, truth_labels  # noqa: E402
from beadseg.io import find_pairs, read_pair  # noqa: E402
from beadseg.registration import fix_masks  # noqa: E402
from beadseg.training import train  # noqa: E402


def summarise(images: list) -> dict:
    agg = aggregate(images)
    rows = [e.row() for e in images]
    return {
        "n_images": len(rows),
        "iou_mean": agg.iou_mean, "iou_pooled": agg.pixels.iou,
        "iou_best_shift_mean": agg.iou_best_shift_mean,
        "object_f1": agg.objects.f1, "centroid_f1": agg.centroids.f1,
        "median_abs_count_error": agg.counts.median_abs_error,
        "total_count_error": agg.counts.total_relative_error,
        "dilution_slope_pred": slope(rows, "pred_count"),
        "dilution_slope_true": slope(rows, "true_count"),
    }


def slope(rows: list[dict], key: str):
    pts = [
        (r["dilution"], r[key] / (r["px_tp"] + r["px_fp"] + r["px_fn"] + r["px_tn"]) * 1e6)
        for r in rows
        if r["dilution"]
    ]
    f = fit_dilution([p[0] for p in pts], [p[1] for p in pts]) if pts else None
    return f.slope if f else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=["real", "synthetic"], default="real")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--variants", default="unet:align", help="model:align|raw, comma-separated")
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    data = real_subset() if args.set == "real" else synthetic_subset()
    out = OUT / "accuracy" / args.set
    out.mkdir(parents=True, exist_ok=True)
    fixed = out / "fixed-masks"
    if not (fixed / "shifts.csv").exists():
        fix_masks(data, fixed)
    pairs = find_pairs(data)
    result = {
        "machine": machine(),
        "set": args.set,
        "folds": args.folds,
        "minutes_per_fold": args.minutes,
        "rows": {},
        "table": {},
    }
    inst = InstanceConfig()
    splits = []
    for variant in args.variants.split(","):
        name, align = variant.split(":")
        for target in ("raw", "fixed"):
            result["rows"][f"{variant}@{target}"] = []
        for k in range(args.folds):
            run = out / f"{name}_{align}_fold{k}"
            cfg = load_config(
                ROOT / "configs" / "default_model.yaml",
                [
                    f"data.path={data}",
                    f"model.name={name}",
                    f"data.align_masks={align == 'align'}",
                    f"split.folds={args.folds}",
                    f"split.fold={k}",
                    f"train.max_minutes={args.minutes}",
                    f"train.epochs={args.epochs}",
                ],
            )
            if not (run / "result.json").exists():
                train(
                    cfg,
                    run,
                    progress=False,
                    log=lambda s, tag=f"[{variant} fold {k}]": print(tag, s, flush=True),
                )
            split = json.loads((run / "split.json").read_text())
            if len(splits) < args.folds:
                splits.append(split)
            val = set(split["val"])
            for target in ("raw", "fixed"):
                val_data = subset(f"{args.set}_{target}_fold{k}_val", lambda s, v=val: s in v) \
                    if target == "raw" else _fixed_subset(fixed, val, out / f"fixed_fold{k}_val")
                ev = evaluate(run, val_data, out / f"{name}_{align}_fold{k}_eval_{target}",
                              PredictConfig(), gallery=target == "raw")
                result["rows"][f"{variant}@{target}"] += ev.images
    t0 = time.time()
    by_name = {p.name: p for p in pairs}
    fixed_pairs = {p.name: p for p in find_pairs(fixed)}
    for target, src in (("raw", by_name), ("fixed", fixed_pairs)):
        rows = []
        for split in splits:
            imgs, labs = [], []
            for n in split["train"]:
                img, info = read_pair(src[n])
                imgs.append(img)
                labs.append(truth_labels(data, src[n], info.mask, inst))
            thr = calibrate_threshold(imgs, labs)
            for n in split["val"]:
                img, info = read_pair(src[n])
                rows.append(evaluate_image(classical_segment(img, thr), info.mask,
                                           truth_labels(data, src[n], info.mask, inst), name=n))
            result.setdefault("classical_threshold_sd", {}).setdefault(target, []).append(thr)
        result["rows"][f"classical@{target}"] = rows
    result["classical_seconds"] = time.time() - t0
    for key, images in result["rows"].items():
        result["table"][key] = summarise(images)
        result["rows"][key] = [e.row() for e in images]
    (out / "accuracy.json").write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps(result["table"], indent=2, default=float))


def _fixed_subset(fixed: Path, names: set, out: Path) -> Path:
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for p in (fixed / sub).iterdir():
            link = out / sub / p.name
            if p.stem in names and not link.exists():
                link.symlink_to(p.resolve())
    return out


if __name__ == "__main__":
    main()
