"""Test helpers: a hand-made 'oracle' bead detector and a tiny trained checkpoint."""

import torch.nn.functional as F
from torch import nn

from beadseg.core.config import InstanceConfig
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
    from beadseg.core.config import load_config

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

    from beadseg.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(["beadseg", *map(str, args)], code, out.getvalue(), err.getvalue())


# A tiny training run's trajectory depends on the machine: the CPU's kernels and the number of
# threads change the order of float sums, and a few steps of a 4-channel network amplify that
# (a run that stops early on one machine collapses on another). A test asserts a training
# outcome only where the outcome is certain on every machine:
#
# - FROZEN: a learning rate far below float32 resolution and no batch norm (whose running
#   statistics move without a learning rate), so the weights never change: every epoch scores
#   exactly as the first, no epoch improves, and early stopping fires at patience + 1;
# - dense_data: tiles that are about a third beads, so the untrained network (which marks
#   every pixel) predicts ~3x the true foreground, inside the 0.1x-10x band of a healthy run:
#   the kept model is never "collapsed".
FROZEN = {"model.norm": "none", "optim.lr": 1e-30, "schedule.warmup_epochs": 0}


def dense_data(out, n=6, size=64, seed=2):
    """Synthetic tiles with ~35 % bead pixels (see FROZEN)."""
    from beadseg.data.synth import synth_dataset

    synth_dataset(out, n=n, size=size, seed=seed, min_beads=2500, max_beads=3000)
    return out


def assert_refused(result, *words, out=None):
    """A :func:`run_cli` result of bad input: exit code 2, one line on stderr starting with
    "error: " and holding each of ``words``, no traceback; ``out`` (an --out folder that did
    not exist) still absent."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    assert out is None or not out.exists(), f"{out} was written"
