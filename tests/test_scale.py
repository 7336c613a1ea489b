import csv
import subprocess
import sys

import pytest
from helpers import oracle_model

from beadseg.core.config import PredictConfig
from beadseg.core.errors import BeadsegError, ConfigError, InputError
from beadseg.core.images import write_image
from beadseg.data.synth import synth_dataset, synth_image
from beadseg.inference.merge import merge_runs


@pytest.fixture
def frames(tmp_path):
    d = tmp_path / "frames"
    for i in range(7):
        write_image(d / f"{160 * (i + 1)}x_f{i}.png", synth_image(96, 10 + 5 * i, seed=i).image)
    return d


@pytest.fixture
def oracle(monkeypatch):
    import beadseg.inference.runner as P

    monkeypatch.setattr(P, "load_model", lambda model, *args, **kw: oracle_model())
    return P


def _counts(path):
    return list(csv.DictReader(open(path)))


def test_shards_cover_every_frame_once_and_merge(frames, oracle, tmp_path):
    cfg = PredictConfig(mode="full")
    whole = oracle.predict_images("m", [frames], tmp_path / "whole", cfg, progress=False)
    seen = []
    for i in range(3):
        s = oracle.predict_images("m", [frames], tmp_path / f"shard{i}", cfg, progress=False, shard=(i, 3))
        seen += [r.image for r in s.counts]
    assert sorted(seen) == sorted(r.image for r in whole.counts)
    assert len(seen) == len(set(seen)) == 7
    merge_runs([tmp_path / f"shard{i}" for i in range(3)], tmp_path / "merged")
    assert _counts(tmp_path / "merged" / "counts.csv") == _counts(tmp_path / "whole" / "counts.csv")


def test_merge_refuses_other_settings_and_duplicates(frames, oracle, tmp_path):
    oracle.predict_images(
        "m", [frames], tmp_path / "a", PredictConfig(mode="full"), progress=False, shard=(0, 2)
    )
    oracle.predict_images(
        "m", [frames], tmp_path / "b", PredictConfig(mode="full"), progress=False, shard=(1, 2), threshold=0.7
    )
    with pytest.raises(InputError, match="other settings"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    with pytest.raises(InputError, match="more than one run"):
        merge_runs([tmp_path / "a", tmp_path / "a"], tmp_path / "m")


def test_killed_shard_resumes_without_redoing_frames(frames, oracle, tmp_path, monkeypatch):
    real = oracle.predict_file
    calls = []

    def dying(*a, **k):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the job is killed during the 4th frame
        calls.append(a[1].name)
        return real(*a, **k)

    monkeypatch.setattr(oracle, "predict_file", dying)
    with pytest.raises(KeyboardInterrupt):
        oracle.predict_images("m", [frames], tmp_path / "run", PredictConfig(mode="full"), progress=False)
    done = list(calls)
    calls.clear()
    monkeypatch.setattr(oracle, "predict_file", lambda *a, **k: (calls.append(a[1].name), real(*a, **k))[1])
    s = oracle.predict_images("m", [frames], tmp_path / "run", PredictConfig(mode="full"), progress=False)
    assert s.n_resumed == 3 and s.n_images == 7
    assert not set(calls) & set(done) and len(calls) == 4


def test_shard_argument():
    from beadseg.inference import parse_shard

    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "x", "1/0"):
        with pytest.raises(InputError):
            parse_shard(bad)


def _space(tmp_path, data, space="  optim.lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}\n"):
    p = tmp_path / "space.yaml"
    p.write_text(
        "base:\n"
        f"  data: {{path: {data}, crop_size: 48, crops_per_epoch: 64}}\n"  # trials that learn: an
        "  model: {base_channels: 4, depth: 2}\n"  # untrained model ends "collapsed", never the best
        "  train: {epochs: 2, batch_size: 4, num_threads: 1}\n"
        "  split: {val_fraction: 0.34}\n"
        "space:\n" + space
    )
    return p


def test_sweep_runs_resumes_and_writes_best_config(tmp_path):
    from beadseg.workflows.hyperparameter_search import sweep

    data = tmp_path / "d"
    synth_dataset(data, n=6, size=48, seed=0, min_beads=5, max_beads=40)
    space = _space(tmp_path, data)
    r = sweep(space, tmp_path / "sw", trials=3)
    assert r.n_trials == 3
    r = sweep(space, tmp_path / "sw", trials=5)
    assert r.n_trials == 5
    assert (tmp_path / "sw" / "best_config.yaml").is_file()
    rows = _counts(tmp_path / "sw" / "trials.csv")
    assert len(rows) == 5 and "param:optim.lr" in rows[0]
    from beadseg.core.config import load_config

    load_config(tmp_path / "sw" / "best_config.yaml")  # ready for `beadseg train`


@pytest.mark.parametrize(
    "space,match",
    [
        ("  optim.lrr: {type: float, low: 0.1, high: 1}\n", "unknown config key 'optim.lrr'"),
        ("  optim.lr: {type: float, low: 1, high: 1}\n", "low < high"),
        ("  model.name: {type: categorical, choices: []}\n", "no choices"),
    ],
)
def test_sweep_bad_space(tmp_path, space, match):
    from beadseg.workflows.hyperparameter_search import load_space

    with pytest.raises(ConfigError, match=match):
        load_space(_space(tmp_path, tmp_path, space))


def test_sweep_unreachable_storage(tmp_path):
    from beadseg.workflows.hyperparameter_search import sweep

    with pytest.raises(BeadsegError, match="cannot open the Optuna storage"):
        sweep(
            _space(tmp_path, tmp_path),
            tmp_path / "o",
            trials=1,
            storage="postgresql://nobody@127.0.0.1:1/none",
        )


@pytest.mark.parametrize(
    "args",
    [
        ["slurm"],
        ["pbs"],
        ["slurm", "--nodes", "2", "--gpus", "4"],
        ["pbs", "--nodes", "2", "--venv", "/opt/venv", "--module", "cuda/12"],
        ["slurm", "--job", "predict", "--array", "16"],
        ["pbs", "--job", "sweep", "--array", "4"],
    ],
)
def test_hpc_templates_pass_bash_n(tmp_path, args):
    r = subprocess.run([sys.executable, "-m", "beadseg", "hpc", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    script = tmp_path / "job.sh"
    script.write_text(r.stdout)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert ("#SBATCH" if args[0] == "slurm" else "#PBS") in r.stdout


def test_two_process_gloo_matches_single_process(tmp_path):
    data = tmp_path / "d"
    synth_dataset(data, n=6, size=64, seed=5, min_beads=10, max_beads=60)
    sets = [
        "data.crop_size=64",
        "data.crops_per_epoch=16",  # 4 steps an epoch: AdamW amplifies the all-reduce's
        "optim.lr=0.01",  # summation-order differences with every step (64 crops: 3e-4 on some data)
        "model.base_channels=4",
        "model.depth=2",
        "model.norm=group",
        "loss.name=bce",
        "train.batch_size=4",
        "train.num_threads=1",
        "split.val_fraction=0.34",
        "train.epochs=2",
        "augment.blur_prob=0",
    ]
    base = [sys.executable, "-m", "beadseg", "train", str(data), "--quiet"]
    base += sum((["--set", s] for s in sets), [])
    from beadseg.core.config import load_config
    from beadseg.training import train

    # the single-process reference runs in this process (a subprocess only adds start-up time)
    single = train(
        load_config(None, sets + [f"data.path={data}"]), tmp_path / "one", progress=False, log=lambda s: None
    )
    ddp = subprocess.run(
        base + ["--out", str(tmp_path / "two"), "--nproc", "2"], capture_output=True, text=True, timeout=600
    )
    # the same ending as the single process (a tiny run's status depends on the machine: 3 when
    # it collapsed); the ranks' own messages come first
    assert ddp.returncode == (3 if single["status"] == "collapsed" else 0), ddp.stderr[:3000]
    assert ddp.stdout.count("run folder") == 1  # only rank 0 reports
    a = _counts(tmp_path / "one" / "history.csv")
    b = _counts(tmp_path / "two" / "history.csv")
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b):
        # the losses, not the IoU: a model two epochs in has many pixels near the threshold,
        # and the all-reduce's summation order moves IoU by 0.05 on some CPUs
        for k in ("train_loss", "val_loss"):
            assert float(ra[k]) == pytest.approx(float(rb[k]), rel=1e-3, abs=1e-4), k
