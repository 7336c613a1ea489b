"""Test helpers: a hand-made 'oracle' bead detector and a tiny trained checkpoint."""

import torch.nn.functional as F
from torch import nn

from beadseg.config import InstanceConfig
from beadseg.inference import LoadedModel


class DarkBeadNet(nn.Module):
    """Logit = gain * (local background - pixel - offset): finds dark beads on synthetic images.

    Its answer is known without training, and so is its reach: a 15-px box for the background
    (and a 3-px blur), 7 px to each side. Like beadseg's networks it pads the input (reflect, at
    the bottom/right) to a multiple of ``2**depth`` and crops the output back, so tiled and
    whole-frame inference must agree on every pixel.
    """

    reach_px = 7

    def __init__(self, gain: float = 60.0, offset: float = 0.04, depth: int = 3):
        super().__init__()
        self.gain, self.offset, self.depth = gain, offset, depth
        self.bg = nn.AvgPool2d(15, stride=1, padding=7, count_include_pad=False)
        self.blur = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        grey = x.mean(1, keepdim=True)
        return (self.gain * (self.bg(grey) - self.blur(grey) - self.offset))[..., :h, :w]


def oracle_model(threshold=0.5, **inst) -> LoadedModel:
    return LoadedModel(
        DarkBeadNet(depth=3).eval(), 3, 3, threshold, InstanceConfig(**{"min_area_px": 6, **inst}), "oracle"
    )


def tiny_train_config(data, **over):
    from beadseg.config import load_config

    sets = {
        "data.path": str(data),
        "data.crop_size": 64,
        "data.crops_per_epoch": 64,  # with lr 0.01: enough to learn some beads in 1 epoch
        "optim.lr": 0.01,
        "model.base_channels": 4,
        "model.depth": 2,
        "train.epochs": 2,
        "train.batch_size": 4,
        "train.num_threads": 1,
        "split.val_fraction": 0.34,
    }
    sets.update(over)
    return load_config(None, [f"{k}={v}" for k, v in sets.items()])


def run_cli(*args):
    """``beadseg ARGS`` in this process (no interpreter start-up): a ``CompletedProcess`` with
    the exit code and what it printed. Tests of the entry point itself use a subprocess."""
    import contextlib
    import io
    import subprocess

    from beadseg.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(["beadseg", *map(str, args)], code, out.getvalue(), err.getvalue())
