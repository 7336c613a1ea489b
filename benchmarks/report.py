"""Turn the JSON results in bench-out/ into the tables of BENCHMARKS.md (printed to stdout).

    python benchmarks/report.py > /tmp/tables.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT  # noqa: E402


def load(rel: str):
    p = OUT / rel
    return json.loads(p.read_text()) if p.is_file() else None


def fmt(v, d=3):
    if v is None:
        return "-"
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def accuracy_table(res: dict) -> str:
    cols = [("iou_mean", "pixel IoU (mean)"), ("iou_pooled", "pixel IoU (pooled)"),
            ("iou_best_shift_mean", "IoU best shift ±3 px"), ("object_f1", "object F1 @IoU0.5"),
            ("centroid_f1", "centroid F1 (3 px)"),
            ("median_abs_count_error", "median abs count err"),
            ("total_count_error", "total count err"),
            ("dilution_slope_pred", "dilution slope (pred)"),
            ("dilution_slope_true", "dilution slope (masks)")]
    lines = ["| method @ masks | images | " + " | ".join(c[1] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for key, row in res["table"].items():
        lines.append(f"| {key} | {row['n_images']} | "
                     + " | ".join(fmt(row[c[0]]) for c in cols) + " |")
    return "\n".join(lines)


def per_fold_table(res: dict, set_name: str) -> str:
    """Object and centroid F1 per fold and variant, with the epochs each fold's model trained."""
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).parent))
    from bench_accuracy import summarise

    acc = OUT / "accuracy" / set_name
    lines = ["| variant @ masks | fold | epochs | object F1 | centroid F1 | median abs count err |",
             "|---|---|---|---|---|---|"]
    for key, rows in res["rows"].items():
        variant = key.split("@")[0]
        if variant == "classical":
            continue
        name, align = variant.split(":")
        for k in range(res["folds"]):
            run = acc / f"{name}_{align}_fold{k}"
            if not (run / "split.json").exists():
                continue
            val = set(json.loads((run / "split.json").read_text())["val"])
            epochs = json.loads((run / "result.json").read_text())["epochs_run"]
            t = summarise([dict(r) for r in rows if r["image"] in val])
            lines.append(f"| {key} | {k} | {epochs} | {fmt(t['object_f1'])} | "
                         f"{fmt(t['centroid_f1'])} | {fmt(t['median_abs_count_error'])} |")
    return "\n".join(lines)


def main():
    out = []
    a = load("analyze/bench_analyze.json")
    if a:
        out += ["## analyze", "", f"Machine: {a['machine']}", "",
                "| images | plots | best of 3 (s) |", "|---|---|---|"]
        out += [f"| {r['images']} | {r['plots']} | {r['best_s']:.2f} |" for r in a["runs"]]
        out.append("")
    p = load("predict/bench_predict.json")
    if p:
        out += ["## predict (3840x2160 frame)", "", f"Machine: {p['machine']}; model "
                f"{p['model']} ({p['parameters']} parameters), {p['torch_threads']} torch threads",
                "", "| probabilities by | seconds | MP/s |", "|---|---|---|"]
        for k, v in p["probabilities_s"].items():
            out.append(f"| {k} | {v:.2f} | {p['mp_per_s'][k]:.2f} |")
        if "tile_size_s" in p:
            out += ["", "| tile size (overlap 96) | seconds | max diff to full frame |",
                    "|---|---|---|"]
            for k, v in sorted(p["tile_size_s"].items(), key=lambda kv: int(kv[0])):
                d = p.get("tile_size_max_diff", {}).get(k)
                out.append(f"| {k} | {v:.2f} | {fmt(d, 6) if d is not None else '(above)'} |")
        out += ["", f"Speed-up of ours over MONAI: {p['speedup_vs_monai']:.2f}x. Max |difference| "
                f"to full-frame inference more than 64 px from the border: "
                + ", ".join(f"{k} {v:.2e}" for k, v in p["max_abs_diff_vs_full_frame_inner"].items()),
                "", "| pipeline stage | seconds | MP/s |", "|---|---|---|"]
        for k, v in p["pipeline_s"].items():
            out.append(f"| {k} | {v:.2f} | {p['pipeline_mp_per_s'].get(k, 0):.2f} |")
        m = p["many_frames"]
        out += ["", f"{m['frames']} 4K frames streamed by `beadseg predict` in {m['seconds']:.0f} s "
                f"({m.get('seconds_per_frame', 0):.2f} s per frame), peak RSS "
                f"{m['peak_rss_gb']:.2f} GB. Beads found on the synthetic frame: "
                f"{p['pipeline_count']} (truth {p['true_count']}).", ""]
    t = load("train/bench_train.json")
    if t:
        from beadseg.experiments.compare import markdown_table

        out += ["## training (real tiles, grouped split, same time budget)", "",
                f"Machine: {t['machine']}; {t['minutes_per_model']} min per model", "",
                markdown_table(t["rows"]), "",
                "| model | training crops/s (256 px) | inference ms per 512-px tile |",
                "|---|---|---|"]
        ms = t.get("inference_ms_per_512px_tile", {})
        out += [f"| {k} | {v:.1f} | {fmt(ms.get(k), 1)} |"
                for k, v in t["train_crops_per_s"].items()]
        out.append("")
    for s in ("real", "synthetic"):
        r = load(f"accuracy/{s}/accuracy.json")
        if r:
            out += [f"## accuracy: {s} tiles, {r['folds']}-fold grouped cross-validation", "",
                    f"Machine: {r['machine']}; {r['minutes_per_fold']} min of training per fold",
                    "", accuracy_table(r), "", per_fold_table(r, s), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
