"""Give a checkpoint trained before fingerprints existed its training-data fingerprint.

Runs the model on the tiles it was trained on (the ``train`` names of a split JSON, from DATA),
summarises the features of :mod:`beadseg.core.domain` and writes a copy of the checkpoint whose
meta holds them; the weights are untouched. Used once for the model shipped before the centre
head (runs trained since get their fingerprint at the end of training).

    python benchmarks/add_fingerprint.py MODEL SPLIT_JSON OUT.pt [--data DATA]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA  # noqa: E402

from beadseg.core.config import InstanceConfig  # noqa: E402
from beadseg.core.files import find_pairs  # noqa: E402
from beadseg.core.normalization import LEGACY  # noqa: E402
from beadseg.data.dataset import load_samples  # noqa: E402
from beadseg.models.checkpoint import (  # noqa: E402
    load_checkpoint,
    model_from_checkpoint,
    resolve_model_path,
    save_checkpoint,
    slim_checkpoint,
)
from beadseg.training.validation import fingerprint_samples  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("split", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=DATA)
    a = ap.parse_args()
    path = resolve_model_path(a.model)
    state = load_checkpoint(path)
    meta = state["meta"]
    names = set(json.loads(a.split.read_text())["train"])
    pairs = [p for p in find_pairs(a.data) if p.name in names]
    samples = load_samples(pairs, meta["in_channels"], None, meta.get("normalization", LEGACY))
    inst = InstanceConfig(**meta.get("instances", {}))
    fp = fingerprint_samples(
        model_from_checkpoint(state, path), samples, inst, torch.device("cpu"), meta.get("threshold", 0.5)
    )
    save_checkpoint(a.out, slim_checkpoint(state, fingerprint=fp))
    print(f"{a.out}: fingerprint of {fp['n_images']} training tiles")


if __name__ == "__main__":
    main()
