"""The three architectures trained with the default recipe on the real tiles (grouped split,
same time budget each): compare table, curves, training crops/s, time to validation IoU 0.75.

    python benchmarks/bench_train.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, machine, real_subset  # noqa: E402

from beadseg.compare import compare_runs, markdown_table  # noqa: E402
from beadseg.config import load_config  # noqa: E402
from beadseg.train import train  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--models", default="unet,attention_unet,attention_resunet")
    args = ap.parse_args()
    data = real_subset()
    out = OUT / "train"
    runs = []
    for name in args.models.split(","):
        run = out / name
        if not (run / "result.json").exists():
            cfg = load_config(ROOT / "configs" / "default_model.yaml",
                              [f"data.path={data}", f"model.name={name}",
                               f"train.max_minutes={args.minutes}"])
            train(cfg, run, progress=False, log=lambda s, n=name: print(f"[{n}] {s}", flush=True))
        runs.append(run)
    rows = compare_runs(runs, out / "compare")
    res = {"machine": machine(), "minutes_per_model": args.minutes, "rows": rows,
           "train_crops_per_s": {r.name: json.loads((r / "result.json").read_text())
                                 ["train_crops_per_s"] for r in runs}}
    (out / "bench_train.json").write_text(json.dumps(res, indent=2))
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
