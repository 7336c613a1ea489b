"""How far a model's count bias moves from one source frame to another it never saw: the
``frame_sd`` of a count interval (beadseg.core.intervals), measured by leaving frames out.

The shipped model's interval is calibrated on exact truth of its own training frames
(benchmarks/calibrate_counts.py). A user's frames are new frames, and a model counts a new
frame with a bias of its own. The grouped CV's 40-epoch fold models of the shipped recipe
(`bench_accuracy.py --recipes v3 --epochs 40 --only-fold K --out bench-out/accuracy/real40`)
each left two frames out. For fold K, exact truth (``train`` family, 8 tiles per level, sparse
to monolayer) is made

- of its unseen frames that the counting benchmark does not hold out (``U``), and
- of the calibration frames it trained on (``S``: calibrate_counts.training_frames() minus U),

and the fold model counts both. Per level, ``d = mean log(true / predicted) on U - the same on
S`` is how much a new frame moves the bias the calibration measured. The frames the counting
benchmark holds out (weights/default_split.json) enter neither side, so its coverage stays a
test. A fold whose U has no sparse labelled tile to cut beads from (fold 0: 1280x only) gives no
truth and is left out.

    frame_sd^2 = mean over folds and levels of (d^2 - var_U / n_U - var_S / n_S)

(the noise of the two means taken out, floored at 0). Writes bench-out/frame_spread.json; with
``--coverage`` also the interval's coverage on the held-out family's prediction folders of
bench_counting.py, with and without the frame term, recomputed from their counts.csv.

    python benchmarks/frame_spread.py [--folds 1,2,3] [--model default] [--coverage]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_accuracy import final_model, folds  # noqa: E402
from bench_counting import FAMILY_LEVELS, beadseg, true_centres  # noqa: E402
from calibrate_counts import measure, training_frames  # noqa: E402
from common import DATA, OUT, machine, real_subset  # noqa: E402

from beadseg.core.intervals import CountCalibration, log_ratio  # noqa: E402

RUNS = OUT / "accuracy" / "real40"
HERE = OUT / "frame_spread"


def truth(name: str, frames: list[str], seed: int) -> Path | None:
    """Exact truth of ``frames`` (None when they hold no sparse tile to cut beads from)."""
    out = HERE / f"truth_{name}"
    if not (out / "composites.csv").exists():
        try:
            beadseg("synth", out, "--from", DATA, "--frames", ",".join(frames), "--levels",
                    ",".join(FAMILY_LEVELS), "--n", 8, "--seed", seed, "--prefix", f"fs_{name}",
                    "--family", "train")  # fmt: skip
        except SystemExit as exc:
            print(f"no truth of {frames}: {str(exc).splitlines()[-1]}", file=sys.stderr)
            return None
    return out


def per_level(rows: list[dict], truth_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per level, log(true / predicted) of each tile of ``truth_dir`` (rows of
    calibrate_counts.measure), and the total count error (predicted over true, minus 1)."""
    ratios, errors = {}, {}
    for lv in FAMILY_LEVELS:
        at = [r for r in rows if r["set"] == truth_dir.name and r["level"] == lv]
        ratios[lv] = log_ratio([r["pred"] for r in at], [r["true"] for r in at])
        errors[lv] = sum(r["pred"] for r in at) / sum(r["true"] for r in at) - 1
    return ratios, errors


def fold_differences(k: int, split: dict, calibration_frames: list[str]) -> dict | None:
    unseen = sorted(set(split["val_groups"]) & set(calibration_frames))
    seen = sorted(set(calibration_frames) - set(unseen))
    run = RUNS / f"v3_fold{k}"
    if not unseen or not (run / "last.pt").exists():
        print(f"fold {k}: no model or no unseen calibration frame; left out", file=sys.stderr)
        return None
    u_truth, s_truth = truth(f"unseen_fold{k}", unseen, 650 + k), truth(f"seen_fold{k}", seen, 640 + k)
    if u_truth is None or s_truth is None:
        return None
    model = final_model(run, "v3")
    counted = measure(str(model), f"fold{k}", [u_truth, s_truth])  # predicts afresh: no stale counts
    u, u_err = per_level(counted, u_truth)
    s, s_err = per_level(counted, s_truth)
    rows = []
    for lv in FAMILY_LEVELS:
        d = float(u[lv].mean() - s[lv].mean())
        noise = float(u[lv].var(ddof=1) / len(u[lv]) + s[lv].var(ddof=1) / len(s[lv]))
        rows.append({"level": lv, "unseen_mean": float(u[lv].mean()), "seen_mean": float(s[lv].mean()),
                     "unseen_sd": float(u[lv].std(ddof=1)), "seen_sd": float(s[lv].std(ddof=1)),
                     "d": d, "noise_var": noise, "unseen_count_error": u_err[lv],
                     "seen_count_error": s_err[lv]})  # fmt: skip
    return {"fold": k, "unseen": unseen, "seen": seen, "levels": rows}


def frame_sd(per_fold: list[dict]) -> tuple[float, float]:
    """(frame_sd with the noise of the means taken out, the plain RMS of d)."""
    d2 = np.array([r["d"] ** 2 for f in per_fold for r in f["levels"]])
    noise = np.array([r["noise_var"] for f in per_fold for r in f["levels"]])
    return float(np.sqrt(max(0.0, float(np.mean(d2 - noise))))), float(np.sqrt(np.mean(d2)))


def coverage(cal: CountCalibration, folders: list[Path]) -> dict:
    """Share of the held-out family's tiles whose true count lies in ``cal``'s interval, from
    the counts that bench_counting.py's prediction folders hold."""
    hits: dict[str, list[bool]] = {}
    widths: dict[str, list[float]] = {}  # half the interval's width over the true count
    for pred in folders:
        truth_dir = OUT / "counting" / pred.name.replace("pred_v3split_", "truth_")
        level = {r["name"]: r["level"] for r in csv.DictReader(open(truth_dir / "composites.csv"))}
        for r in csv.DictReader(open(pred / "counts.csv")):
            true = len(true_centres(truth_dir, r["image"]))
            area = int(r["height"]) * int(r["width"])
            iv = cal.interval(int(r["count"]), float(r["foreground_fraction"]), area)
            hits.setdefault(level[r["image"]], []).append(iv.low <= true <= iv.high)
            widths.setdefault(level[r["image"]], []).append((iv.high - iv.low) / 2 / max(true, 1))
    every = [x for h in hits.values() for x in h]
    levels = {k: float(np.mean(v)) for k, v in hits.items()}
    half = {k: float(np.median(v)) for k, v in widths.items()}
    return {"all": float(np.mean(every)), "n_tiles": len(every), "levels": levels, "median_half_width": half}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", default="1,2,3", help="grouped-CV folds (of 4) with a 40-epoch v3 model")
    ap.add_argument("--model", default="default", help="whose table --coverage widens")
    ap.add_argument("--coverage", action="store_true", help="coverage on the held-out family")
    a = ap.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    splits = folds(real_subset(), 4)
    frames = training_frames()
    per_fold = [f for k in map(int, a.folds.split(",")) if (f := fold_differences(k, splits[k], frames))]
    if not per_fold:
        raise SystemExit("no fold could be measured")
    sd, rms = frame_sd(per_fold)
    result = {"machine": machine(), "frame_sd": sd, "rms_d": rms, "folds": per_fold}
    print("| fold | unseen frames | " + " | ".join(FAMILY_LEVELS) + " |")
    print("|---|---|" + "---|" * len(FAMILY_LEVELS))
    for f in per_fold:
        cells = " | ".join(f"{r['d']:+.3f}" for r in f["levels"])
        print(f"| {f['fold']} | {', '.join(f['unseen'])} | {cells} |")
    print(f"frame_sd {sd:.4f} (plain RMS of d {rms:.4f}) over {len(per_fold)} folds")
    if a.coverage:
        from beadseg.models.checkpoint import load_checkpoint, resolve_model_path

        table = load_checkpoint(resolve_model_path(a.model))["meta"]["count_calibration"]
        folders = sorted((OUT / "counting").glob("pred_v3split_heldout_seed*"))
        before = CountCalibration.from_dict({**table, "frame_sd": 0.0})
        after = CountCalibration.from_dict({**table, "frame_sd": sd})
        result["coverage"] = {"without": coverage(before, folders), "with": coverage(after, folders),
                              "folders": [p.name for p in folders]}  # fmt: skip
        print(json.dumps(result["coverage"], indent=1))
    (OUT / "frame_spread.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
