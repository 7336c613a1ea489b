import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import dense_data, tiny_train_config

from beadseg.core.config import load_config
from beadseg.core.errors import ConfigError
from beadseg.data.synth import synth_dataset
from beadseg.models.checkpoint import load_checkpoint
from beadseg.training import train


def _quiet(*a, **k):
    pass


def test_short_run_learns_and_writes_artefacts(tmp_path):
    data = tmp_path / "d"
    synth_dataset(data, n=8, size=96, seed=3, min_beads=20, max_beads=120)
    cfg = tiny_train_config(
        data,
        **{
            "train.epochs": 8,
            "data.crops_per_epoch": 48,
            "model.base_channels": 8,
            "optim.lr": 0.01,
            "data.crop_size": 96,
            "train.early_stop_patience": 20,
            # the first epochs predict no foreground (warm-up); the collapse guard, which would
            # stop such a run at epoch 3 on some machines, watches only the last epoch here:
            # then the best val IoU is 0.83-0.86 on every CPU kernel set tried
            "train.collapse_min_epoch": 7,
        },
    )
    res = train(cfg, tmp_path / "run", progress=False, log=_quiet)
    run = tmp_path / "run"
    for f in (
        "config.yaml",
        "split.json",
        "history.csv",
        "curves.png",
        "best.pt",
        "last.pt",
        "result.json",
        "provenance.json",
    ):
        assert (run / f).is_file(), f
    hist = list(csv.DictReader(open(run / "history.csv")))
    ious = [float(h["val_iou"]) for h in hist]
    assert max(ious[-3:]) > ious[0] + 0.2  # validation IoU rises
    assert res["status"] == "ok"
    state = load_checkpoint(run / "best.pt")  # weights_only=True
    assert state["meta"]["model"]["name"] == "unet"
    split = json.loads((run / "split.json").read_text())
    assert not set(split["train_groups"]) & set(split["val_groups"])


def _run_cli(args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "beadseg", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_resume_after_sigkill_is_exact(tmp_path):
    data = dense_data(tmp_path / "d", seed=1)  # the reference run is "ok" on every machine
    sets = [
        "data.crop_size=64",
        "data.crops_per_epoch=64",
        "model.base_channels=4",
        "model.depth=2",
        "train.batch_size=4",
        "train.num_threads=1",
        "split.val_fraction=0.34",
        "train.early_stop_patience=50",
    ]
    args = ["train", data, "--epochs", 6, "--quiet"] + sum((["--set", s] for s in sets), [])
    # the uninterrupted reference runs in this process (a subprocess only adds start-up time)
    cfg = load_config(None, sets + [f"data.path={data}", "train.epochs=6"])
    assert train(cfg, tmp_path / "ref", progress=False, log=_quiet)["status"] == "ok"

    # the run pauses after step 2 of epoch 3 (training's BEADSEG_PAUSE_AT hook) and is killed
    # there: 2 epochs in history.csv and last.pt, a third one half done, on any machine
    paused = tmp_path / "paused"
    env = {**os.environ, "BEADSEG_PAUSE_AT": f"3:2:{paused}"}
    proc = _run_cli(args + ["--out", tmp_path / "killed"], env=env)
    deadline = time.monotonic() + 600  # only a hung run gets here
    while not paused.exists():
        assert proc.poll() is None, f"the run ended before epoch 3: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the run did not reach epoch 3"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    hist = tmp_path / "killed" / "history.csv"
    assert len(hist.read_text().splitlines()) - 1 == 2
    res = _run_cli(["train", "--resume", tmp_path / "killed", "--quiet"])
    res.wait(timeout=300)
    assert res.returncode == 0, res.stderr.read()
    a = list(csv.DictReader(open(tmp_path / "ref" / "history.csv")))
    b = list(csv.DictReader(open(hist)))
    assert len(a) == len(b) == 6
    for ra, rb in zip(a, b):
        for k in ("train_loss", "val_loss", "val_iou", "val_iou_pooled"):
            assert float(ra[k]) == pytest.approx(float(rb[k]), abs=1e-6), (ra["epoch"], k)


def test_a_malformed_pause_hook_is_refused_in_one_line(monkeypatch, tmp_path):
    from beadseg.core.config import TrainConfig
    from beadseg.training.callbacks import default_callbacks

    monkeypatch.setenv("BEADSEG_PAUSE_AT", "epoch three")
    with pytest.raises(ConfigError, match=r"BEADSEG_PAUSE_AT='epoch three' is not EPOCH:STEP:FILE"):
        default_callbacks(TrainConfig(), tmp_path)


def test_absurd_lr_collapses_with_reason(tmp_path):
    data = tmp_path / "d"
    synth_dataset(data, n=6, size=64, seed=2, min_beads=10, max_beads=60)
    cfg = tiny_train_config(
        data,
        **{
            "optim.lr": 1e4,
            "train.grad_clip": "null",
            "train.epochs": 6,
            "train.collapse_min_epoch": 0,
            "train.collapse_patience": 1,
        },
    )
    res = train(cfg, tmp_path / "run", progress=False, log=_quiet)
    assert res["status"] == "collapsed"
    assert "epoch" in res["reason"] and res["reason"]
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["status"] == "collapsed"


def test_a_model_that_predicts_nothing_is_never_ok(tmp_path):
    """2 epochs end before the collapse guard may stop the run; the kept model predicts no
    foreground (while its validation loss falls), so the run is marked collapsed, with the
    reason."""
    data = tmp_path / "d"
    synth_dataset(data, n=6, size=64, seed=2, min_beads=10, max_beads=60)
    over = {
        "loss.name": "bce",
        "loss.pos_weight": 1e-4,
        "optim.lr": 0.05,
        "data.crops_per_epoch": 48,
        "train.monitor": "val_loss",
    }
    cfg = tiny_train_config(data, **over)
    res = train(cfg, tmp_path / "run", progress=False, log=_quiet)
    hist = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert len(hist) == 2
    assert all(float(h["val_pred_fg"]) < 0.1 * float(h["val_true_fg"]) for h in hist)
    assert res["status"] == "collapsed"
    assert "kept model" in res["reason"] and "all background" in res["reason"]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["status"] == "collapsed"


def test_collapse_guard_fires_within_four_epochs_by_default(tmp_path):
    data = tmp_path / "d"
    synth_dataset(data, n=6, size=64, seed=2, min_beads=10, max_beads=60)
    cfg = tiny_train_config(data, **{"optim.lr": 1e3, "train.epochs": 4})
    assert (cfg.train.collapse_min_epoch, cfg.train.collapse_patience) == (1, 2)
    res = train(cfg, tmp_path / "run", progress=False, log=_quiet)
    assert res["status"] == "collapsed"
    assert res["epochs_run"] <= 3


@pytest.mark.parametrize(
    "override,match",
    [
        (["model.nmae=unet"], "unknown key 'model.nmae'; did you mean 'model.name'"),
        # a near miss of another tool's name, a key of another section, a key shared by two
        (["learnig_rate=0.1"], "unknown key 'learnig_rate'; did you mean 'optim.lr'?"),
        (["predict.treshold=0.4"], "unknown key 'predict.treshold'; did you mean 'train.threshold'?"),
        (["device=cpu"], "did you mean 'train.device' or 'predict.device'?"),
        (["trian={epochs: 3}"], "unknown key 'trian'; did you mean the section 'train'?"),
        (["optim.lr=-1"], "optim.lr = -1"),
        (["train.epochs=many"], "train.epochs = 'many'"),
        (["train.device=gpu7"], "train.device"),
    ],
)
def test_bad_config_one_line(override, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, override)


def test_crop_larger_than_images(tmp_path):
    data = tmp_path / "d"
    synth_dataset(data, n=4, size=48, seed=1)
    with pytest.raises(ConfigError, match="data.crop_size = 64"):
        train(tiny_train_config(data), tmp_path / "run", progress=False, log=_quiet)


def test_group_split_needs_two_frames(tmp_path):
    from beadseg.data.synth import synth_tiled_frame

    data = tmp_path / "d"
    synth_tiled_frame(data, "640x_only", rows=2, cols=2, tile=96, overlap_px=20)
    with pytest.raises(ConfigError, match="at least 2 source frames; found 1 \\(640x_only\\)"):
        train(tiny_train_config(data), tmp_path / "run", progress=False, log=_quiet)


def test_unknown_key_from_yaml_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  epohcs: 3\n")
    with pytest.raises(ConfigError, match=f"{p}: unknown key 'train.epohcs'; did you mean 'train.epochs'"):
        load_config(p)
