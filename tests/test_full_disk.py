"""A full disk ends a command with one line that says which file and what to do, never a
traceback; the pixel limit of image files can be raised for one command."""

import errno
import os
import shutil

import pytest
from helpers import FROZEN, dense_data, run_cli

from beadseg.core.images import write_image
from beadseg.data.synth import synth_dataset, synth_image

TINY_TRAIN = ["--epochs", "1", "--quiet"] + sum(
    (["--set", f"{k}={v}"] for k, v in {**FROZEN, "data.crop_size": 64, "data.crops_per_epoch": 8,
                                         "model.base_channels": 4, "model.depth": 2,
                                         "train.batch_size": 4, "split.val_fraction": 0.34}.items()),
    [],
)  # fmt: skip


def _one_line(r, *needles):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_train_on_a_full_disk_says_so_in_one_line(tmp_path, monkeypatch):
    import torch

    data = dense_data(tmp_path / "d")

    def full(obj, f, *a, **k):  # what torch's writer raises when the disk is full
        raise RuntimeError(
            "[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file"
        )

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=0))
    r = run_cli("train", data, "--out", tmp_path / "run", *TINY_TRAIN)
    _one_line(r, "cannot write", ".pt", "No space left on device", "free some space")


def test_analyze_on_a_full_disk_says_so_in_one_line(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    synth_dataset(tmp_path / "d", n=3, size=64, seed=1)

    def full(self, fname, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(fname))

    monkeypatch.setattr(Figure, "savefig", full)
    r = run_cli("analyze", tmp_path / "d", "--out", tmp_path / "an", "-q")
    _one_line(r, "cannot write", "No space left on device", "free some space")


def test_the_pixel_limit_can_be_raised_for_one_command(tmp_path):
    os.environ.pop("BEADSEG_MAX_IMAGE_PIXELS", None)
    write_image(tmp_path / "in" / "f.png", synth_image(64, 5, seed=0).image)
    r = run_cli(
        "--max-image-pixels", 1000, "predict", "default", tmp_path / "in", "--out", tmp_path / "o", "-q"
    )
    assert r.returncode == 2 and "4,096 pixels" in r.stderr and "--max-image-pixels 4096" in r.stderr
    os.environ.pop("BEADSEG_MAX_IMAGE_PIXELS", None)
    r = run_cli(
        "--max-image-pixels", "5000", "predict", "default", tmp_path / "in", "--out", tmp_path / "o2", "-q"
    )
    assert r.returncode == 0, r.stderr
    os.environ.pop("BEADSEG_MAX_IMAGE_PIXELS", None)
    r = run_cli("--max-image-pixels", "lots", "predict", "default", tmp_path / "in", "--out", tmp_path / "o3")
    _one_line(r, "'lots' is not a pixel count")


@pytest.fixture(autouse=True)
def _restore_limit():
    # the CLI sets the limit for its process; run in this process, it must not outlive the test
    yield
    os.environ.pop("BEADSEG_MAX_IMAGE_PIXELS", None)
