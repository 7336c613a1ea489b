"""Choose the instance settings of a centre-head model on exact truth from its TRAINING frames.

The model's outputs are computed once per image; every combination of the centre-peak floor
(``instances.centre_threshold``), the peak window (``peak_distance_px``) and the smoothing
(``peak_sigma_px``), the minimum evidence (``min_probability``, ``min_centre``) and the border
rule (``border``) - and the probability_peaks / distance methods for reference - is scored
by centroid F1 and total count error per density level (only beads centred inside a tile are
its truth). Use truth sets made (`beadseg synth --from --frames ... --family train`) from
frames the model trained on, never from the frames or the family a benchmark holds out.
Writes bench-out/tune_instances_<tag>.json and prints the settings ranked by their worst level
(lowest F1, largest |count error|).

    python benchmarks/tune_instances.py MODEL TRUTH [TRUTH ...] [--tag TAG] [--grid small|full]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT  # noqa: E402

from beadseg.core.beads import segment_instances  # noqa: E402
from beadseg.core.config import InstanceConfig  # noqa: E402
from beadseg.core.labels import centroids  # noqa: E402
from beadseg.core.metrics import count_summary, match_points  # noqa: E402
from beadseg.inference import load_model, segment  # noqa: E402


def settings(has_centre: bool, grid: str = "small") -> dict[str, InstanceConfig]:
    out = {}
    for method in ("distance", "probability_peaks"):
        for border, p in (("keep", 0.0), ("by_centre", 0.0), ("by_centre", 0.7)):
            out[f"{method} border={border} p={p}"] = InstanceConfig(
                method=method, border=border, min_probability=p
            )
    if not has_centre:
        return out
    out["centre t=0.3 d=1 s=0.0 m=0.0 border=keep p=0.0 c=0.0"] = InstanceConfig(
        method="centre_peaks", border="keep"
    )
    windows = ((1, 0.0), (2, 0.0), (1, 0.5)) if grid == "full" else ((1, 0.0), (1, 0.5))
    for t, (d, s), m, p, c in itertools.product(
        (0.2, 0.3, 0.4), windows, (0.0, 2.5), (0.0, 0.6, 0.7), (0.0, 0.4, 0.5)
    ):
        if (c and c <= t) or (s and m):
            continue
        out[f"centre t={t} d={d} s={s} m={m} border=by_centre p={p} c={c}"] = InstanceConfig(
            method="centre_peaks",
            centre_threshold=t,
            peak_distance_px=d,
            peak_sigma_px=s,
            peak_merge_px=m,
            min_probability=p,
            min_centre=c,
        )
    return out


def truth_centres(path: Path) -> np.ndarray:
    """The true centres of a tile: those inside it (``inside`` column, when there is one)."""
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("inside", "1") != "0"]
    return np.array([[float(r["y"]), float(r["x"])] for r in rows]).reshape(-1, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("truth", nargs="+", type=Path)
    ap.add_argument("--tag", default="model")
    ap.add_argument("--grid", default="small", choices=["small", "full"])
    a = ap.parse_args()
    m = load_model(a.model)
    cands = settings(m.centre_head, a.grid)
    scores: dict[str, dict[str, list]] = {k: {} for k in cands}
    for truth in a.truth:
        for row in csv.DictReader(open(truth / "composites.csv")):
            name, level = row["name"], f"{truth.name}:{row['level']}"
            seg = segment(m, truth / "images" / f"{name}.png")
            pts = truth_centres(truth / "centres" / f"{name}.csv")
            for key, inst in cands.items():
                labels = segment_instances(seg.probabilities, seg.centres, inst, m.threshold)
                mt = match_points(pts, centroids(labels), 3.0)
                scores[key].setdefault(level, []).append((mt.tp, mt.fp, mt.fn, mt.n_pred, mt.n_true))
    table = {}
    for key, by_level in scores.items():
        table[key] = {}
        for level, r in by_level.items():
            r = np.array(r, float)
            tp, fp, fn = r[:, :3].sum(0)
            c = count_summary(r[:, 3], r[:, 4])
            table[key][level] = {
                "f1": 2 * tp / max(2 * tp + fp + fn, 1),
                "total_count_error": c.total_relative_error,
            }
    worst = {
        k: (min(v["f1"] for v in t.values()), max(abs(v["total_count_error"]) for v in t.values()))
        for k, t in table.items()
    }
    ranked = sorted(table, key=lambda k: worst[k][1] - worst[k][0])
    (OUT / f"tune_instances_{a.tag}.json").write_text(json.dumps({"table": table, "worst": worst}, indent=1))
    print("| setting | worst F1 | worst abs count error |\n|---|---|---|")
    reference = [k for k in table if k.endswith("border=keep p=0.0") and k not in ranked[:12]]
    for k in ranked[:12] + reference:
        print(f"| {k} | {worst[k][0]:.3f} | {100 * worst[k][1]:.1f} % |")


if __name__ == "__main__":
    main()
