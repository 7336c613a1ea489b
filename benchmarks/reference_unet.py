"""The yardstick of the predict benchmark: a plain U-Net (base 16, depth 4, random weights,
BatchNorm in eval mode) forward over a whole frame with torch, at a given number of threads.

    python benchmarks/reference_unet.py FRAME.png [--threads N] [--json OUT.json]

Prints (and with ``--json`` writes) the seconds of the forward call alone - not the
interpreter's start, torch's import or the frame's decoding - and the threads torch used.
``bench_predict.py`` runs it as its own process, alternating with ``beadseg predict``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from beadseg.models import create_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frame", type=Path)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    x = np.asarray(Image.open(a.frame).convert("RGB"), np.float32) / 255
    torch.manual_seed(0)
    net = create_model("unet", base_channels=16, depth=4).eval()
    batch = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        t = time.perf_counter()
        net(batch)
        seconds = time.perf_counter() - t
    res = {"forward_s": seconds, "threads": torch.get_num_threads(), "frame": list(x.shape[:2])}
    if a.json:
        a.json.write_text(json.dumps(res) + "\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
