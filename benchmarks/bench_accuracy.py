"""Accuracy: grouped K-fold cross-validation over source frames, recipe against recipe.

The folds are drawn once (grouped by source frame, stratified by density, as `beadseg train`
splits); for each fold and recipe a model is trained on the other folds' frames for a fixed
number of epochs and evaluated on the held-out frames, against the masks as given ("raw") and
against re-registered masks ("fixed", `beadseg fix-masks`). Recipes:

- ``v1``: configs/recipe_v1.yaml, the model shipped before the centre head (real tiles only);
- ``v1all``: v1 with ``data.use_all_labels=true`` (the doctor's label grades off: unusable
  labels trained on, shifted masks not re-registered), for the grades-on-vs-off comparison;
- ``v2``: configs/default_model.yaml (centre head), trained on the fold's real tiles plus
  exact-truth composites of the first generator made only from the fold's training frames and
  the synthetic 80x tiles of the other folds (each synthetic tile is its own frame, dealt to
  the folds round-robin); its pixel IoU on the synthetic tiles it left out is reported too;
- ``v3``: the same with the ``train``-family composites of benchmarks/train_default.py (sparse
  to monolayer, 12 per level) made only from the fold's training frames: the recipe of the
  model shipped now.

The classical baseline (beadseg.evaluation.classical, threshold calibrated on the training folds) runs on
the same folds. Out-of-fold counts give the dilution slope. Writes
bench-out/accuracy/<set>/accuracy.json.

    python benchmarks/bench_accuracy.py --set real --folds 4 --recipes v1,v2 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, machine, real_subset, subset, synthetic_subset  # noqa: E402
from train_default import COMPOSITES, COMPOSITES_V2, SPLIT_AREA_RATIO, composites  # noqa: E402

from beadseg.core.config import InstanceConfig, PredictConfig, load_config  # noqa: E402
from beadseg.core.dilution import fit_dilution  # noqa: E402
from beadseg.core.files import find_pairs  # noqa: E402
from beadseg.core.labels import label_components  # noqa: E402
from beadseg.core.masks import read_mask, read_pair  # noqa: E402
from beadseg.core.naming import source_frame  # noqa: E402
from beadseg.core.registration import fix_masks  # noqa: E402
from beadseg.data.split import grouped_split  # noqa: E402
from beadseg.evaluation.classical import calibrate_threshold, classical_segment  # noqa: E402
from beadseg.evaluation.evaluate import evaluate  # noqa: E402
from beadseg.evaluation.scores import aggregate, evaluate_image  # noqa: E402
from beadseg.evaluation.truth import truth_labels  # noqa: E402
from beadseg.training import train  # noqa: E402

RECIPES = {
    "v1": ROOT / "configs" / "recipe_v1.yaml",
    "v2": ROOT / "configs" / "default_model.yaml",
    "v3": ROOT / "configs" / "default_model.yaml",
    "v1all": ROOT / "configs" / "recipe_v1.yaml",  # v1 trained on every label, grades off
}
#: settings a recipe adds to its config file
RECIPE_SETS = {"v1all": ["data.use_all_labels=true"]}


def summarise(images: list) -> dict:
    agg = aggregate(images)
    rows = [e.row() for e in images]
    return {
        "n_images": len(rows),
        "iou_mean": agg.iou_mean,
        "iou_pooled": agg.pixels.iou,
        "iou_best_shift_mean": agg.iou_best_shift_mean,
        "object_f1": agg.objects.f1,
        "centroid_f1": agg.centroids.f1,
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


def folds(data: Path, k: int) -> list[dict]:
    """The K grouped folds of the data ({"train": names, "val": names}), as `beadseg train`
    draws them (split.seed 0, density = objects per tile)."""
    pairs = find_pairs(data)
    groups = {p.name: source_frame(p.name) for p in pairs}
    density = {p.name: label_components(read_mask(p.mask).mask)[1] for p in pairs}
    return [grouped_split(groups, density, folds=k, fold=i, seed=0).as_dict() for i in range(k)]


def synthetic_fold(name: str, k: int) -> int | None:
    """The fold of a synthetic 80x tile (each its own source frame): tiles dealt round-robin in
    name order, so every v2 fold model leaves a quarter of them out for an honest pixel IoU."""
    names = sorted(p.stem for p in (synthetic_subset() / "images").iterdir())
    return names.index(name) % k if name in names else None


def final_model(run: Path, recipe: str) -> Path:
    """The model a fold keeps: its last epoch (every recipe; no epoch is chosen on the held-out
    frames), with this version's instance settings; the v3 recipe's carry the shipped model's
    split by size, as benchmarks/train_default.py exports it."""
    from beadseg.models.checkpoint import load_checkpoint, save_checkpoint, slim_checkpoint

    final = run / "final.pt"
    if not final.exists():
        state = load_checkpoint(run / "last.pt")
        inst = InstanceConfig(split_area_ratio=SPLIT_AREA_RATIO if recipe == "v3" else 0.0)
        save_checkpoint(final, slim_checkpoint(state, instances=inst.model_dump()))
    return final


def train_fold(recipe: str, split: dict, k: int, args, set_name: str, out: Path) -> Path:
    """Train one recipe on one fold (once); returns the run folder."""
    run = out / f"{recipe}_fold{k}"
    if (run / "result.json").exists():
        return run
    train_dir = subset(f"{set_name}_fold{k}_train", lambda s, t=set(split["train"]): s in t)
    val_dir = subset(f"{set_name}_fold{k}_val", lambda s, v=set(split["val"]): s in v)
    paths = [train_dir]
    if recipe in ("v2", "v3"):
        frames = sorted(set(split["train_groups"]))
        recipe_sets, tag = (COMPOSITES_V2, "") if recipe == "v2" else (COMPOSITES, "v3_")
        paths += [
            composites(
                OUT / "train_data" / f"composites_{tag}{set_name}_fold{k}_{c}",
                frames,
                lv,
                n,
                seed,
                touch,
                f"comp_{c}",
            )
            for c, lv, n, seed, touch in recipe_sets
        ]
        if set_name == "real":  # the synthetic 80x tiles of the other folds (see synthetic_fold)
            paths.append(
                subset(
                    f"synthetic80x_not_fold{k}_of{args.folds}",
                    lambda s: synthetic_fold(s, args.folds) not in (None, k),
                )
            )
    sets = [
        f"data.path=[{','.join(map(str, paths))}]",
        f"data.val_path={val_dir}",
        f"train.epochs={args.epochs}",
        "train.early_stop_patience=null",
    ] + ([f"train.num_threads={args.threads}"] if args.threads else [])
    cfg = load_config(RECIPES[recipe], sets + RECIPE_SETS.get(recipe, []))
    train(cfg, run, progress=False, log=lambda s, tag=f"[{recipe} fold {k}]": print(tag, s, flush=True))
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=["real", "synthetic"], default="real")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--recipes", default="v1,v2", help="comma-separated: v1, v2, v3, v1all")
    ap.add_argument("--epochs", type=int, default=10, help="fixed epochs per fold")
    ap.add_argument("--only-fold", type=int, default=None, help="train just this fold (parallel jobs)")
    ap.add_argument("--eval-folds", default=None, help="comma-separated: score only these folds (e.g. 1,2,3)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--classical-only", action="store_true", help="only the classical baseline (no training)")
    ap.add_argument("--out", type=Path, default=None, help="default bench-out/accuracy/SET")
    args = ap.parse_args()
    data = real_subset() if args.set == "real" else synthetic_subset()
    out = args.out or OUT / "accuracy" / args.set
    out.mkdir(parents=True, exist_ok=True)
    fixed = out / "fixed-masks"
    if not (fixed / "shifts.csv").exists():
        fix_masks(data, fixed)
    splits = folds(data, args.folds)
    scored = [int(k) for k in args.eval_folds.split(",")] if args.eval_folds else list(range(args.folds))
    recipes = args.recipes.split(",")
    if args.classical_only:
        result = {"rows": {}, "table": {}}
        _classical(result, data, fixed, splits)
        table = {k: summarise(v) for k, v in result["rows"].items()}
        (out / "accuracy_classical.json").write_text(json.dumps(table, indent=2, default=float))
        print(json.dumps(table, indent=2, default=float))
        return
    if args.only_fold is not None:
        for recipe in recipes:
            train_fold(recipe, splits[args.only_fold], args.only_fold, args, args.set, out)
        return
    result = {
        "machine": machine(),
        "set": args.set,
        "folds": args.folds,
        "epochs_per_fold": args.epochs,
        "scored_folds": scored,
        "splits": splits,
        "rows": {},
        "table": {},
        "per_fold": {},
        "synthetic_heldout": {},
    }
    for recipe in recipes:
        for target in ("raw", "fixed"):
            result["rows"][f"{recipe}@{target}"] = []
        for k, split in enumerate(splits):
            if k not in scored:
                continue
            model = final_model(train_fold(recipe, split, k, args, args.set, out), recipe)
            val = set(split["val"])
            for target in ("raw", "fixed"):
                val_data = (
                    subset(f"{args.set}_{target}_fold{k}_val", lambda s, v=val: s in v)
                    if target == "raw"
                    else _fixed_subset(fixed, val, out / f"fixed_fold{k}_val")
                )
                ev = evaluate(
                    model,
                    val_data,
                    out / f"{recipe}_fold{k}_eval_{target}",
                    PredictConfig(),
                    gallery=target == "raw",
                )
                result["rows"][f"{recipe}@{target}"] += ev.images
                result["per_fold"][f"{recipe}@{target}@fold{k}"] = summarise(ev.images)
    if args.set == "real":
        for recipe in recipes:  # each fold's model on the synthetic 80x tiles it never saw
            images = []
            for k in scored:
                syn = subset(
                    f"synthetic80x_fold{k}_of{args.folds}", lambda s, k=k: synthetic_fold(s, args.folds) == k
                )
                images += evaluate(out / f"{recipe}_fold{k}" / "final.pt", syn, None, PredictConfig()).images
            result["synthetic_heldout"][recipe] = summarise(images)
    _classical(result, data, fixed, [splits[k] for k in scored])
    for key, images in result["rows"].items():
        result["table"][key] = summarise(images)
        result["rows"][key] = [e.row() for e in images]
    name = "accuracy.json" if args.recipes == "v1,v2" else f"accuracy_{args.recipes.replace(',', '_')}.json"
    if args.eval_folds:
        name = name.replace(".json", f"_folds{''.join(map(str, scored))}.json")
    (out / name).write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps({"table": result["table"], "per_fold": result["per_fold"]}, indent=2, default=float))


def _classical(result: dict, data: Path, fixed: Path, splits: list[dict]) -> None:
    """The classical baseline on the same folds (threshold calibrated on each fold's training side),
    on the labels the doctor does not grade unusable - the ones the models train on and are
    scored on."""
    from beadseg.analysis import select_labels

    t0 = time.time()
    inst = InstanceConfig()
    by_name = {p.name: p for p in find_pairs(data)}
    usable = {p.name for p in select_labels(list(by_name.values()))[0]}
    fixed_pairs = {p.name: p for p in find_pairs(fixed)}
    for target, src in (("raw", by_name), ("fixed", fixed_pairs)):
        rows = []
        for split in splits:
            imgs, labs = [], []
            for n in (n for n in split["train"] if n in usable):
                img, info = read_pair(src[n])
                imgs.append(img)
                labs.append(truth_labels(data, src[n], info.mask, inst))
            thr = calibrate_threshold(imgs, labs)
            for n in (n for n in split["val"] if n in usable):
                img, info = read_pair(src[n])
                rows.append(
                    evaluate_image(
                        classical_segment(img, thr),
                        info.mask,
                        truth_labels(data, src[n], info.mask, inst),
                        name=n,
                    )
                )
            result.setdefault("classical_threshold_sd", {}).setdefault(target, []).append(thr)
        result["rows"][f"classical@{target}"] = rows
    result["classical_seconds"] = time.time() - t0


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
