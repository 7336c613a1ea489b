"""The training loop's parts: EMA, stopping rules, schedules, batching, odd sizes, workers."""

import csv
import json
import math
import shutil

import numpy as np
import pytest
import torch
from helpers import FROZEN, dense_data, tiny_train_config

from beadseg.core.config import ScheduleConfig, load_config
from beadseg.core.errors import ConfigError
from beadseg.data.synth import synth_dataset
from beadseg.models import build_model
from beadseg.models.checkpoint import load_checkpoint, save_checkpoint
from beadseg.models.losses import build_loss
from beadseg.training import train
from beadseg.training.data import crop_loader, prepare_data
from beadseg.training.schedules import SCHEDULES, build_scheduler, lr_factor
from beadseg.training.validation import validate


def _quiet(*a, **k):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # dense tiles: a kept model between "marks everything" and "learned" is never collapsed
    return dense_data(tmp_path_factory.mktemp("train") / "d")


def _history(run):
    return list(csv.DictReader(open(run / "history.csv")))


class _Interrupt(Exception):
    pass


def _interrupt_after(n):
    def hook(epoch, row):
        if epoch == n:
            raise _Interrupt  # like a job killed between epochs

    return hook


@pytest.fixture(scope="module")
def ema_runs(data, tmp_path_factory):
    """An EMA run of 3 epochs, and the same run stopped after its first epoch (a warm-up of 2
    epochs, so the first step after the cut has a learning rate of its own)."""
    root = tmp_path_factory.mktemp("ema")
    cfg = tiny_train_config(data, **{"train.ema_decay": 0.8, "train.epochs": 3, "schedule.warmup_epochs": 2})
    train(cfg, root / "full", progress=False, log=_quiet)
    with pytest.raises(_Interrupt):
        train(cfg, root / "cut", progress=False, log=_quiet, on_epoch=_interrupt_after(1))
    return cfg, root / "full", root / "cut"


def test_ema_weights_are_evaluated_and_survive_resume(ema_runs, tmp_path):
    cfg, full, cut = ema_runs
    last = load_checkpoint(full / "last.pt")
    ema, raw = last["ema_state"], last["model_state"]
    assert any(not torch.equal(ema[k], raw[k]) for k in raw if raw[k].is_floating_point())

    # the validation scores in history.csv are those of the averaged weights
    val = prepare_data(cfg).val
    scores = {}
    for name, weights in (("ema", ema), ("raw", raw)):
        model = build_model(cfg.model, cfg.data.channels)
        model.load_state_dict(weights)
        scores[name] = validate(model, val, build_loss(cfg.loss), torch.device("cpu"), 0.5).val_loss
    logged = float(_history(full)[-1]["val_loss"])
    assert scores["ema"] == pytest.approx(logged, abs=1e-6)
    assert abs(scores["raw"] - logged) > 1e-5

    # resumed after its first epoch: the average continues where it stopped
    shutil.copytree(cut, tmp_path / "cut")
    train(cfg, resume=tmp_path / "cut", progress=False, log=_quiet)
    resumed = load_checkpoint(tmp_path / "cut" / "last.pt")
    for k in ema:
        torch.testing.assert_close(resumed["ema_state"][k], ema[k], rtol=0, atol=1e-6)
    for a, b in zip(_history(full), _history(tmp_path / "cut"), strict=True):
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), abs=1e-6)


def test_resume_of_a_checkpoint_without_scheduler_state(ema_runs, tmp_path):
    """last.pt files written before the scheduler and EMA count were saved still resume exactly."""
    cfg, full, cut = ema_runs
    shutil.copytree(cut, tmp_path / "old")
    ckpt = load_checkpoint(tmp_path / "old" / "last.pt")
    del ckpt["scheduler_state"], ckpt["ema_updates"]
    for group in ckpt["optimizer_state"]["param_groups"]:  # they held the last step's rate
        group["lr"] = ckpt["history"][-1]["lr"]
        group.pop("initial_lr")
    save_checkpoint(tmp_path / "old" / "last.pt", ckpt)
    train(cfg, resume=tmp_path / "old", progress=False, log=_quiet)
    for a, b in zip(_history(full), _history(tmp_path / "old"), strict=True):
        for k in ("lr", "train_loss", "val_loss"):
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-9, abs=1e-7), (a["epoch"], k)


def test_early_stopping_fires(tmp_path):
    # a network that cannot change (helpers.FROZEN) on dense tiles: val_iou never improves after
    # epoch 1, and the kept model is not collapsed, on every machine
    data = dense_data(tmp_path / "dense")
    cfg = tiny_train_config(data, **{**FROZEN, "train.epochs": 6, "train.early_stop_patience": 2})
    res = train(cfg, tmp_path / "run", progress=False, log=_quiet)
    assert res["status"] == "early-stopped"
    assert res["epochs_run"] == 3 < 6 and res["best_epoch"] == 1
    assert "did not improve for 2 epochs" in res["reason"]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["status"] == "early-stopped"


def test_time_limit_stops_after_the_epoch(data, tmp_path):
    cfg = tiny_train_config(data, **{**FROZEN, "train.max_minutes": 1e-6, "train.epochs": 5})
    res = train(cfg, tmp_path / "run", progress=False, log=_quiet)
    assert res["status"] == "time-limit" and res["epochs_run"] == 1
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "time-limit"
    assert (tmp_path / "run" / "best.pt").is_file()


def test_odd_sized_inputs_train_and_validate(tmp_path):
    """Sides that are not a multiple of 2**depth: crops of 66 px, whole 70-px validation tiles."""
    data = tmp_path / "d"
    synth_dataset(data, n=6, size=70, seed=4, min_beads=10, max_beads=60)
    cfg = tiny_train_config(data, **{"data.crop_size": 66, "model.depth": 3, "train.epochs": 1})
    res = train(cfg, tmp_path / "run", progress=False, log=_quiet)
    assert res["epochs_run"] == 1  # whatever it learned (its status depends on the machine)
    row = _history(tmp_path / "run")[0]
    assert math.isfinite(float(row["val_loss"])) and 0 <= float(row["val_iou"]) <= 1


def test_worker_processes_draw_the_same_crops(data, tmp_path):
    runs = {}
    for workers in (0, 2):
        cfg = tiny_train_config(data, **{"train.num_workers": workers, "train.epochs": 2})
        train(cfg, tmp_path / f"w{workers}", progress=False, log=_quiet)
        runs[workers] = _history(tmp_path / f"w{workers}")
    for a, b in zip(runs[0], runs[2], strict=True):
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]


# ----------------------------------------------------------------------------- schedules

# (schedule, warm-up steps) for a run of 10 epochs x 10 steps with schedule.warmup_epochs = 1
WARMUP = {"cosine": 10, "cosine_long_warmup": 30, "constant": 10}
END = {"cosine": 0.1, "cosine_long_warmup": 0.1, "constant": 1.0}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_warmup_peak_and_end(name):
    cfg = ScheduleConfig(name=name, warmup_epochs=1, min_lr_ratio=0.1)
    warm = WARMUP[name]
    f = [lr_factor(cfg, s, 10, 10) for s in range(101)]
    assert f[0] == pytest.approx(1 / warm)  # warm-up starts low
    assert f[warm - 1] == pytest.approx(1.0) and max(f) == pytest.approx(1.0)  # peak ends warm-up
    assert np.all(np.diff(f[:warm]) > 0)  # rising during warm-up
    assert np.all(np.diff(f[warm - 1 :]) <= 1e-12)  # never rising afterwards
    assert f[100] == pytest.approx(END[name]) and f[99] == pytest.approx(END[name], abs=1e-3)

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = build_scheduler(opt, cfg, 10, 10)
    for step in range(40):
        assert opt.param_groups[0]["lr"] == pytest.approx(2.0 * f[step])
        opt.step()
        sched.step()
    # a scheduler restored from its state_dict continues the schedule
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    opt2.load_state_dict(opt.state_dict())
    sched2 = build_scheduler(opt2, cfg, 10, 10)
    sched2.load_state_dict(sched.state_dict())
    opt2.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(2.0 * f[41])


def test_onecycle_configs_still_load():
    cfg = load_config(None, ["schedule.name=onecycle"])
    assert cfg.schedule.name == "cosine_long_warmup"


# ----------------------------------------------------------------------------- batching


class _Indices(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def test_every_rank_gets_a_batch_when_crops_do_not_divide():
    """513 crops, global batch 8, 2 processes: the last global batch holds one crop, yet each
    process must take a (non-empty) part in every step's gradient all-reduce."""
    single = [b.tolist() for b in crop_loader(_Indices(513), 8)]
    ranks = [[b.tolist() for b in crop_loader(_Indices(513), 8, rank=r, world_size=2)] for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 65
    assert all(len(b) == 4 for r in ranks for b in r[:-1])
    assert all(len(r[-1]) >= 1 for r in ranks)
    # together the processes see the single process's batches (the last one padded)
    for k in range(64):
        assert sorted(ranks[0][k] + ranks[1][k]) == single[k]
    assert {i for r in ranks for b in r for i in b} == set(range(513))


def test_batch_must_divide_among_processes():
    with pytest.raises(ConfigError, match="train.batch_size = 6 must be a multiple of the 4"):
        crop_loader(_Indices(16), 6, rank=0, world_size=4)


# ----------------------------------------------------------------------------- process group


@pytest.fixture
def fake_group(monkeypatch):
    """torch.distributed replaced by a recorder, as if launched by torchrun with 2 processes."""
    import torch.distributed as dist

    calls = []
    state = {"up": False}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(dist, "is_initialized", lambda: state["up"])
    monkeypatch.setattr(
        dist, "init_process_group", lambda backend: (calls.append(backend), state.update(up=True))
    )
    monkeypatch.setattr(dist, "get_rank", lambda: 0)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(
        dist, "destroy_process_group", lambda: (calls.append("destroy"), state.update(up=False))
    )
    return calls


def test_process_group_is_left_after_a_barrier(fake_group):
    from beadseg.models.devices import distributed

    with distributed("cpu") as d:
        assert (d.rank, d.world_size, d.device.type, d.active) == (0, 2, "cpu", True)
    assert fake_group == ["gloo", "barrier", "destroy"]


def test_a_failing_rank_does_not_wait_at_the_barrier(fake_group):
    """The other ranks are inside a collective: a barrier here would hang them all."""
    from beadseg.models.devices import distributed

    with pytest.raises(OSError), distributed("cpu"):
        raise OSError("disk full")
    assert fake_group == ["gloo"]


def test_training_grades_labels_with_the_analyze_settings_of_its_config(tmp_path):
    """A mask with 70 % of its beads unlabelled is unusable by default (`beadseg analyze`
    says so, and training leaves it out); with a looser analyze.unusable_unlabelled_fraction
    in the training config it is kept, as `beadseg analyze` with that setting would keep it."""
    from beadseg.core.images import write_image
    from beadseg.core.masks import write_mask
    from beadseg.data.synth import synth_image

    names = ["320x_a_grid_r0_c0", "320x_a_grid_r0_c1", "640x_b_grid_r0_c0", "640x_b_grid_r0_c1"]
    for i, name in enumerate(names):
        s = synth_image(128, 40, seed=20 + i, cluster_fraction=0.0, min_gap_px=2)
        labels = s.labels
        if i == 0:  # the annotator labelled only 30 % of the beads
            labels = np.where(labels % 10 < 3, labels, 0)
        write_image(tmp_path / "d" / "images" / f"{name}.png", s.image)
        write_mask(tmp_path / "d" / "masks" / f"{name}.png", labels > 0)
    strict = prepare_data(tiny_train_config(tmp_path / "d"))
    assert list(strict.labels.left_out) == [names[0]]
    assert "most beads unlabelled" in strict.labels.left_out[names[0]][0]
    loose = prepare_data(tiny_train_config(tmp_path / "d", **{"analyze.unusable_unlabelled_fraction": 0.95}))
    assert not loose.labels.left_out
    assert names[0] in {s.name for s in loose.train + loose.val}
