"""Measure a model's count interval (beadseg.core.intervals) on exact truth of its training frames.

Builds exact-truth tiles only from the frames the counting benchmark does not hold out
(weights/default_split.json), never from the ``heldout`` family: the ``train`` family at six
levels, sparse to monolayer (``--n`` tiles per level, seed 601, so none is a training tile),
and the first generator (`synth --from` without a family, beads touching at 0.75-1.0 diameters,
sparse to crowded, seed 602), so that the spread reflects more than one way of making truth.
Runs `beadseg predict MODEL` on them and fits the calibration: bins of at least ``--per-bin``
tiles by the predicted foreground fraction, the mean and SD of log(true / predicted) in each.

With ``--frame-sd`` the table also carries the spread of the bias between frames the model
never saw (``frame_sd``, measured by benchmarks/frame_spread.py: its JSON file or a number): the
calibration tiles are of the model's training frames, a user's frames are not.

Writes bench-out/calibration_<tag>.json (the table and every tile). With ``--into OUT.pt`` it
writes a copy of the checkpoint whose meta carries the table (``count_calibration``) and its
ONNX file beside it; ``--install`` does that for bench-out/default_v3_export/default.pt and copies
both into src/beadseg/models/weights/.

    python benchmarks/calibrate_counts.py MODEL [--tag TAG] [--n 8] [--frame-sd bench-out/frame_spread.json]
        [--into OUT.pt] [--install]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_counting import beadseg, true_centres  # noqa: E402
from common import DATA, OUT, ROOT, machine  # noqa: E402
from train_default import heldout_frames  # noqa: E402

from beadseg.core.intervals import calibrate  # noqa: E402

FAMILY_LEVELS = "sparse,medium,dense,clumped,packed,monolayer"
FIRST_LEVELS = "sparse,medium,dense,clumped,crowded"
WEIGHTS = ROOT / "src" / "beadseg" / "models" / "weights"


def training_frames() -> list[str]:
    """The real source frames of the dev set that the benchmark does not hold out."""
    from beadseg.core.naming import source_frame

    held = set(heldout_frames())
    stems = (p.stem for p in (DATA / "images").iterdir() if not p.stem.startswith("synthetic"))
    return sorted({source_frame(s) for s in stems} - held)


def truth_sets(n: int) -> list[Path]:
    frames = ",".join(training_frames())
    sets = []
    for name, shape, levels, n_level, seed in (
        ("train", ["--family", "train"], FAMILY_LEVELS, n, 601),
        ("first", ["--touch", "0.75,1.0"], FIRST_LEVELS, max(2, n // 2), 602),
    ):
        out = OUT / "calibration" / f"truth_{name}_n{n}"
        if not (out / "composites.csv").exists():
            beadseg("synth", out, "--from", DATA, "--frames", frames, "--levels", levels, "--n", n_level,
                    "--seed", seed, "--prefix", f"cal_{name}", *shape)  # fmt: skip
        sets.append(out)
    return sets


def measure(model: str, tag: str, sets: list[Path]) -> list[dict]:
    """One row per tile: true and predicted count, predicted foreground fraction, area."""
    rows = []
    for truth in sets:
        pred = OUT / "calibration" / f"pred_{tag}_{truth.name}"
        if pred.exists():
            shutil.rmtree(pred)
        beadseg("predict", model, truth / "images", "--out", pred, "--quiet")
        counts = {r["image"]: r for r in csv.DictReader(open(pred / "counts.csv"))}
        for r in csv.DictReader(open(truth / "composites.csv")):
            c = counts[r["name"]]
            true = len(true_centres(truth, r["name"]))
            rows.append(
                {
                    "set": truth.name,
                    "name": r["name"],
                    "level": r["level"],
                    "true": true,
                    "pred": int(c["count"]),
                    "foreground_fraction": float(c["foreground_fraction"]),
                    "area_px": int(c["height"]) * int(c["width"]),
                }
            )
    return rows


def install(model: Path, table: dict, out: Path) -> Path:
    """A copy of ``model`` whose meta carries the table, and its ONNX file."""
    from beadseg.models.checkpoint import (
        load_checkpoint,
        resolve_model_path,
        save_checkpoint,
        slim_checkpoint,
    )
    from beadseg.models.onnx import export_onnx

    model = resolve_model_path(model)  # "default" or a run folder: the checkpoint file
    state = load_checkpoint(model)
    if out.resolve() == model.resolve():
        tmp = out.with_suffix(".calibrating.pt")
        save_checkpoint(tmp, slim_checkpoint(state, count_calibration=table))
        tmp.replace(out)
    else:
        save_checkpoint(out, slim_checkpoint(state, count_calibration=table))
    export_onnx(out, out.with_suffix(".onnx"))
    return out


def read_frame_sd(value: str) -> tuple[float, str]:
    """(frame_sd, a note for the table's source) from frame_spread.py's JSON file or a number."""
    path = Path(value)
    if path.suffix == ".json":
        sd = float(json.loads(path.read_text())["frame_sd"])
        return sd, f"; frame_sd {sd:.4f} between unseen frames (benchmarks/frame_spread.py)"
    sd = float(value)
    return sd, f"; frame_sd {sd:.4f}" if sd else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=str(OUT / "default_v3_export" / "default.pt"))
    ap.add_argument("--tag", default=None)
    ap.add_argument("--n", type=int, default=8, help="train-family tiles per level")
    ap.add_argument("--per-bin", type=int, default=10, help="fewest tiles per density bin")
    ap.add_argument("--frame-sd", default="0", help="frame_spread.py's JSON file, or the SD itself")
    ap.add_argument("--into", type=Path, default=None, help="write the calibrated checkpoint here")
    ap.add_argument("--install", action="store_true", help="calibrate the v3 export and install it")
    a = ap.parse_args()
    tag = a.tag or Path(a.model).stem
    rows = measure(a.model, tag, truth_sets(a.n))
    frame_sd, frame_source = read_frame_sd(a.frame_sd)
    cal = calibrate(
        [r["pred"] for r in rows],
        [r["true"] for r in rows],
        [r["foreground_fraction"] for r in rows],
        [r["area_px"] for r in rows],
        min_per_bin=a.per_bin,
        source=f"benchmarks/calibrate_counts.py: {len(rows)} exact-truth tiles of the training frames "
        f"(train family seed 601, first generator seed 602){frame_source}, {machine()}",
        frame_sd=frame_sd,
    )
    inside = [cal.interval(r["pred"], r["foreground_fraction"], r["area_px"]) for r in rows]
    covered = float(np.mean([iv.low <= r["true"] <= iv.high for iv, r in zip(inside, rows)]))
    table = cal.to_dict()
    result = {
        "model": a.model,
        "machine": machine(),
        "table": table,
        "coverage_on_itself": covered,
        "tiles": rows,
    }
    (OUT / f"calibration_{tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| bin: foreground up to | tiles | mean log(true/pred) | SD |\n|---|---|---|---|")
    for b in cal.bins:
        print(f"| {b.upper:.3f} | {b.n} | {b.mean:+.4f} | {b.sd:.4f} |")
    print(f"frame_sd {frame_sd:.4f}; coverage on the calibration tiles themselves: {covered:.3f}")
    if a.install:
        src = OUT / "default_v3_export" / "default.pt"
        done = install(src, table, src)
        for f in (done, done.with_suffix(".onnx")):
            shutil.copy(f, WEIGHTS / f.name)
        print(f"installed {done.name} and {done.with_suffix('.onnx').name} into {WEIGHTS}")
    elif a.into is not None:
        print(f"wrote {install(Path(a.model), table, a.into)}")


if __name__ == "__main__":
    main()
