"""Counting benchmark on exact truth: do touching and packed beads get counted?

Builds exact-truth tiles (`beadseg synth --from DATA --family heldout`) from the held-out frames
of a model only (the ``val`` tiles of its split file: sprites and backgrounds never come from its
training frames, nor from the frames of the training composites), with the ``heldout`` family
(other spacing, size, contrast, blur, noise and JPEG ranges than the ``train`` family, and
ballistic aggregates instead of grown groups and lattice packs: a generator the model never
trained on), at six levels: sparse (40 beads per 512 px, none touching), medium (200, 20 % in
touching groups), dense (450, 35 %), clumped (300, 70 % in groups of 2-7), packed (1000, 60 % in
groups of 2-30), monolayer (2000, 85 % in groups of 2-60); 5 tiles of 512 px per level, seed
fixed. Beads cut by a tile's border belong to the tile that holds their centre
(centres/NAME.csv ``inside``): only those are the truth. ``--family none`` builds the first
generator's tiles (four levels, ``--touch``) as before.

Runs `beadseg predict MODEL` on them through the CLI (a subprocess, so the script does not depend
on the package's internals; ``--pythonpath SRC`` runs another version's package, e.g. the code
of the model shipped before, for a "before" number) and scores, per level:

- centroid F1: true centres vs predicted bead centroids (OUT/beads/NAME.csv), matched one-to-one
  within 3 px (`beadseg.core.metrics.match_points`), counts pooled over the tiles;
- recall of single beads and of beads in touching groups;
- total count error (predicted - true) / true over the level, and median |count error| per tile;
- with a model that writes count intervals (counts.csv count_low, count_high): the share of
  tiles whose true count lies inside (coverage).

With ``--compare-methods`` the same model's outputs are also turned into beads by each instance
method (`InstanceConfig.method`: distance, probability_peaks, and centre_peaks for models with
a centre head), in-process, and scored alike.

Writes bench-out/counting_<tag>.json (seed 0; other seeds or --touch ranges add a tag) and
prints a Markdown table. Only a model that never trained on the split's ``val`` frames is held
out here: the shipped model trained on every dev frame (say so when you report it).

    python benchmarks/bench_counting.py [MODEL] [--tag TAG] [--split SPLIT_JSON] [--seed 0]
        [--n 5] [--family heldout|train|none] [--touch 0.9,1.0] [--pythonpath SRC]
        [--save-probabilities] [--compare-methods] [--precision P]

``--precision`` is the predict setting (auto, float32, int8); :func:`run_counting` is what
``benchmarks/cheaper_network.py`` calls to score a cheaper network against its float32 self.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, OUT, ROOT, machine  # noqa: E402

from beadseg.core.metrics import count_summary, match_points  # noqa: E402

FIRST_LEVELS = ("sparse", "medium", "dense", "clumped")
FAMILY_LEVELS = ("sparse", "medium", "dense", "clumped", "packed", "monolayer")
DEFAULT_SPLIT = ROOT / "src" / "beadseg" / "models" / "weights" / "default_split.json"
DEFAULT_TOUCH = "0.9,1.0"


def run_name(seed: int, touch: str = DEFAULT_TOUCH, family: str = "heldout") -> str:
    """Folder/file tag of one truth set: ``heldout_seed0``; the first generator's ``seed0`` or
    ``seed1_touch0.75-0.9``."""
    if family != "none":
        return f"{family}_seed{seed}"
    return f"seed{seed}" + ("" if touch == DEFAULT_TOUCH else f"_touch{touch.replace(',', '-')}")


def beadseg(*args: str, pythonpath: str | None = None) -> None:
    """Run the beadseg CLI in a subprocess (with ``pythonpath``: that version's package); stop
    the benchmark if it fails."""
    cmd = [sys.executable, "-m", "beadseg", *map(str, args)]
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else None
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    print(r.stdout.strip().splitlines()[-1], file=sys.stderr)


def read_points(path: Path, xcol: str, ycol: str) -> tuple[np.ndarray, list[dict]]:
    """``N x 2`` (row, col) points of a CSV and its rows; a centres table's beads whose centre
    lies outside the tile (``inside`` 0: slivers of the neighbouring tile's beads) left out."""
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("inside", "1") != "0"]
    pts = np.array([[float(r[ycol]), float(r[xcol])] for r in rows]).reshape(-1, 2)
    return pts, rows


def true_centres(truth: Path, name: str) -> np.ndarray:
    """The exact-truth centres of tile ``name`` in a truth set (``truth/centres/NAME.csv``)."""
    return read_points(truth / "centres" / f"{name}.csv", "x", "y")[0]


def score_image(truth: Path, pred: Path, name: str, max_dist_px: float) -> dict:
    """Centroid matching of one tile, with recall split by group size."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    t, rows = read_points(truth / "centres" / f"{name}.csv", "x", "y")
    p, _ = read_points(pred / "beads" / f"{name}.csv", "centroid_x", "centroid_y")
    m = match_points(t, p, max_dist_px)
    # which true beads were matched (same optimum as match_points: most pairs, then closest)
    d = cdist(t, p) if len(t) and len(p) else np.zeros((len(t), len(p)))
    cost = np.where(d <= max_dist_px, d / max_dist_px - 1e3, 0.0)
    ri, ci = linear_sum_assignment(cost) if cost.size else ([], [])
    hit = np.zeros(len(t), bool)
    hit[[r for r, c in zip(ri, ci) if d[r, c] <= max_dist_px]] = True
    single = np.array([int(r["group_size"]) == 1 for r in rows], bool)
    assert hit.sum() == m.tp, (hit.sum(), m.tp)
    return {
        "name": name,
        "n_true": m.n_true,
        "n_pred": m.n_pred,
        "tp": m.tp,
        "fp": m.fp,
        "fn": m.fn,
        "f1": m.f1,
        "single_true": int(single.sum()),
        "single_hit": int(hit[single].sum()),
        "grouped_true": int((~single).sum()),
        "grouped_hit": int(hit[~single].sum()),
    }


def summarise(images: list[dict]) -> dict:
    tp, fp, fn = (sum(r[k] for r in images) for k in ("tp", "fp", "fn"))
    c = count_summary([r["n_pred"] for r in images], [r["n_true"] for r in images])
    st, sh = sum(r["single_true"] for r in images), sum(r["single_hit"] for r in images)
    gt, gh = sum(r["grouped_true"] for r in images), sum(r["grouped_hit"] for r in images)
    return {
        "n_images": len(images),
        "n_true": c.true_total,
        "n_pred": c.pred_total,
        "f1": 2 * tp / max(2 * tp + fp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(tp + fn, 1),
        "recall_single": sh / st if st else None,
        "recall_grouped": gh / gt if gt else None,
        "total_count_error": c.total_relative_error,
        "median_abs_count_error": c.median_abs_error,
    }


def compare_methods(model: str, truth: Path, level_of: dict[str, str], max_dist: float) -> dict:
    """Per instance method: the level summaries of the model's beads (in-process)."""
    from beadseg.core.labels import centroids
    from beadseg.inference import load_model, segment

    m = load_model(model)
    methods = ["distance", "probability_peaks"] + (["centre_peaks"] if m.centre_head else [])
    levels = sorted(set(level_of.values()), key=list(level_of.values()).index)
    out = {}
    for method in methods:
        inst = m.instances.model_copy(update={"method": method})
        images = []
        for name, lv in level_of.items():
            labels = segment(m, truth / "images" / f"{name}.png", None, None, inst).labels
            t = true_centres(truth, name)
            mt = match_points(t, centroids(labels), max_dist)
            images.append(
                {
                    "level": lv,
                    "n_true": mt.n_true,
                    "n_pred": mt.n_pred,
                    "tp": mt.tp,
                    "fp": mt.fp,
                    "fn": mt.fn,
                    "single_true": 0,
                    "single_hit": 0,
                    "grouped_true": 0,
                    "grouped_hit": 0,
                }
            )
        out[method] = {lv: summarise([r for r in images if r["level"] == lv]) for lv in levels}
    return out


def coverage(pred: Path, images: list[dict]) -> dict | None:
    """Share of tiles whose true count lies in the count interval of counts.csv (None when the
    model writes no interval), per level and over all."""
    with open(pred / "counts.csv") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    if not rows or "count_low" not in next(iter(rows.values())):
        return None
    hits: dict[str, list[bool]] = {}
    for r in images:
        row = rows[r["name"]]
        if row["count_low"] == "":
            continue
        low, high = float(row["count_low"]), float(row["count_high"])
        inside = low <= r["n_true"] <= high
        r |= {"count_low": low, "count_high": high, "covered": inside}
        hits.setdefault(r["level"], []).append(inside)
    per_level = {lv: float(np.mean(h)) for lv, h in hits.items()}
    every = [x for h in hits.values() for x in h]
    if not every:  # a model without a count calibration leaves the interval empty
        return None
    return {"all": float(np.mean(every)), "n_tiles": len(every), "levels": per_level}


def markdown(model: str, levels: dict) -> str:
    lines = [
        f"| level ({model}) | tiles | true | predicted | centroid F1 | recall single | "
        "recall in groups | total count error | median abs count error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in levels.items():
        rs = "-" if s["recall_single"] is None else f"{s['recall_single']:.3f}"
        rg = "-" if s["recall_grouped"] is None else f"{s['recall_grouped']:.3f}"
        lines.append(
            f"| {name} | {s['n_images']} | {s['n_true']:.0f} | {s['n_pred']:.0f} | "
            f"{s['f1']:.3f} | {rs} | {rg} | {100 * s['total_count_error']:+.1f} % | "
            f"{100 * s['median_abs_count_error']:.1f} % |"
        )
    return "\n".join(lines)


def run_counting(
    model: str,
    tag: str,
    seed: int = 0,
    touch: str = DEFAULT_TOUCH,
    n: int = 5,
    max_dist: float = 3.0,
    split: Path = DEFAULT_SPLIT,
    precision: str | None = None,
    save_probabilities: bool = False,
    family: str = "heldout",
    pythonpath: str | None = None,
) -> dict:
    """Make the truth set (family, seed; touch for ``family="none"``), predict it with ``model``
    (at ``precision``: the predict setting, default its own) and score it; returns the result
    written to JSON (with ``level_of`` and ``truth`` for the caller)."""
    val = json.loads(split.read_text())["val"]
    run = run_name(seed, touch, family)
    truth = OUT / "counting" / f"truth_{run}"
    pred = OUT / "counting" / f"pred_{tag}_{run}"
    levels = FAMILY_LEVELS if family != "none" else FIRST_LEVELS
    shape = ["--family", family] if family != "none" else ["--touch", touch]
    t0 = time.perf_counter()
    beadseg(
        "synth",
        truth,
        "--from",
        DATA,
        "--frames",
        ",".join(val),
        "--levels",
        ",".join(levels),
        "--n",
        n,
        "--seed",
        seed,
        *shape,
        "--overwrite",  # regenerated from the seed every time (an older version's folder too)
    )
    t_synth = time.perf_counter() - t0
    if pred.exists():  # predict resumes finished frames: never score another model's outputs
        shutil.rmtree(pred)
    t0 = time.perf_counter()
    beadseg(
        "predict",
        model,
        truth / "images",
        "--out",
        pred,
        "--quiet",
        *(["--save-probabilities"] if save_probabilities else []),
        *(["--precision", precision] if precision else []),
        pythonpath=pythonpath,
    )
    t_predict = time.perf_counter() - t0
    with open(truth / "composites.csv") as f:
        level_of = {r["name"]: r["level"] for r in csv.DictReader(f)}
    images = [score_image(truth, pred, name, max_dist) | {"level": lv} for name, lv in level_of.items()]
    prov = json.loads((truth / "provenance.json").read_text())
    ran = json.loads((pred / "settings.json").read_text())
    return {
        "model": model,
        "precision": ran.get("precision", "float32"),
        "family": family,
        "touch_diameters": touch if family == "none" else None,
        "pythonpath": pythonpath,
        "split": str(split),
        "seed": seed,
        "max_dist_px": max_dist,
        "sprite_tiles": prov["sprite_tiles"],
        "background_tiles": prov["background_tiles"],
        "n_sprites": prov["n_sprites"],
        "radius_px": prov["radius_px"],
        "synth_s": t_synth,
        "predict_s": t_predict,
        "machine": machine(),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "levels": {lv: summarise([r for r in images if r["level"] == lv]) for lv in levels},
        "coverage": coverage(pred, images),
        "images": images,
        "level_of": level_of,
        "truth": str(truth),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="default", help="run folder, checkpoint or default")
    ap.add_argument(
        "--split",
        type=Path,
        default=DEFAULT_SPLIT,
        help="split JSON whose val tiles feed sprites and backgrounds",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=5, help="tiles per level")
    ap.add_argument("--family", default="heldout", help="heldout, train, or none (the first generator)")
    ap.add_argument("--max-dist", type=float, default=3.0, help="centroid match distance (px)")
    ap.add_argument("--touch", default=DEFAULT_TOUCH, help="--family none: touching distance LOW,HIGH")
    ap.add_argument("--pythonpath", default=None, help="run predict with this package source (before)")
    ap.add_argument("--save-probabilities", action="store_true")
    ap.add_argument("--precision", default=None, help="predict.precision: auto, float32 or int8")
    ap.add_argument("--compare-methods", action="store_true", help="score every instance method too")
    ap.add_argument("--tag", default=None, help="name of the result (default: the model's)")
    a = ap.parse_args()
    tag = a.tag or ("default" if a.model == "default" else Path(a.model).stem)
    run = run_name(a.seed, a.touch, a.family)
    result = run_counting(
        a.model,
        tag,
        a.seed,
        a.touch,
        a.n,
        a.max_dist,
        a.split,
        a.precision,
        a.save_probabilities,
        a.family,
        a.pythonpath,
    )
    level_of, truth = result.pop("level_of"), Path(result.pop("truth"))
    if a.compare_methods:
        result["methods"] = compare_methods(a.model, truth, level_of, a.max_dist)
    out = OUT / (f"counting_{tag}.json" if run == "heldout_seed0" else f"counting_{tag}_{run}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(tag, result["levels"]))
    for method, per_level in result.get("methods", {}).items():
        print("\n" + markdown(f"{tag}, {method}", per_level))
    if result["coverage"]:
        cov = result["coverage"]
        print(f"\ncount interval coverage: {cov['all']:.3f} of {cov['n_tiles']} tiles; {cov['levels']}")
    print(
        f"\n{result['n_sprites']} sprites from {len(result['sprite_tiles'])} tiles, "
        f"{len(result['background_tiles'])} backgrounds; synth {result['synth_s']:.1f} s, predict "
        f"{result['predict_s']:.1f} s; {out}"
    )


if __name__ == "__main__":
    main()
