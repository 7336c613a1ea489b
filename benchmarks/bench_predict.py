"""Predict speed on a 3840x2160 frame: ours (full-frame, tiled) vs MONAI sliding window vs a
naive one-tile-at-a-time loop, with the same weights; per-stage MP/s; agreement with full-frame
inference over the whole frame (and away from the borders, where MONAI can be compared); peak RSS
over many frames.

    python benchmarks/bench_predict.py [--model default] [--frames 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, machine  # noqa: E402

from beadseg.config import PredictConfig  # noqa: E402
from beadseg.inference import load_model, predict_file, predict_probabilities  # noqa: E402
from beadseg.io import write_image  # noqa: E402
from beadseg.synth import synth_image  # noqa: E402


def best_of(fn, repeat=3):
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def naive(model, image, tile=256):
    """The users' old way: one 256-px tile at a time, no overlap, thresholded per tile."""
    h, w = image.shape[:2]
    out = np.zeros((h, w), np.float32)
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    with torch.inference_mode():
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                t = chw[:, y : y + tile, x : x + tile][None]
                out[y : y + tile, x : x + tile] = torch.sigmoid(model.net(t))[0, 0].numpy()
    return out


def monai_sw(model, image, roi=256, overlap=0.25, batch=8):
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        y = sliding_window_inference(
            x, (roi, roi), batch, lambda t: torch.sigmoid(model.net(t)), overlap=overlap, mode="gaussian"
        )
    return y[0, 0].numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    out = OUT / "predict"
    out.mkdir(parents=True, exist_ok=True)
    frame = synth_image((2160, 3840), 12000, seed=0)
    image = frame.image.astype(np.float32) / 255
    mp = 3840 * 2160 / 1e6
    model = load_model(args.model)
    res = {
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "frame": "3840x2160",
        "model": model.source,
        "parameters": sum(p.numel() for p in model.net.parameters()),
    }

    tiled_cfg = PredictConfig(mode="tiled")
    full_cfg = PredictConfig(mode="full")
    t_tiled, p_tiled = best_of(lambda: predict_probabilities(model, image, tiled_cfg))
    t_full, p_full = best_of(lambda: predict_probabilities(model, image, full_cfg), 2)
    t_monai, p_monai = best_of(lambda: monai_sw(model, image))
    t_naive, _ = best_of(lambda: naive(model, image), 2)
    for size in (384, 768, 1024):
        cfg = PredictConfig(mode="tiled", tile_size=size)
        t_s, p_s = best_of(lambda c=cfg: predict_probabilities(model, image, c), 2)
        res.setdefault("tile_size_s", {})[size] = t_s
        res.setdefault("tile_size_max_diff", {})[size] = float(np.abs(p_s - p_full).max())
    res["tile_size_s"][512] = t_tiled
    inner = (slice(64, -64), slice(64, -64))
    res["probabilities_s"] = {
        "ours_tiled": t_tiled,
        "ours_full_frame": t_full,
        "monai_sliding_window": t_monai,
        "naive_tile_loop": t_naive,
    }
    res["mp_per_s"] = {k: mp / v for k, v in res["probabilities_s"].items()}
    res["speedup_vs_monai"] = t_monai / min(t_tiled, t_full)
    res["max_abs_diff_vs_full_frame"] = float(np.abs(p_tiled - p_full).max())  # whole frame
    res["max_abs_diff_vs_full_frame_inner"] = {
        "ours_tiled": float(np.abs(p_tiled - p_full)[inner].max()),
        "monai_sliding_window": float(np.abs(p_monai - p_full)[inner].max()),
    }

    # the whole predict pipeline on one frame file: read, probabilities, instances, writes
    frame_path = out / "frames" / "640x_bench_frame.png"
    write_image(frame_path, frame.image)
    run = out / "run"
    predict_file(model, frame_path, run, PredictConfig())  # warm-up (predict_file never resumes)
    stages = []
    for _ in range(3):
        t = time.perf_counter()
        r = predict_file(model, frame_path, run, PredictConfig())
        stages.append({**r.timings, "total_s": time.perf_counter() - t})
    best = min(stages, key=lambda s: s["total_s"])
    res["pipeline_s"] = best
    res["pipeline_mp_per_s"] = {k: mp / v for k, v in best.items() if v > 0}
    res["pipeline_count"] = r.count
    res["true_count"] = int(frame.labels.max())

    # many frames, streamed by the CLI in a fresh process: wall time and peak RSS of that process
    import os
    import shutil
    import subprocess

    n = args.frames
    frames_dir = out / "many"
    shutil.rmtree(frames_dir, ignore_errors=True)
    frames_dir.mkdir()
    for i in range(n):
        link = frames_dir / f"640x_f{i:03d}.png"
        if not link.exists():
            os.link(frame_path, link)  # distinct paths, one file on disk
    shutil.rmtree(out / "many-run", ignore_errors=True)  # no resumed frames: time them all
    t = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "beadseg",
            "predict",
            args.model,
            str(frames_dir),
            "--out",
            str(out / "many-run"),
            "--quiet",
        ],
        check=True,
    )
    wall = time.perf_counter() - t
    summary = json.loads((out / "many-run" / "summary.json").read_text())
    res["many_frames"] = {
        "frames": n,
        "seconds": wall,
        "seconds_per_frame": wall / n,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6,
        "n_images": summary["n_images"],
        "mp_per_s": summary["mp_per_s"],
    }
    print(json.dumps(res, indent=2))
    (out / "bench_predict.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
