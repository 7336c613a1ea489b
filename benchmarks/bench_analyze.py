"""`beadseg analyze` against the users' old analyzer script on the same images, same run.

Both are timed as whole processes (interpreter start and imports included), interleaved round by
round so that both see the same machine load; best of 3 each. ``floor`` is
a process that only imports what an analyzer with figures needs (numpy, scipy.ndimage, Pillow,
matplotlib) and decodes every image and mask: no implementation in Python can be faster. The old
script
(``analyze_microbead_dataset.py``, Zhao-Xiaodan/unet-HPC) is not part of beadseg: it runs from
where it lies (``BEADSEG_REFERENCE_ANALYZER``, default ``../shared/reference/``) in a temporary
folder holding symlinks ``dataset_microscope/{images,masks}`` to the dev set, as it expects. It
needs OpenCV (``pip install opencv-python-headless``, in the ``bench`` extra).

    python benchmarks/bench_analyze.py [--rounds 3] [--sizes] [--tag TAG]   # BEADSEG_DATA: another set

Writes ``bench-out/analyze/bench_analyze.json``: wall seconds (best and all rounds), CPU seconds
of each process (user + sys, less sensitive to other load), the load average before and after,
and the speed-up ``reference best / ours best``. ``--sizes`` adds beadseg runs on 20 and 40 images.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, OUT, ROOT, machine, subset  # noqa: E402

REFERENCE = Path(
    os.environ.get(
        "BEADSEG_REFERENCE_ANALYZER", ROOT.parent / "shared" / "reference" / "analyze_microbead_dataset.py"
    )
)


def _timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run; raises on failure."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _reference_folder(tmp: Path, data: Path) -> Path:
    work = tmp / "reference"
    (work / "dataset_microscope").mkdir(parents=True)
    for sub in ("images", "masks"):
        (work / "dataset_microscope" / sub).symlink_to((data / sub).resolve())
    return work


#: the least any Python analyzer with figures at native resolution does before it checks anything:
#: start, import numpy, scipy.ndimage, Pillow and matplotlib, and decode every image and mask
_FLOOR = """
import sys
from pathlib import Path
import numpy as np
import scipy.ndimage
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot
from PIL import Image
for sub in ("images", "masks"):
    for f in sorted((Path(sys.argv[1]) / sub).iterdir()):
        np.asarray(Image.open(f))
"""


def _commands(data: Path, tmp: Path) -> dict[str, tuple[list[str], Path | None]]:
    ours = [sys.executable, "-m", "beadseg", "analyze", str(data), "--quiet", "--out"]
    cmds = {
        "beadseg": (ours + [str(tmp / "ours")], None),
        "beadseg_no_plots": (ours + [str(tmp / "ours-np"), "--no-plots"], None),
    }
    cmds["floor"] = ([sys.executable, "-c", _FLOOR, str(data)], None)
    if REFERENCE.is_file():
        cmds["reference"] = ([sys.executable, str(REFERENCE)], _reference_folder(tmp, data))
    else:
        print(f"old analyzer not found at {REFERENCE}; set BEADSEG_REFERENCE_ANALYZER", flush=True)
    return cmds


def compare(rounds: int) -> dict:
    """Interleaved best-of-``rounds`` timings of beadseg and the old script on DATA."""
    n_images = sum(1 for _ in (DATA / "images").iterdir())
    res = {"images": n_images, "rounds": rounds, "load_before": os.getloadavg(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cmds = _commands(DATA, Path(tmp))
        for r in range(rounds):
            for name, (cmd, cwd) in cmds.items():
                wall, cpu = _timed(cmd, cwd)
                run = res["runs"].setdefault(name, {"wall_s": [], "cpu_s": []})
                run["wall_s"].append(round(wall, 3))
                run["cpu_s"].append(round(cpu, 3))
                print(f"round {r + 1} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    for run in res["runs"].values():
        run["best_wall_s"] = min(run["wall_s"])
        run["best_cpu_s"] = min(run["cpu_s"])
    res["load_after"] = os.getloadavg()
    if "reference" in res["runs"]:
        ref = res["runs"]["reference"]["best_wall_s"]
        res["speedup"] = {
            k: round(ref / v["best_wall_s"], 2) for k, v in res["runs"].items() if k != "reference"
        }
        # the 5x goal leaves ref / 5 s; the floor shows how much of it is left after start-up,
        # imports and decoding the images, before any check or figure
        res["goal_s"] = round(ref / 5, 3)
    return res


def sizes(rounds: int) -> list[dict]:
    """beadseg alone on 20 and 40 images (every k-th name), best of ``rounds``."""
    names = sorted(p.stem for p in (DATA / "images").iterdir())
    out = []
    for n in (20, 40):
        keep = set(names[:: max(len(names) // n, 1)][:n])
        data = subset(f"analyze_{n}", lambda s, k=keep: s in k)
        with tempfile.TemporaryDirectory() as tmp:
            walls = [
                _timed([sys.executable, "-m", "beadseg", "analyze", str(data), "--quiet", "--out", tmp])[0]
                for _ in range(rounds)
            ]
        out.append({"images": n, "best_wall_s": min(walls), "wall_s": walls})
        print(out[-1], flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", action="store_true", help="also time 20 and 40 images")
    ap.add_argument("--tag", default=None, help="write bench_analyze_TAG.json (another data set)")
    args = ap.parse_args()
    if not (DATA / "images").is_dir():
        raise SystemExit(f"the dev set is not at {DATA}; set BEADSEG_DATA")
    res = {"machine": machine(), "data": str(DATA), **compare(args.rounds)}
    if args.sizes:
        res["sizes"] = sizes(args.rounds)
    path = OUT / "analyze" / (f"bench_analyze_{args.tag}.json" if args.tag else "bench_analyze.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2))
    print(json.dumps({k: res[k] for k in ("speedup", "load_before", "load_after") if k in res}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
