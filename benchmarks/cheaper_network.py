"""A cheaper network at the same counts: a model's int8 file (or a distilled student) scored
against the float32 model on the counting benchmark and on the held-out real tiles.

    python benchmarks/cheaper_network.py quantize [MODEL] [--install]
    python benchmarks/cheaper_network.py score CANDIDATE [--reference MODEL]
    python benchmarks/cheaper_network.py refresh [MODEL]

``quantize`` copies MODEL's checkpoint and ONNX file into ``bench-out/cheaper/TAG/model/``,
writes its int8 file there (``beadseg export --format int8``, calibrated on the real tiles of
the frames the benchmarks do NOT hold out: ``weights/default_split.json``) and predicts every
truth set twice, ``--precision float32`` and ``--precision int8``. ``score`` compares another
model (a student of ``benchmarks/distill_model.py``; at its own default precision) with the
reference at float32. The truth sets:

- exact truth (``bench_counting.run_counting``): seeds 0, 1, 2 with beads touching at 0.9-1.0
  diameters and seed 0 at 0.75-0.9 (overlapping), four levels each, from the held-out frames;
  and the ``heldout`` family (seed 0, sparse to monolayer, 5 tiles per level);
- the real tiles of the held-out frames against their masks (``beadseg evaluate``: pooled
  centroid F1, total and median count error). The shipped model trained on those frames too:
  this compares the two networks, it does not measure generalisation.

The gate (issue: "centroid F1 and count error may not drop by more than 0.5 points"): on every
level of every set, the candidate's centroid F1 is at most 0.005 below the float model's and its
|total count error| at most 0.5 percentage points above. ``--install`` copies the int8 file
beside MODEL's checkpoint (the shipped model: ``src/beadseg/models/weights/default.int8.onnx``,
which ``beadseg predict`` then runs on CPUs) only when the gate holds. Writes
``bench-out/cheaper/TAG/cheaper.json`` and prints the table.

``refresh`` is for a checkpoint whose metadata changed and whose weights did not (a new count
calibration): the int8 file records the checkpoint's SHA-256, so it must be made again. It
quantises the same way and installs the new file only when its network (graph, weights and
quantisation ranges: everything but the metadata) is identical to the installed one's, so the
gate's earlier result holds for it; otherwise it stops and asks for ``quantize``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_counting import DEFAULT_SPLIT, run_counting  # noqa: E402
from common import OUT, machine, subset  # noqa: E402

from beadseg.core.naming import source_frame  # noqa: E402
from beadseg.models.checkpoint import int8_path, onnx_path, resolve_model_path  # noqa: E402

TRUTH_SETS = ((0, "0.9,1.0"), (1, "0.9,1.0"), (2, "0.9,1.0"), (0, "0.75,0.9"))
MAX_F1_DROP = 0.005
MAX_COUNT_ERROR_RISE = 0.005


def beadseg(*args) -> str:
    cmd = [sys.executable, "-m", "beadseg", *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return r.stdout


def held_out_frames() -> set[str]:
    return set(json.loads(DEFAULT_SPLIT.read_text())["val_groups"])


def calibration_folder() -> Path:
    """Symlinks to the real tiles of the frames the benchmarks do not hold out."""
    held = held_out_frames()
    return subset(
        "calibration_train_frames", lambda s: not s.startswith("synthetic") and source_frame(s) not in held
    )


def holdout_folder() -> Path:
    held = held_out_frames()
    return subset("real_heldout_val", lambda s: not s.startswith("synthetic") and source_frame(s) in held)


def model_copy(model: str, folder: Path) -> Path:
    """MODEL's checkpoint and its float ONNX file copied into ``folder`` (best.pt, best.onnx)."""
    src = resolve_model_path(model)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, folder / "best.pt")
    if onnx_path(src).is_file():
        shutil.copy(onnx_path(src), folder / "best.onnx")
    else:
        beadseg("export", folder / "best.pt", "--format", "onnx")
    return folder / "best.pt"


def holdout_scores(model: str, tag: str, precision: str | None) -> dict:
    """Pooled centroid F1 and count errors of MODEL on the held-out frames' real tiles."""
    data = holdout_folder()
    pred, ev = OUT / "cheaper" / "holdout" / f"pred_{tag}", OUT / "cheaper" / "holdout" / f"eval_{tag}"
    for folder in (pred, ev):
        shutil.rmtree(folder, ignore_errors=True)
    beadseg(
        "predict", model, data, "--out", pred, "--quiet", *(["--precision", precision] if precision else [])
    )
    beadseg("evaluate", pred, data, "--out", ev)
    overall = json.loads((ev / "metrics.json").read_text())["overall"]
    return {
        "n_images": overall["n_images"],
        "f1": overall["centroid"]["f1"],
        "total_count_error": overall["counts"]["total_relative_error"],
        "median_abs_count_error": overall["counts"]["median_abs_error"],
    }


def scores(model: str, tag: str, precision: str | None) -> dict:
    """{set name: {level: summary}} of MODEL at ``precision`` over every truth set."""
    out = {}
    for seed, touch in TRUTH_SETS:
        r = run_counting(
            model, f"{tag}_{precision or 'own'}", seed, touch, n=3, precision=precision, family="none"
        )
        out[f"seed {seed}, touch {touch}"] = r["levels"]
        print(f"{tag} {precision}: seed {seed} touch {touch} done", flush=True)
    r = run_counting(model, f"{tag}_{precision or 'own'}", 0, n=5, precision=precision, family="heldout")
    out["held-out family, seed 0"] = r["levels"]  # sparse to monolayer
    out["real held-out tiles"] = {"all": holdout_scores(model, f"{tag}_{precision or 'own'}", precision)}
    return out


def compare(reference: dict, candidate: dict) -> tuple[list[dict], bool]:
    """Rows of the comparison and whether the gate holds on every one."""
    rows, ok = [], True
    for name, levels in reference.items():
        for level, ref in levels.items():
            cand = candidate[name][level]
            df1 = cand["f1"] - ref["f1"]
            derr = abs(cand["total_count_error"]) - abs(ref["total_count_error"])
            passed = df1 >= -MAX_F1_DROP - 1e-12 and derr <= MAX_COUNT_ERROR_RISE + 1e-12
            ok = ok and bool(passed)
            rows.append(
                {
                    "set": name,
                    "level": level,
                    "f1_reference": ref["f1"],
                    "f1_candidate": cand["f1"],
                    "count_error_reference": ref["total_count_error"],
                    "count_error_candidate": cand["total_count_error"],
                    "within_gate": bool(passed),
                }
            )
    return rows, ok


def markdown(rows: list[dict], ref_name: str, cand_name: str) -> str:
    lines = [
        f"| truth set | level | centroid F1 {ref_name} | {cand_name} | count error {ref_name} | "
        f"{cand_name} | within 0.5 points |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['level']} | {r['f1_reference']:.3f} | {r['f1_candidate']:.3f} | "
            f"{100 * r['count_error_reference']:+.1f} % | {100 * r['count_error_candidate']:+.1f} % | "
            f"{'yes' if r['within_gate'] else '**no**'} |"
        )
    return "\n".join(lines)


def quantize(model: str, install: bool) -> dict:
    tag = "default" if model == "default" else Path(model).stem
    folder = OUT / "cheaper" / tag / "model"
    ckpt = model_copy(model, folder)
    out = beadseg("export", ckpt, "--format", "int8", "--calibration", calibration_folder())
    print(out.strip(), flush=True)
    ref = scores(str(folder), tag, "float32")
    cand = scores(str(folder), tag, "int8")
    rows, ok = compare(ref, cand)
    res = {"machine": machine(), "model": model, "gate_holds": ok, "rows": rows, "float32": ref, "int8": cand}
    print(markdown(rows, "float32", "int8"))
    if install and ok:
        dest = int8_path(resolve_model_path(model))
        shutil.copy(int8_path(ckpt), dest)
        print(f"gate holds: installed {dest}")
    elif install:
        print("gate does not hold: nothing installed")
    return res


def network_bytes(path: Path) -> bytes:
    """An ONNX file's graph without its metadata (what the network computes)."""
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    return m.graph.SerializeToString()


def refresh(model: str) -> dict:
    """A new int8 file for MODEL's changed checkpoint, installed only if the network is the same."""
    src = resolve_model_path(model)
    installed = int8_path(src)
    if not installed.is_file():
        raise SystemExit(f"{installed} does not exist; run `quantize {model} --install` first")
    folder = OUT / "cheaper" / "refresh" / "model"
    if folder.exists():
        shutil.rmtree(folder)
    ckpt = model_copy(model, folder)
    made = beadseg("export", ckpt, "--format", "int8", "--calibration", calibration_folder())
    print(made.strip(), flush=True)
    if network_bytes(int8_path(ckpt)) != network_bytes(installed):
        raise SystemExit(f"the new int8 network differs from {installed}'s; run `quantize {model} --install`")
    shutil.copy(int8_path(ckpt), installed)
    print(f"the int8 network is identical to the installed one's; installed {installed} for {src}")
    return {"machine": machine(), "model": model, "gate_holds": True, "identical_network": True}


def score(candidate: str, reference: str) -> dict:
    tag = Path(candidate).stem if Path(candidate).suffix else Path(candidate).name
    ref = scores(reference, "reference", "float32")
    cand = scores(candidate, tag, None)
    rows, ok = compare(ref, cand)
    print(markdown(rows, "reference", tag))
    return {
        "machine": machine(),
        "reference": reference,
        "candidate": candidate,
        "gate_holds": ok,
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quantize", help="int8 file of MODEL, scored against MODEL at float32")
    q.add_argument("model", nargs="?", default="default")
    q.add_argument("--install", action="store_true", help="copy the int8 file beside MODEL if the gate holds")
    s = sub.add_parser("score", help="CANDIDATE (e.g. a student) against REFERENCE at float32")
    s.add_argument("candidate")
    s.add_argument("--reference", default="default")
    r = sub.add_parser("refresh", help="int8 file again after a metadata-only change (same network)")
    r.add_argument("model", nargs="?", default="default")
    a = ap.parse_args()
    if a.command == "refresh":
        res, tag = refresh(a.model), "refresh"
    elif a.command == "quantize":
        res = quantize(a.model, a.install)
        tag = "default" if a.model == "default" else Path(a.model).stem
    else:
        res = score(a.candidate, a.reference)
        tag = f"score_{Path(a.candidate).name}"
    path = OUT / "cheaper" / tag / "cheaper.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"gate {'holds' if res['gate_holds'] else 'does NOT hold'}; wrote {path}")


if __name__ == "__main__":
    main()
