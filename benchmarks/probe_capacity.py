"""What limits centroid F1 where beads pack (issue 27): more dense training data, or the network?

    python benchmarks/probe_capacity.py finetune   # the shipped weights, 16 more epochs (lr 1e-3)
                                                    # with 48 more train-family composites of
                                                    # the dense to monolayer levels (seed 302)
    python benchmarks/probe_capacity.py wider      # the v3 recipe at base 16 (4x the
                                                    # convolutions), 24 epochs from scratch
    python benchmarks/probe_capacity.py wider --epochs 40   # the same at the v3 recipe's own
                                                             # 40 epochs (probe_wider_e40)

Both train on the frames the counting benchmark does not hold out (as `train_default.py`), and
write bench-out/probe_<name>/<name>.pt (last epoch, with the shipped model's instance settings),
which the counting benchmark scores:

    python benchmarks/bench_counting.py bench-out/probe_finetune/finetune.pt --seed 0 --tag finetune

Neither model is shipped; the results and why are in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import train_default as td  # noqa: E402
from common import OUT, ROOT  # noqa: E402

from beadseg.core.config import load_config  # noqa: E402
from beadseg.core.naming import source_frame  # noqa: E402
from beadseg.models.onnx import export_onnx  # noqa: E402
from beadseg.training import train  # noqa: E402

SHIPPED = ROOT / "src" / "beadseg" / "models" / "weights" / "default.pt"


def settings(probe: str, paths: list[Path]) -> tuple[list[Path], list[str]]:
    """(training folders, config overrides) of a probe, on top of the v3 recipe."""
    if probe == "finetune":
        held = set(json.loads(td.SPLIT.read_text())["val_groups"])
        frames = sorted({source_frame(p.stem) for p in (paths[0] / "images").iterdir()} - held)
        extra = td.composites(
            OUT / "train_data" / "composites_ft_g",
            frames,
            "dense,clumped,packed,monolayer",
            12,
            302,
            "family:train",
            "comp_g",
        )
        return [*paths, extra], [f"train.init_weights={SHIPPED}", "train.epochs=16", "optim.lr=0.001"]
    return paths, ["model.base_channels=16", "train.epochs=24"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", choices=["finetune", "wider"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--epochs", type=int, default=None, help="train.epochs instead of the probe's")
    a = ap.parse_args()
    paths, val = td.training_folders(False)
    paths, extra = settings(a.probe, paths)
    name = a.probe + (f"_e{a.epochs}" if a.epochs else "")
    extra += [f"train.epochs={a.epochs}"] if a.epochs else []
    run = OUT / f"probe_{name}_run"
    if not (run / "result.json").exists():
        sets = [f"data.path=[{','.join(map(str, paths))}]", f"data.val_path=[{','.join(map(str, val))}]"]
        sets += extra + ([f"train.num_threads={a.threads}"] if a.threads else [])
        cfg = load_config(ROOT / "configs" / "default_model.yaml", sets)
        train(cfg, run, progress=False, log=lambda s: print(s, flush=True))
    kept = td.export_last(run, OUT / f"probe_{name}" / f"{name}.pt")
    export_onnx(kept, kept.with_suffix(".onnx"))
    print(kept)


if __name__ == "__main__":
    main()
