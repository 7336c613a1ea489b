"""4K prediction time of two models in the same run: `predict_file` on a synthetic 3840x2160
frame (12,000 beads), all outputs written, stage by stage; the models take turns, best of N.

    python benchmarks/bench_model_speed.py OLD NEW [--repeat 5]

Writes bench-out/model_speed.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, machine  # noqa: E402

from beadseg.core.config import PredictConfig  # noqa: E402
from beadseg.core.images import write_image  # noqa: E402
from beadseg.data.synth import synth_image  # noqa: E402
from beadseg.inference import load_model, predict_file  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="speed", dir=OUT))
    frame = tmp / "640x_speed_4k.png"
    write_image(frame, synth_image((2160, 3840), 12000, seed=0).image)
    models = {"old": load_model(a.old), "new": load_model(a.new)}
    best: dict[str, dict] = {k: {} for k in models}
    counts = {}
    cfg = PredictConfig()
    for _ in range(a.repeat):
        for name, m in models.items():  # taking turns: load drifts hit both alike
            t0 = time.perf_counter()
            r = predict_file(m, frame, tmp / name, cfg)
            total = time.perf_counter() - t0
            counts[name] = r.count
            for k, v in {**r.timings, "total_s": total}.items():
                best[name][k] = min(best[name].get(k, np.inf), v)
    stages = list(best["old"].keys() | best["new"].keys())
    order = ["read_s", "probabilities_s", "instances_s", "domain_s", "write_s", "total_s"]
    stages = [s for s in order if s in stages] + sorted(set(stages) - set(order))
    result = {
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "repeat": a.repeat,
        "models": {k: m.source for k, m in models.items()},
        "beads_found": counts,
        "seconds": best,
        "ratio_total": best["new"]["total_s"] / best["old"]["total_s"],
    }
    (OUT / "model_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| stage | old (s) | new (s) | new / old |\n|---|---|---|---|")
    for s in stages:
        o, n = best["old"].get(s, 0.0), best["new"].get(s, 0.0)
        print(f"| {s} | {o:.2f} | {n:.2f} | {n / o if o else float('nan'):.2f} |")
    print(
        f"\nbeads found: old {counts['old']}, new {counts['new']} (truth 12000); {OUT / 'model_speed.json'}"
    )


if __name__ == "__main__":
    main()
