"""Whole-process 4K predict time of two versions (package source + model), taking turns.

Writes one synthetic 3840x2160 frame (12,000 beads), then runs ``/usr/bin/time -v python -m
beadseg predict MODEL FRAME`` alternately for A and B (each with its own ``PYTHONPATH``, so "A"
can be the code and model shipped before: ``git archive <commit> src | tar -x -C bench-out/base``),
``--repeat`` times each, and reports the median wall time, CPU time and peak RSS of each.

    python benchmarks/bench_predict_ab.py --a-src SRC --a-model MODEL --b-src SRC --b-model MODEL
        [--repeat 5] [--tag TAG]

Writes bench-out/predict_ab_<tag>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, machine  # noqa: E402


def timed_predict(src: str, model: str, frame: Path, out: Path) -> dict:
    """One whole ``beadseg predict`` process under /usr/bin/time -v."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "beadseg",
        "predict",
        model,
        str(frame),
        "--out",
        str(out),
        "-q",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=src))
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", r.stderr).group(1).strip()

    h, m, s = ([0.0] + [float(v) for v in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")])[
        -3:
    ]
    count = int(open(out / "counts.csv").read().splitlines()[1].split(",")[3])
    return {
        "wall_s": 3600 * h + 60 * m + s,
        "cpu_s": float(field("User time (seconds)")) + float(field("System time (seconds)")),
        "max_rss_mb": int(field("Maximum resident set size (kbytes)")) / 1024,
        "count": count,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a-src", required=True)
    ap.add_argument("--a-model", default="default")
    ap.add_argument("--b-src", required=True)
    ap.add_argument("--b-model", default="default")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tag", default="ab")
    a = ap.parse_args()
    sys.path.insert(0, a.b_src)
    from beadseg.core.images import write_image
    from beadseg.data.synth import synth_image

    tmp = Path(tempfile.mkdtemp(prefix="predict_ab", dir=OUT))
    frame = tmp / "640x_speed_4k.png"
    write_image(frame, synth_image((2160, 3840), 12000, seed=0).image)
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    versions = {"A": (a.a_src, a.a_model), "B": (a.b_src, a.b_model)}
    for i in range(a.repeat):
        for name in ("A", "B") if i % 2 == 0 else ("B", "A"):  # taking turns, order alternating
            src, model = versions[name]
            runs[name].append(timed_predict(src, model, frame, tmp / name))
            print(name, runs[name][-1], flush=True)
    med = {
        k: {f: float(np.median([r[f] for r in v])) for f in ("wall_s", "cpu_s", "max_rss_mb")}
        for k, v in runs.items()
    }
    result = {
        "machine": machine(),
        "threads": "default (all cores the process may use)",
        "versions": {k: {"src": s, "model": m} for k, (s, m) in versions.items()},
        "repeat": a.repeat,
        "runs": runs,
        "median": med,
        "ratio_wall_b_over_a": med["B"]["wall_s"] / med["A"]["wall_s"],
    }
    (OUT / f"predict_ab_{a.tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    print(
        "| version | median wall (s) | median CPU (s) | median peak RSS (MB) | beads |\n|---|---|---|---|---|"
    )
    for k in ("A", "B"):
        m = med[k]
        print(
            f"| {k} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | {m['max_rss_mb']:.0f} | {runs[k][0]['count']} |"
        )
    print(f"\nB / A wall: {result['ratio_wall_b_over_a']:.3f}")


if __name__ == "__main__":
    main()
