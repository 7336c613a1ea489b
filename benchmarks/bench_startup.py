"""Start-up cost of the command line: `beadseg --help` and each command as a whole process on
tiny inputs, with what each imports.

For every command: the best wall time of ``--rounds`` runs (interleaved, so all see the same
load), the CPU seconds of that process, its import time (``python -X importtime``: the sum of
the cumulative times of the top-level imports), the slowest top-level imports, and which heavy
libraries it loaded (torch must appear only for train / lr-find / models / export).

    python benchmarks/bench_startup.py [--rounds 5]

Writes ``bench-out/startup/bench_startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, machine  # noqa: E402

HEAVY = (
    "torch",
    "onnxruntime",
    "scipy.ndimage",
    "scipy.optimize",
    "scipy.special",
    "skimage.segmentation",
    "matplotlib.pyplot",
    "pydantic",
    "yaml",
)
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)$")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def _run(args: list[str], cwd: Path, importtime: bool = False) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, stderr) of ``python -m beadseg ARGS``; raises on failure."""
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "beadseg", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"beadseg {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stderr


def parse_importtime(stderr: str) -> dict:
    """Total import time (s), the 8 slowest top-level imports and the heavy modules loaded."""
    top, names = [], set()
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        names.add(m.group(4))
        if len(m.group(3)) == 1:  # one space: imported by the program itself
            top.append((int(m.group(2)) / 1e6, m.group(4)))
    top.sort(reverse=True)
    return {
        "import_s": round(sum(t for t, _ in top), 3),
        "slowest_imports_s": {n: round(t, 3) for t, n in top[:8]},
        "heavy_modules": [h for h in HEAVY if any(n == h or n.startswith(h + ".") for n in names)],
    }


def _inputs(tmp: Path) -> dict[str, list[str]]:
    """Tiny inputs and the commands to time on them."""
    _run(["synth", "data", "--n", "4", "--size", "128", "--dilution-series"], tmp)
    _run(["predict", "default", "data/images", "--out", "pred", "--quiet"], tmp)
    for i in range(2):
        _run(["predict", "default", "data/images", "--out", f"shard{i}", "--quiet", "--shard", f"{i}/2"], tmp)
    # 2 epochs of 64 crops at lr 0.01: it learns (a run that predicts nothing ends collapsed, exit 3)
    sets = [
        "data.crop_size=64",
        "data.crops_per_epoch=64",
        "optim.lr=0.01",
        "model.base_channels=4",
        "model.depth=2",
    ]
    setargs = [a for s in sets for a in ("--set", s)]
    _run(["train", "data", "--out", "run", "--epochs", "2", "--quiet", *setargs], tmp)
    one = sorted((tmp / "data" / "images").iterdir())[0]
    # OUT is replaced by a new folder for every run: predict never resumes, nothing is reused
    return {
        "--help": ["--help"],
        "predict": ["predict", "default", str(one), "--out", "OUT", "--quiet", "--device", "cpu"],
        "predict_torch": ["predict", "default", str(one), "--out", "OUT", "--quiet", "--set=runtime=torch"],
        "evaluate": ["evaluate", "default", "data", "--out", "OUT", "--device", "cpu"],
        "evaluate_predictions": ["evaluate", "pred", "data", "--out", "OUT"],
        "analyze": ["analyze", "data", "--out", "OUT", "--quiet"],
        "analyze_no_plots": ["analyze", "data", "--out", "OUT", "--quiet", "--no-plots"],
        "dilution": ["dilution", "pred/counts.csv", "--out", "OUT"],
        "compare": ["compare", "run"],
        "merge": ["merge", "shard0", "shard1", "--out", "OUT"],
        "synth": ["synth", "OUT", "--n", "1", "--size", "64"],
        "export": ["export", "run", "--format", "onnx", "--out", "OUT.onnx"],
    }


def _fresh(argv: list[str], tag: str) -> list[str]:
    return [a.replace("OUT", f"out-{tag}") for a in argv]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    res = {"machine": machine(), "rounds": args.rounds, "load_before": os.getloadavg(), "commands": {}}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        cmds = _inputs(tmp)
        for cmd, argv in cmds.items():
            stderr = _run(_fresh(argv, f"{cmd}-imports"), tmp, importtime=True)[2]
            res["commands"][cmd] = {"argv": argv, **parse_importtime(stderr)}
        for r in range(args.rounds):
            for cmd, argv in cmds.items():
                wall, cpu, _ = _run(_fresh(argv, f"{cmd}-{r}"), tmp)
                rec = res["commands"][cmd]
                rec.setdefault("wall_s", []).append(round(wall, 3))
                rec.setdefault("cpu_s", []).append(round(cpu, 3))
            print(f"round {r + 1} done", flush=True)
    for rec in res["commands"].values():
        rec["best_wall_s"], rec["best_cpu_s"] = min(rec["wall_s"]), min(rec["cpu_s"])
    res["load_after"] = os.getloadavg()
    path = OUT / "startup" / "bench_startup.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2))
    print(f"{'command':22s} {'wall s':>7s} {'cpu s':>6s} {'import s':>8s}  heavy modules")
    for cmd, rec in res["commands"].items():
        print(
            f"{cmd:22s} {rec['best_wall_s']:7.2f} {rec['best_cpu_s']:6.2f} {rec['import_s']:8.2f}  "
            f"{', '.join(rec['heavy_modules'])}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
