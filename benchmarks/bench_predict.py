"""Predict speed on a 3840x2160 frame against a yardstick measured in the same run.

The yardstick (issue 16): a plain U-Net (base 16, depth 4, random weights) forward over the whole
frame with torch at the same thread count (``benchmarks/reference_unet.py``, its own process; the
forward call alone is timed). ``beadseg predict`` is timed as a whole process (start, imports,
model, read, network, beads, every file written), alternated with the reference, A B A B,
``--pairs`` pairs; the ratio is taken pair by pair and the median reported (this machine is
shared: absolute times move with its load, ratios of neighbouring runs much less). Measured at
``--threads`` (default: 2 and all cores, ONNX Runtime and torch alike):

* one frame, whole process (and its CPU seconds and peak RSS);
* the floor: a process that only imports numpy, Pillow and onnxruntime, decodes the frame and runs
  the network predict runs (the int8 file when predict would take it) over the whole frame in
  one call - no ``beadseg predict`` with this network can be faster;
* ``--frames`` frames streamed in one call: seconds per frame over the reference, peak RSS.

``--detail`` adds the in-process tables that chose the defaults: probabilities by every way
(ONNX Runtime tiled and whole frame, torch tiled, MONAI ``sliding_window_inference`` when MONAI is
installed, the users' old 256-px loop), the ONNX tile-size sweep at 1 and 2 threads, and
``predict_file`` stage by stage.

    python benchmarks/bench_predict.py [--model default] [--pairs 3] [--threads 2,all]
        [--frames 100] [--detail]

The same by hand, with public tools: ``/usr/bin/time -v python -m beadseg predict default
frame.png --out o --set predict.num_threads=2`` (wall clock, maximum resident set size) and
``python benchmarks/reference_unet.py frame.png --threads 2``, run in turn.

Writes ``bench-out/predict/bench_predict.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
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
from beadseg.models.checkpoint import int8_path, onnx_path, resolve_model_path  # noqa: E402

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
        if name.startswith("monai") and importlib.util.find_spec("monai") is None:
            print(f"{name}: MONAI is not installed, skipped", flush=True)
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


#: the least a process running the network does: start, import numpy, Pillow and onnxruntime,
#: decode the PNG, open the session (argv[3] threads) and run the whole frame in one call (the
#: fastest way this network runs here, memory aside); no normalisation, beads or writes
_FLOOR = """
import sys
import numpy as np
import onnxruntime as ort
from PIL import Image
x = np.asarray(Image.open(sys.argv[2]), np.float32).transpose(2, 0, 1)[None] / 255
o = ort.SessionOptions()
o.intra_op_num_threads = int(sys.argv[3])
s = ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
s.run(None, {s.get_inputs()[0].name: np.ascontiguousarray(x)})
"""


def _process(argv: list[str]) -> dict:
    """``python ARGV`` as its own process: wall s, CPU s and peak RSS (GB) of it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], env=env, capture_output=True, text=True, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res.pop("code") != 0:
        raise SystemExit(f"python {' '.join(argv[:4])} ... failed")
    return res


def _frames(folder: Path, frame_path: Path, n: int) -> Path:
    """``n`` distinct names of one frame file (hard links: one file on disk)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n):
        os.link(frame_path, folder / f"640x_f{i:03d}.png")
    return folder


def _reference(frame_path: Path, threads: int, out: Path) -> float:
    """Seconds of the reference forward (its own process) at ``threads``."""
    j = out / "reference.json"
    _process(
        [
            str(ROOT / "benchmarks" / "reference_unet.py"),
            str(frame_path),
            "--threads",
            str(threads),
            "--json",
            str(j),
        ]
    )
    res = json.loads(j.read_text())
    assert res["threads"] == threads, res
    return res["forward_s"]


def paired(argv_of, frame_path: Path, threads: int, pairs: int, out: Path, per: int = 1) -> dict:
    """``python argv_of(i)`` (whole process, ``per`` frames) and the reference forward at
    ``threads``, in turn, ``pairs`` times: the ratio (seconds per frame / reference seconds)
    pair by pair, and medians."""
    rows = []
    for i in range(pairs):
        a = _process(argv_of(i))
        ref = _reference(frame_path, threads, out)
        rows.append({**a, "reference_s": ref, "ratio": a["seconds"] / per / ref, "load": os.getloadavg()[0]})
        print(f"  pair {i + 1}: {a['seconds']:.2f} s ({per} frames) vs reference {ref:.2f} s", flush=True)

    def med(k):
        return float(np.median([r[k] for r in rows]))

    return {
        "pairs": rows,
        "frames": per,
        "median_ratio": med("ratio"),
        "median_s": med("seconds"),
        "median_s_per_frame": med("seconds") / per,
        "median_cpu_s": med("cpu_s"),
        "median_reference_s": med("reference_s"),
        "max_peak_rss_gb": max(r["peak_rss_gb"] for r in rows),
    }


def network_file(model: str) -> str:
    """The ONNX file ``beadseg predict MODEL`` runs on a CPU (its int8 file when it would take it)."""
    m = load_model(model, "cpu", runtime="onnx")
    path = resolve_model_path(model)
    return str(int8_path(path) if m.precision == "int8" else onnx_path(path))


def whole_process(model: str, frame_path: Path, out: Path, threads: int, pairs: int, n_stream: int) -> dict:
    """One frame, the floor and ``n_stream`` frames streamed, each against the reference."""
    setting = ["--set", f"predict.num_threads={threads}"]
    res = {"threads": threads, "cores": os.cpu_count(), "load_before": os.getloadavg()}

    def one(i):
        folder = out / f"one_{threads}t_{i}"
        shutil.rmtree(folder, ignore_errors=True)
        return ["-m", "beadseg", "predict", model, str(frame_path), "--out", str(folder), "--quiet", *setting]

    print(f"{threads} threads: one frame, whole process", flush=True)
    res["one_frame"] = paired(one, frame_path, threads, pairs, out)
    print(f"{threads} threads: floor", flush=True)
    floor_argv = ["-c", _FLOOR, network_file(model), str(frame_path), str(threads)]
    res["floor"] = paired(lambda i: floor_argv, frame_path, threads, pairs, out)
    if n_stream:
        frames = _frames(out / f"frames{n_stream}", frame_path, n_stream)

        def stream(i):
            folder = out / f"stream_{threads}t_{i}"
            shutil.rmtree(folder, ignore_errors=True)
            return ["-m", "beadseg", "predict", model, str(frames), "--out", str(folder), "--quiet", *setting]

        print(f"{threads} threads: {n_stream} frames streamed", flush=True)
        res["streamed"] = paired(stream, frame_path, threads, max(1, pairs), out, per=n_stream)
    res["load_after"] = os.getloadavg()
    return res


def detail(model: str, image: np.ndarray, frame_path: Path, out: Path, quick: bool) -> dict:
    """The in-process tables that chose the defaults (see the module docstring)."""
    onnx_m = load_model(model, "cpu", runtime="onnx", precision="float32")
    torch_m = load_model(model, "cpu", runtime="torch")
    res = {"reference_in_process": reference_forward(image, 1 if quick else 2)}
    res["probabilities"] = probabilities(onnx_m, torch_m, image, quick)
    res["tile_sweep_onnx"] = tile_sweep(image, model, quick)
    res["predict_file"] = stages(load_model(model, "cpu", runtime="onnx"), frame_path, out / "stages")
    return res


def thread_counts(text: str) -> list[int]:
    out = []
    for t in text.split(","):
        n = os.cpu_count() if t.strip() == "all" else int(t)
        if n not in out:
            out.append(n)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--pairs", type=int, default=3, help="A B pairs per comparison")
    ap.add_argument("--threads", default="2,all", help="thread counts (ONNX Runtime and the reference)")
    ap.add_argument("--frames", type=int, default=100, help="frames streamed (0: none)")
    ap.add_argument("--detail", action="store_true", help="also the in-process tables")
    ap.add_argument("--quick", action="store_true", help="fewer variants and repeats in --detail")
    args = ap.parse_args()
    out = OUT / "predict"
    out.mkdir(parents=True, exist_ok=True)
    frame = synth_image((2160, 3840), 12000, seed=0)
    frame_path = write_image(out / "frames" / "640x_bench_frame.png", frame.image)
    m = load_model(args.model, "cpu")
    res = {"machine": machine(), "cores": os.cpu_count(), "frame": "3840x2160", "pairs": args.pairs}
    res.update(model=m.source, precision=m.precision, true_count=int(frame.labels.max()))
    res["runs"] = [
        whole_process(args.model, frame_path, out, t, args.pairs, args.frames)
        for t in thread_counts(args.threads)
    ]
    if args.detail:
        res["detail"] = detail(args.model, frame.image.astype(np.float32) / 255, frame_path, out, args.quick)
    (out / "bench_predict.json").write_text(json.dumps(res, indent=2))
    for r in res["runs"]:
        one, fl = r["one_frame"], r["floor"]
        line = (
            f"{r['threads']} threads of {r['cores']} cores (load {r['load_before'][0]:.1f} -> "
            f"{r['load_after'][0]:.1f}): one 4K frame {one['median_s']:.2f} s = "
            f"{one['median_ratio']:.3f}x the reference ({one['median_reference_s']:.2f} s); floor "
            f"{fl['median_ratio']:.3f}x"
        )
        if "streamed" in r:
            st = r["streamed"]
            line += (
                f"; {st['frames']} frames {st['median_s_per_frame']:.2f} s per frame = "
                f"{st['median_ratio']:.3f}x, peak RSS {st['max_peak_rss_gb']:.2f} GB"
            )
        print(line)
    print(f"wrote {out / 'bench_predict.json'}")


if __name__ == "__main__":
    main()
