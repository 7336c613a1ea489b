"""`beadseg analyze` wall time against dataset size on the dev set (all checks and plots),
best of 3, as the CLI runs it (a fresh process, imports included).

    python benchmarks/bench_analyze.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, OUT, machine, subset  # noqa: E402


def main():
    names = sorted(p.stem for p in (DATA / "images").iterdir())
    res = {"machine": machine(), "runs": []}
    for n in (20, 40, len(names)):
        keep = set(names[:: max(len(names) // n, 1)][:n]) if n < len(names) else set(names)
        data = DATA if n == len(names) else subset(f"analyze_{n}", lambda s, k=keep: s in k)
        for plots in (True, False):
            times = []
            for _ in range(3):
                cmd = [sys.executable, "-m", "beadseg", "analyze", str(data), "--out",
                       str(OUT / "analyze" / f"n{n}")] + ([] if plots else ["--no-plots"])
                t = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                times.append(time.perf_counter() - t)
            res["runs"].append({"images": n, "plots": plots, "best_s": min(times),
                                "all_s": times})
            print(res["runs"][-1], flush=True)
    (OUT / "analyze" / "bench_analyze.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
