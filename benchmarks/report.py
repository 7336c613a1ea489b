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
    cols = [
        ("iou_mean", "pixel IoU (mean)"),
        ("iou_pooled", "pixel IoU (pooled)"),
        ("iou_best_shift_mean", "IoU best shift ±3 px"),
        ("object_f1", "object F1 @IoU0.5"),
        ("centroid_f1", "centroid F1 (3 px)"),
        ("median_abs_count_error", "median abs count err"),
        ("total_count_error", "total count err"),
        ("dilution_slope_pred", "dilution slope (pred)"),
        ("dilution_slope_true", "dilution slope (masks)"),
    ]
    lines = [
        "| method @ masks | images | " + " | ".join(c[1] for c in cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for key, row in res["table"].items():
        lines.append(f"| {key} | {row['n_images']} | " + " | ".join(fmt(row[c[0]]) for c in cols) + " |")
    return "\n".join(lines)


def per_fold_table(res: dict, set_name: str) -> str:
    """Object and centroid F1 per fold and variant, with the epochs each fold's model trained."""
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).parent))
    from bench_accuracy import summarise

    if "per_fold" in res:  # recipes (bench_accuracy --recipes): summaries stored per fold
        lines = [
            "| recipe @ masks @ fold | object F1 | centroid F1 | median abs count err | total count err |",
            "|---|---|---|---|---|",
        ]
        for key, t in sorted(res["per_fold"].items()):
            lines.append(
                f"| {key} | {fmt(t['object_f1'])} | {fmt(t['centroid_f1'])} | "
                f"{fmt(t['median_abs_count_error'])} | {fmt(t['total_count_error'])} |"
            )
        return "\n".join(lines)
    acc = OUT / "accuracy" / set_name
    lines = [
        "| variant @ masks | fold | epochs | object F1 | centroid F1 | median abs count err |",
        "|---|---|---|---|---|---|",
    ]
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
            lines.append(
                f"| {key} | {k} | {epochs} | {fmt(t['object_f1'])} | "
                f"{fmt(t['centroid_f1'])} | {fmt(t['median_abs_count_error'])} |"
            )
    return "\n".join(lines)


def analyze_section(a: dict) -> list[str]:
    out = [
        "## analyze (79 dev tiles, whole process)",
        "",
        f"Machine: {a['machine']}; load {a['load_before'][0]:.1f} before, {a['load_after'][0]:.1f} after",
        "",
        "| command | best wall (s) | best CPU (s) |",
        "|---|---|---|",
    ]
    for k, r in a["runs"].items():
        out.append(f"| {k} | {r['best_wall_s']:.2f} | {r['best_cpu_s']:.2f} |")
    if "speedup" in a:
        out += [
            "",
            "Speed-up over the old analyzer (best wall): "
            + ", ".join(f"{k} {v:.2f}x" for k, v in a["speedup"].items()),
        ]
    if "goal_s" in a and "floor" in a["runs"]:
        fl = a["runs"]["floor"]
        out += [
            "",
            f"The 5x goal leaves {a['goal_s']:.2f} s; the floor (start, imports, decoding every image "
            f"and mask, nothing checked or drawn) takes {fl['best_wall_s']:.2f} s "
            f"({fl['best_cpu_s']:.2f} s CPU).",
        ]
    return out + [""]


def predict_section(p: dict) -> list[str]:
    ref = p["reference_unet16_depth4_forward"]
    out = [
        "## predict (3840x2160 frame)",
        "",
        f"Machine: {p['machine']}; model {p['model']}; load "
        f"{p['load_before'][0]:.1f} before, {p['load_after'][0]:.1f} after",
        "",
        f"Reference (plain U-Net base 16, depth 4, torch forward over the frame): {ref['seconds']:.2f} s "
        f"({ref['cpu_s']:.2f} s CPU)",
        "",
        "| probabilities by | seconds | CPU s | MP/s | max diff to full frame (inner) |",
        "|---|---|---|---|---|",
    ]
    for k, v in p["probabilities"]["runs"].items():
        out.append(
            f"| {k} | {v['seconds']:.2f} | {v['cpu_s']:.2f} | {v['mp_per_s']:.2f} | "
            f"{v['max_diff_to_full_frame']:.1e} ({v['max_diff_to_full_frame_inner']:.1e}) |"
        )
    out += [
        "",
        "| ONNX Runtime threads, tile | seconds | CPU s | max diff to full frame |",
        "|---|---|---|---|",
    ]
    for v in p["tile_sweep_onnx"].values():
        out.append(
            f"| {v['threads']}, {v['tile']} | {v['seconds']:.2f} | {v['cpu_s']:.2f} | "
            f"{v['max_diff_to_full_frame']:.1e} |"
        )
    st = p["predict_file"]["seconds"]
    out += ["", "| predict_file stage | seconds |", "|---|---|"]
    out += [f"| {k} | {v:.2f} |" for k, v in st.items()]
    proc = p["process"]
    one = proc["one_frame"]
    if "floor" in p:
        fl = p["floor"]
        out += [
            "",
            f"Floor (a process that imports numpy, Pillow and onnxruntime, reads the frame and runs the "
            f"network over the whole frame in one call, nothing else): {fl['seconds']:.2f} s "
            f"({fl['cpu_s']:.2f} s CPU) = {fl['ratio_to_reference']:.3f}x the reference forward.",
        ]
    out += [
        "",
        f"`beadseg predict default frame.png`, whole process: {one['seconds']:.2f} s "
        f"({one['cpu_s']:.2f} s CPU, peak RSS {one['peak_rss_gb']:.2f} GB) = "
        f"{one['ratio_to_reference']:.3f}x the reference forward.",
    ]
    for key in ("twenty_frames", "streamed"):
        if key in proc:
            r = proc[key]
            out.append(
                f"{r['frames']} frames in one call: {r['seconds']:.1f} s, "
                f"{r['seconds_per_frame']:.2f} s per frame ({r['cpu_s'] / r['frames']:.2f} s CPU), "
                f"peak RSS {r['peak_rss_gb']:.2f} GB."
            )
    return out + [""]


def startup_section(s: dict) -> list[str]:
    out = [
        "## start-up (each command on tiny inputs, whole process)",
        "",
        f"Machine: {s['machine']}",
        "",
        "| command | best wall (s) | CPU (s) | imports (s) | heavy modules loaded |",
        "|---|---|---|---|---|",
    ]
    for k, r in s["commands"].items():
        out.append(
            f"| {k} | {r['best_wall_s']:.2f} | {r['best_cpu_s']:.2f} | {r['import_s']:.2f} | "
            f"{', '.join(r['heavy_modules']) or '-'} |"
        )
    return out + [""]


def main():
    out = []
    for rel, section in (
        ("analyze/bench_analyze.json", analyze_section),
        ("predict/bench_predict.json", predict_section),
        ("startup/bench_startup.json", startup_section),
    ):
        res = load(rel)
        if res:
            out += section(res)
    t = load("train/bench_train.json")
    if t:
        from beadseg.evaluation.compare import markdown_table

        out += [
            "## training (real tiles, grouped split, same time budget)",
            "",
            f"Machine: {t['machine']}; {t['minutes_per_model']} min per model",
            "",
            markdown_table(t["rows"]),
            "",
            "| model | training crops/s (256 px) | inference ms per 512-px tile |",
            "|---|---|---|",
        ]
        ms = t.get("inference_ms_per_512px_tile", {})
        out += [f"| {k} | {v:.1f} | {fmt(ms.get(k), 1)} |" for k, v in t["train_crops_per_s"].items()]
        out.append("")
    for s in ("real", "synthetic"):
        r = load(f"accuracy/{s}/accuracy.json")
        if r:
            out += [
                f"## accuracy: {s} tiles, {r['folds']}-fold grouped cross-validation",
                "",
                f"Machine: {r['machine']}; "
                + (
                    f"{r['epochs_per_fold']} epochs"
                    if "epochs_per_fold" in r
                    else f"{r.get('minutes_per_fold')} min"
                )
                + " of training per fold",
                "",
                accuracy_table(r),
                "",
                per_fold_table(r, s),
                "",
            ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
