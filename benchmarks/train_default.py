"""Reproduce the shipped default model: the recipe of configs/default_model.yaml on the real
tiles of the dev set, exact-truth family composites and the synthetic 80x tiles.

    python benchmarks/train_default.py [--install]    # --install copies it into the package
    python benchmarks/train_default.py --holdout      # the same recipe without the held-out
                                                      # frames of weights/default_split.json

Training data (all under bench-out/train_data/):
- the real tiles: all 8 source frames (``--holdout``: the training frames of the split only);
- one exact-truth set of the ``train`` family (`beadseg synth --from DATA --family train`:
  spacing 0.75-1.1 diameters, pairs, chains, clumps and lattice packs, bead size +-25 %,
  contrast, focus, gradients, noise, JPEG, smudges, beads cut by the border; sprites from every
  frame), sparse, medium, dense, clumped, packed and monolayer (2,000 beads per 512 px), 12
  tiles per level (seed 301), made ONLY from the frames the benchmark does not hold out - for
  both models, so the counting benchmark's ``heldout`` family (other frames, other ranges,
  another way of building groups) is never trained on;
- the 20 synthetic_80x tiles.
Validation: ``--holdout``: the real tiles of the held-out frames; the shipped model: 2
``train``-family composites per level (seed 401; in-domain, not held out).
Fixed epochs, so the model does not depend on the machine's load. The model kept is the LAST
epoch (the end of the cosine schedule), as for the model before (which counted touching beads
better at its last epoch than at its best-IoU epoch). Its fingerprint is measured on the
training images with the last weights, and it carries this version's instance settings with the
split by size of ``SPLIT_AREA_RATIO`` (chosen by `benchmarks/tune_split.py`).
Then `python benchmarks/calibrate_counts.py --install` measures its count interval
(weights/default_calibration.json) and `beadseg export` is rerun by it.

Writes bench-out/default_v3_export/ (default.pt and its record) and, with --holdout,
bench-out/default_v3_heldout_export/heldout.pt (the model the counting benchmark holds out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, OUT, ROOT, subset, synthetic_subset  # noqa: E402

from beadseg.core.config import Config, InstanceConfig, load_config  # noqa: E402
from beadseg.core.naming import source_frame  # noqa: E402
from beadseg.core.portable import strip_machine_paths  # noqa: E402
from beadseg.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, slim_checkpoint  # noqa: E402
from beadseg.models.onnx import export_onnx  # noqa: E402
from beadseg.training import train  # noqa: E402
from beadseg.training.data import prepare_data  # noqa: E402
from beadseg.training.validation import fingerprint_samples  # noqa: E402

SPLIT = ROOT / "src" / "beadseg" / "models" / "weights" / "default_split.json"
FAMILY_LEVELS = "sparse,medium,dense,clumped,packed,monolayer"
COMPOSITES = (  # (name, levels, per level, seed, touch or family): the v3 recipe
    ("f", FAMILY_LEVELS, 12, 301, "family:train"),
)
#: The split by size of the shipped model (core/size_split.py), chosen by
#: `python benchmarks/tune_split.py` on exact truth of its training frames (never the held-out
#: family): the smallest worst |count error| over the six levels.
SPLIT_AREA_RATIO = 2.15
COMPOSITES_V2 = (  # the v2 recipe (the model shipped before): the first generator
    ("a", "sparse,medium,dense,clumped,crowded", 4, 101, "0.9,1.0"),
    ("b", "medium,dense,clumped,crowded", 4, 102, "0.75,0.9"),
)


def heldout_frames() -> list[str]:
    """The source frames the counting benchmark holds out (weights/default_split.json)."""
    return list(json.loads(SPLIT.read_text())["val_groups"])


def composites(out: Path, frames: list[str], levels: str, n: int, seed: int, touch: str, prefix: str) -> Path:
    """An exact-truth set from the given frames of the dev set (made once); ``touch`` is a
    touching range ``LOW,HIGH`` of the first generator or ``family:NAME``."""
    if not (out / "provenance.json").exists():
        shape = ["--family", touch.split(":", 1)[1]] if touch.startswith("family:") else ["--touch", touch]
        cmd = [
            sys.executable,
            "-m",
            "beadseg",
            "synth",
            str(out),
            "--from",
            str(DATA),
            "--frames",
            ",".join(frames),
            "--levels",
            levels,
            "--n",
            str(n),
            "--seed",
            str(seed),
            "--prefix",
            prefix,
            *shape,
        ]
        subprocess.run(cmd, check=True)
    return out


def training_folders(holdout: bool) -> tuple[list[Path], list[Path]]:
    """(data.path folders, data.val_path folders) of the recipe."""
    split = json.loads(SPLIT.read_text())
    held = set(split["val_groups"]) if holdout else set()

    def real(stem: str) -> bool:
        return not stem.startswith("synthetic") and source_frame(stem) not in held

    tag = "heldout" if holdout else "all"
    real_dir = subset(f"real_{tag}", real)
    # composites only from the frames the benchmark does not hold out, for both models
    held_out = set(split["val_groups"])
    frames = sorted({source_frame(p.stem) for p in (real_dir / "images").iterdir()} - held_out)
    comps = [
        composites(OUT / "train_data" / f"composites_v3_{k}", frames, lv, n, seed, touch, f"comp_{k}")
        for k, lv, n, seed, touch in COMPOSITES
    ]
    if holdout:
        val = [subset("real_heldout_val", lambda s: not real(s) and not s.startswith("synthetic"))]
    else:
        val = [
            composites(
                OUT / "train_data" / "composites_v3_val", frames, FAMILY_LEVELS, 2, 401, "family:train", "val"
            )
        ]
    return [real_dir, *comps, synthetic_subset()], val


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--install", action="store_true", help="copy the result into the package")
    ap.add_argument("--holdout", action="store_true", help="leave the split's held-out frames out")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    paths, val = training_folders(args.holdout)
    run = OUT / ("default_v3_heldout_run" if args.holdout else "default_v3_run")
    if not (run / "result.json").exists():
        sets = [f"data.path=[{','.join(map(str, paths))}]", f"data.val_path=[{','.join(map(str, val))}]"]
        if args.threads:
            sets.append(f"train.num_threads={args.threads}")
        cfg = load_config(ROOT / "configs" / "default_model.yaml", sets)
        train(cfg, run, progress=False, log=lambda s: print(s, flush=True))
    dest = OUT / ("default_v3_heldout_export" if args.holdout else "default_v3_export")
    kept = export_last(run, dest / ("heldout.pt" if args.holdout else "default.pt"))
    export_onnx(kept, kept.with_suffix(".onnx"))  # predict runs this one, without torch
    if args.holdout:
        return
    for src, name in (
        ("history.csv", "default_history.csv"),
        ("split.json", "default_training_data.json"),
        ("config.yaml", "default_config.yaml"),
        ("result.json", "default_result.json"),
    ):  # shipped files name the data set's folders, not this machine's paths
        (dest / name).write_text(strip_machine_paths((run / src).read_text()))
    if args.install:
        for f in dest.iterdir():
            shutil.copy(f, ROOT / "src" / "beadseg" / "models" / "weights" / f.name)


def export_last(run: Path, out: Path) -> Path:
    """A slim checkpoint of the run's last epoch, with the fingerprint of those weights on the
    training images and the instance settings of this version."""
    import torch

    state = load_checkpoint(run / "last.pt")
    cfg = Config.model_validate(state["config"])
    inst = InstanceConfig(split_area_ratio=SPLIT_AREA_RATIO)
    data = prepare_data(cfg)
    model = model_from_checkpoint(state, run / "last.pt")
    fp = fingerprint_samples(
        model, data.train, inst, torch.device("cpu"), state["meta"].get("threshold", 0.5)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(out, slim_checkpoint(state, fingerprint=fp, instances=inst.model_dump()))


if __name__ == "__main__":
    main()
