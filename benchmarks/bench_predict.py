"""Predict speed on a 3840x2160 frame, all in one run (so every ratio sees the same machine load):

* the reference: a plain U-Net (base 16, depth 4, random weights) forward over the whole frame
  with torch - the yardstick of issue 16 (``beadseg predict`` as a whole process must take at
  most 0.15x of it);
* probabilities of the shipped model: ONNX Runtime tiled (the default path), ONNX Runtime whole
  frame, torch tiled (512 px, the torch default), MONAI ``sliding_window_inference`` at the SAME
  roi and overlap as ours (with the same ONNX Runtime session, so only the tiling differs; and
  with torch), and the users' old one-256-px-tile-at-a-time loop; agreement with whole-frame
  inference;
* the ONNX tile-size sweep and 1 vs 2 threads, which chose the defaults;
* predict_file stage by stage (read, probabilities, instances, writes);
* the floor: a process that only imports numpy, Pillow and onnxruntime, reads the frame and runs
  the shipped network over the whole frame in one call - no ``beadseg predict`` with this network
  can be faster;
* ``beadseg predict default frame.png`` as a whole process (wall and CPU), 20 frames in one
  call (per-frame time) and ``--frames`` frames streamed (peak RSS of that process).

    python benchmarks/bench_predict.py [--model default] [--frames 100] [--quick]

Writes ``bench-out/predict/bench_predict.json``. CPU seconds are reported beside wall times: this
machine is shared, and CPU time is less sensitive to other load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, machine  # noqa: E402

from beadseg.core.config import PredictConfig  # noqa: E402
from beadseg.core.images import write_image  # noqa: E402
from beadseg.data.synth import synth_image  # noqa: E402
from beadseg.inference import load_model, predict_file, predict_probabilities  # noqa: E402
from beadseg.models.checkpoint import onnx_path, resolve_model_path  # noqa: E402

MP = 3840 * 2160 / 1e6


def best_of(fn, repeat=3):
    """(best wall s, CPU s of that run, result)."""
    best = (float("inf"), 0.0, None)
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t
        if wall < best[0]:
            best = (wall, time.process_time() - c, out)
    return best


def reference_forward(image: np.ndarray, repeat: int = 2) -> dict:
    """Plain base-16 depth-4 U-Net forward (torch, default threads) over the whole frame."""
    import torch

    from beadseg.models import create_model

    torch.manual_seed(0)
    net = create_model("unet", base_channels=16, depth=4).eval()
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]

    def run():
        with torch.inference_mode():
            return net(x)

    wall, cpu, _ = best_of(run, repeat)
    return {"seconds": wall, "cpu_s": cpu, "torch_threads": torch.get_num_threads()}


def naive(model, image, tile=256):
    """The users' old way: one 256-px tile at a time, no overlap (torch; ``image`` normalised)."""
    import torch

    h, w = image.shape[:2]
    out = np.zeros((h, w), np.float32)
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    with torch.inference_mode():
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                t = chw[:, y : y + tile, x : x + tile][None]
                out[y : y + tile, x : x + tile] = torch.sigmoid(model.net(t))[0, 0].numpy()
    return out


def monai_sw(predict_batch, image, roi: int, overlap: float, mode: str):
    """MONAI sliding_window_inference, batch 1, with ``predict_batch`` (torch tensor in/out, every
    output channel); the foreground channel."""
    import torch
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        y = sliding_window_inference(x, (roi, roi), 1, predict_batch, overlap=overlap, mode=mode)
    return y[0, 0].numpy()


def probabilities(onnx_m, torch_m, image, quick: bool) -> dict:
    """Every way of computing the frame's probabilities, timed, and their agreement."""
    import torch

    from beadseg.core.normalization import model_input

    res, maps = {}, {}
    tile, overlap = onnx_m.default_tile_size, PredictConfig().overlap
    norm = model_input(
        image, onnx_m.normalization, onnx_m.in_channels
    )  # what the network sees, for MONAI and the loop
    runs = {
        "ours_onnx_tiled": lambda: predict_probabilities(onnx_m, image, PredictConfig(mode="tiled")),
        "ours_onnx_full_frame": lambda: predict_probabilities(onnx_m, image, PredictConfig(mode="full")),
        "ours_torch_tiled_512": lambda: predict_probabilities(torch_m, image, PredictConfig(mode="tiled")),
        f"monai_onnx_roi{tile}_gaussian": lambda: monai_sw(
            lambda t: torch.from_numpy(onnx_m.all_channels(t.numpy())), norm, tile, overlap / tile, "gaussian"
        ),
        f"monai_onnx_roi{tile}_constant": lambda: monai_sw(
            lambda t: torch.from_numpy(onnx_m.all_channels(t.numpy())), norm, tile, overlap / tile, "constant"
        ),
        f"monai_torch_roi{tile}_gaussian": lambda: monai_sw(
            lambda t: torch.sigmoid(torch_m.net(t)), norm, tile, overlap / tile, "gaussian"
        ),
        "naive_torch_256_loop": lambda: naive(torch_m, norm),
    }
    for name, fn in runs.items():
        if quick and name.startswith(("monai_torch", "naive")):
            continue
        wall, cpu, maps[name] = best_of(fn, 2 if quick else 3)
        res[name] = {"seconds": wall, "cpu_s": cpu, "mp_per_s": MP / wall}
        print(f"{name}: {wall:.2f} s ({cpu:.2f} s CPU)", flush=True)
    full = maps["ours_onnx_full_frame"]
    inner = (slice(64, -64), slice(64, -64))
    for name, p in maps.items():
        res[name]["max_diff_to_full_frame"] = float(np.abs(p - full).max())
        res[name]["max_diff_to_full_frame_inner"] = float(np.abs(p - full)[inner].max())
    return {"tile": tile, "overlap": overlap, "runs": res}


def tile_sweep(image, model_name: str, quick: bool) -> dict:
    """ONNX Runtime at several tile sizes and thread counts: what chose the defaults."""
    out = {}
    full = None
    for threads in (1, 2):
        m = load_model(model_name, "cpu", runtime="onnx", threads=threads)
        full = full if full is not None else predict_probabilities(m, image, PredictConfig(mode="full"))
        for size in (512, 768, 1152) if quick else (512, 768, 1024, 1152, 1536):
            cfg = PredictConfig(mode="tiled", tile_size=size)
            wall, cpu, p = best_of(lambda c=cfg, m=m: predict_probabilities(m, image, c), 2)
            out[f"{threads}t_{size}"] = {
                "threads": threads,
                "tile": size,
                "seconds": wall,
                "cpu_s": cpu,
                "max_diff_to_full_frame": float(np.abs(p - full).max()),
            }
            print(f"{threads} threads, tile {size}: {wall:.2f} s ({cpu:.2f} s CPU)", flush=True)
    return out


def stages(model, frame_path: Path, out: Path) -> dict:
    """predict_file on the 4K frame: the best of 3 by total, stage by stage."""
    predict_file(model, frame_path, out, PredictConfig())  # warm-up (predict_file never resumes)
    runs = []
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        r = predict_file(model, frame_path, out, PredictConfig())
        runs.append({**r.timings, "total_s": time.perf_counter() - t, "cpu_s": time.process_time() - c})
    best = min(runs, key=lambda s: s["total_s"])
    return {"seconds": best, "count": r.count}


#: run from a fresh, small interpreter: a child forked by this (large) process would report this
#: process's peak RSS as its own (Linux keeps the high-water mark across exec)
_LAUNCHER = """
import json, os, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.Popen([sys.executable, *sys.argv[1:]], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "seconds": time.perf_counter() - t,
                  "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_gb": usage.ru_maxrss / 1e6}))
"""


#: the least a process running the shipped network on a frame does: start, import numpy, Pillow and
#: onnxruntime, decode the PNG, open the session and run the whole frame in one call (the fastest
#: way this network runs here, memory aside); no normalisation, instances or writes
_FLOOR = """
import sys
import numpy as np
import onnxruntime as ort
from PIL import Image
x = np.asarray(Image.open(sys.argv[2]), np.float32).transpose(2, 0, 1)[None] / 255
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
s.run(None, {s.get_inputs()[0].name: np.ascontiguousarray(x)})
"""


def floor(onnx_path: str, frame_path: Path, reference_s: float) -> dict:
    """Best of 3 processes running :data:`_FLOOR`: no ``beadseg predict`` with this network can
    be faster, so it shows whether the 0.15x goal is reachable with it on this machine."""
    runs = [_process(["-c", _FLOOR, onnx_path, str(frame_path)]) for _ in range(3)]
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "ratio_to_reference": best["seconds"] / reference_s}


def _process(argv: list[str]) -> dict:
    """``python ARGV`` as its own process: wall s, CPU s and peak RSS (GB) of it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], env=env, capture_output=True, text=True, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res.pop("code") != 0:
        raise SystemExit(f"python {' '.join(argv[:2])} ... failed")
    return res


def _child(args: list[str]) -> dict:
    """``python -m beadseg ARGS`` as its own process (see :func:`_process`)."""
    return _process(["-m", "beadseg", *args])


def _frames(folder: Path, frame_path: Path, n: int) -> Path:
    """``n`` distinct names of one frame file (hard links: one file on disk)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n):
        os.link(frame_path, folder / f"640x_f{i:03d}.png")
    return folder


def whole_process(model: str, frame_path: Path, out: Path, reference_s: float, n_stream: int) -> dict:
    """`beadseg predict` as a user runs it: one frame (best of 3), 20 frames, n_stream frames."""
    res = {}
    single = []
    for i in range(3):
        shutil.rmtree(out / f"one{i}", ignore_errors=True)
        single.append(_child(["predict", model, str(frame_path), "--out", str(out / f"one{i}"), "--quiet"]))
    res["one_frame"] = min(single, key=lambda r: r["seconds"])
    res["one_frame"]["ratio_to_reference"] = res["one_frame"]["seconds"] / reference_s
    print(f"one frame, whole process: {res['one_frame']}", flush=True)
    for n, key in ((20, "twenty_frames"), (n_stream, "streamed")):
        if n <= 0 or (key == "streamed" and n == 20):
            continue
        frames = _frames(out / f"frames{n}", frame_path, n)
        shutil.rmtree(out / f"run{n}", ignore_errors=True)
        r = _child(["predict", model, str(frames), "--out", str(out / f"run{n}"), "--quiet"])
        summary = json.loads((out / f"run{n}" / "summary.json").read_text())
        res[key] = {
            **r,
            "frames": n,
            "seconds_per_frame": r["seconds"] / n,
            "stage_s_per_frame": {k: v / n for k, v in summary["timings_s"].items()},
        }
        print(f"{n} frames: {res[key]}", flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--frames", type=int, default=100, help="frames streamed for the RSS check")
    ap.add_argument("--quick", action="store_true", help="fewer variants and repeats")
    args = ap.parse_args()
    out = OUT / "predict"
    out.mkdir(parents=True, exist_ok=True)
    frame = synth_image((2160, 3840), 12000, seed=0)
    image = frame.image.astype(np.float32) / 255
    frame_path = write_image(out / "frames" / "640x_bench_frame.png", frame.image)
    onnx_m = load_model(args.model, "cpu", runtime="onnx")
    torch_m = load_model(args.model, "cpu", runtime="torch")
    res = {"machine": machine(), "cpu_threads": os.cpu_count(), "frame": "3840x2160"}
    res.update(model=onnx_m.source, load_before=os.getloadavg(), true_count=int(frame.labels.max()))
    res["reference_unet16_depth4_forward"] = reference_forward(image, 1 if args.quick else 2)
    print(f"reference: {res['reference_unet16_depth4_forward']}", flush=True)
    res["probabilities"] = probabilities(onnx_m, torch_m, image, args.quick)
    res["tile_sweep_onnx"] = tile_sweep(image, args.model, args.quick)
    res["predict_file"] = stages(onnx_m, frame_path, out / "stages")
    ref_s = res["reference_unet16_depth4_forward"]["seconds"]
    res["floor"] = floor(str(onnx_path(resolve_model_path(args.model))), frame_path, ref_s)
    print(f"floor (imports, read, one whole-frame network call): {res['floor']}", flush=True)
    res["process"] = whole_process(args.model, frame_path, out, ref_s, args.frames)
    res["load_after"] = os.getloadavg()
    (out / "bench_predict.json").write_text(json.dumps(res, indent=2))
    one = res["process"]["one_frame"]
    print(
        f"one 4K frame, whole process {one['seconds']:.2f} s = {one['ratio_to_reference']:.3f}x the "
        f"reference forward ({ref_s:.2f} s); wrote {out / 'bench_predict.json'}"
    )


if __name__ == "__main__":
    main()
