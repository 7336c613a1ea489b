"""The three architectures trained with the default recipe on the real tiles (grouped split,
same time budget each): compare table, curves, training crops/s, time to validation IoU 0.75,
and each architecture's inference time per 512-px tile (what predict runs on a 4K frame).

    python benchmarks/bench_train.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, machine, real_subset  # noqa: E402

from beadseg.core.config import load_config  # noqa: E402
from beadseg.evaluation.compare import compare_runs, markdown_table  # noqa: E402
from beadseg.models import build_model, fuse_for_inference  # noqa: E402
from beadseg.training import train  # noqa: E402


def tile_ms(cfgs: dict, rounds: int = 5, repeats: int = 10) -> dict:
    """Fastest mean milliseconds of one 512-px tile forward per model, as predict runs it on the
    CPU; the models take turns in every round so that machine noise hits them alike."""
    nets = {}
    for name, cfg in cfgs.items():
        model = build_model(cfg.model, cfg.data.channels).eval()
        nets[name] = fuse_for_inference(model).to(memory_format=torch.channels_last)
    channels = next(iter(cfgs.values())).data.channels
    x = torch.randn(1, channels, 512, 512).contiguous(memory_format=torch.channels_last)
    best = dict.fromkeys(nets, float("inf"))
    with torch.inference_mode():
        for _ in range(rounds):
            for name, net in nets.items():
                net(x)
                t = time.perf_counter()
                for _ in range(repeats):
                    net(x)
                best[name] = min(best[name], (time.perf_counter() - t) / repeats * 1000)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--models", default="unet,attention_unet,attention_resunet")
    args = ap.parse_args()
    data = real_subset()
    out = OUT / "train"
    cfgs = {
        name: load_config(
            ROOT / "configs" / "default_model.yaml",
            [f"data.path={data}", f"model.name={name}", f"train.max_minutes={args.minutes}"],
        )
        for name in args.models.split(",")
    }
    runs = []
    for name, cfg in cfgs.items():
        run = out / name
        if not (run / "result.json").exists():
            train(cfg, run, progress=False, log=lambda s, n=name: print(f"[{n}] {s}", flush=True))
        runs.append(run)
    infer_ms = tile_ms(cfgs)
    rows = compare_runs(runs, out / "compare")
    res = {
        "machine": machine(),
        "minutes_per_model": args.minutes,
        "rows": rows,
        "train_crops_per_s": {
            r.name: json.loads((r / "result.json").read_text())["train_crops_per_s"] for r in runs
        },
        "inference_ms_per_512px_tile": infer_ms,
        "torch_threads": torch.get_num_threads(),
    }
    (out / "bench_train.json").write_text(json.dumps(res, indent=2))
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
