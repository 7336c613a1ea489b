"""Reproduce the shipped default model: train with configs/default_model.yaml on the real tiles,
evaluate on the held-out frames, export a slim checkpoint and its training record.

    python benchmarks/train_default.py [--install]   # --install copies it into the package
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, real_subset  # noqa: E402

from beadseg.checkpoint import export_checkpoint  # noqa: E402
from beadseg.config import load_config  # noqa: E402
from beadseg.evaluate import evaluate  # noqa: E402
from beadseg.export.onnx import export_onnx  # noqa: E402
from beadseg.training import train  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--install", action="store_true")
    args = ap.parse_args()
    data = real_subset()
    run = OUT / "default_run"
    if not (run / "result.json").exists():
        cfg = load_config(ROOT / "configs" / "default_model.yaml", [f"data.path={data}"])
        train(cfg, run, progress=False, log=lambda s: print(s, flush=True))
    split = json.loads((run / "split.json").read_text())
    ev = evaluate(run, data, OUT / "default_eval", only=set(split["val"])).as_dict()
    ev.pop("per_image")
    dest = OUT / "default_export"
    dest.mkdir(exist_ok=True)
    export_checkpoint(run, dest / "default.pt")
    export_onnx(dest / "default.pt", dest / "default.onnx")  # predict runs this one, no torch
    for src, name in (
        ("history.csv", "default_history.csv"),
        ("split.json", "default_split.json"),
        ("config.yaml", "default_config.yaml"),
        ("result.json", "default_result.json"),
    ):
        shutil.copy(run / src, dest / name)
    (dest / "default_heldout_metrics.json").write_text(json.dumps(ev, indent=1))
    print(json.dumps(ev["overall"], indent=1))
    if args.install:
        for f in dest.iterdir():
            shutil.copy(f, ROOT / "src" / "beadseg" / "weights" / f.name)


if __name__ == "__main__":
    main()
