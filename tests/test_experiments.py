"""Cross-validation, job scripts and the training commands' config resolution."""

import json

import numpy as np
import pytest
import yaml
from helpers import tiny_train_config
from typer.testing import CliRunner

from beadseg.cli.app import app
from beadseg.core.errors import InputError
from beadseg.data.synth import synth_dataset
from beadseg.integrations.hpc import JobSpec, render_job
from beadseg.workflows.cross_validation import cross_validate


def test_cross_validate_trains_every_fold_and_summarises(tmp_path):
    data = tmp_path / "d"
    synth_dataset(data, n=4, size=64, seed=6, min_beads=10, max_beads=60)
    cfg = tiny_train_config(data, **{"train.epochs": 1})
    lines = []
    s = cross_validate(cfg, 2, tmp_path / "cv", log=lines.append)
    for k in (0, 1):
        split = json.loads((tmp_path / "cv" / f"fold_{k}" / "split.json").read_text())
        assert split["fold"] == k and split["folds"] == 2
        assert (tmp_path / "cv" / f"fold_{k}" / "evaluation").is_dir()
    val = [set(json.loads((tmp_path / "cv" / f"fold_{k}" / "split.json").read_text())["val"]) for k in (0, 1)]
    assert not val[0] & val[1] and len(val[0] | val[1]) == 4  # each image held out once
    saved = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert saved["finished"] == 2 and [r["fold"] for r in saved["per_fold"]] == [0, 1]
    for m, mean in saved["mean"].items():
        vals = [r[m] for r in saved["per_fold"]]
        assert mean == pytest.approx(np.mean(vals))
        assert saved["sd"][m] == pytest.approx(np.std(vals, ddof=1))
    assert s["markdown"].startswith("| metric | mean | SD |")

    lines.clear()  # finished folds are not trained again
    again = cross_validate(cfg, 2, tmp_path / "cv", log=lines.append)
    assert lines == ["fold 0: already done", "fold 1: already done"]
    assert again["mean"] == saved["mean"]


def test_cv_scores_each_domain_over_the_folds_that_held_it_out():
    from beadseg.workflows.cross_validation import _per_domain

    def scores(f1):
        return {"iou_pooled": 0.5, "iou_best_shift_mean": 0.6, "object_f1": f1, "centroid_f1": f1,
                "median_abs_count_error": 0.1, "total_count_error": 0.0}  # fmt: skip

    rows = [
        {"fold": 0, "per_domain": {"real": scores(0.9), "synthetic": scores(0.1)}},
        {"fold": 1, "per_domain": {"real": scores(0.5)}},  # held out real images only
        {"fold": 2, "per_domain": {"real": scores(0.7), "synthetic": scores(0.3)}},
    ]
    got = _per_domain(rows)
    assert got["real"]["folds"] == 3 and got["real"]["mean"]["centroid_f1"] == pytest.approx(0.7)
    assert got["synthetic"]["folds"] == 2 and got["synthetic"]["mean"]["object_f1"] == pytest.approx(0.2)
    assert got["real"]["sd"]["centroid_f1"] == pytest.approx(np.std([0.9, 0.5, 0.7], ddof=1))
    one = [{"fold": k, "per_domain": {"real": scores(0.8)}} for k in (0, 1)]
    assert _per_domain(one) == {}  # one domain: the overall scores are its own


def test_cross_validate_report_only_needs_a_finished_fold(tmp_path):
    with pytest.raises(InputError, match="no finished fold"):
        cross_validate(tiny_train_config(tmp_path), 3, tmp_path / "cv", report_only=True)


def test_render_job_leaves_the_spec_alone():
    spec = JobSpec(job="predict")
    script = render_job(spec)
    assert "--shard ${SLURM_ARRAY_TASK_ID:-0}/1" in script and "#SBATCH --array=0-0" in script
    assert spec == JobSpec(job="predict") and spec.array is None


def test_hpc_command_defaults_are_the_jobspec_defaults():
    runner = CliRunner()
    r = runner.invoke(app, ["hpc", "pbs"])
    assert r.exit_code == 0 and r.stdout == render_job(JobSpec(scheduler="pbs"))
    r = runner.invoke(app, ["hpc", "slurm", "--job", "sweep", "--trials", "7", "--array", "3"])
    assert r.stdout == render_job(JobSpec(job="sweep", trials=7, array=3))
    assert "--trials 7" in r.stdout


def test_train_flags_left_out_keep_the_config_file_values(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("train: {epochs: 7, device: cpu}\nmodel: {name: attention_unet}\n")
    runner = CliRunner()

    def printed(*args):
        r = runner.invoke(app, ["train", "--config", cfg_file, "--print-config", *map(str, args)])
        assert r.exit_code == 0, r.output
        return yaml.safe_load(r.stdout)

    c = printed()
    assert (c["train"]["epochs"], c["train"]["device"], c["model"]["name"]) == (7, "cpu", "attention_unet")
    assert c["optim"]["lr"] == 3e-3  # untouched keys keep the config model's defaults
    c = printed("--epochs", 3, "--set", "model.name=unet", "--set", "train.epochs=5")
    assert c["train"]["epochs"] == 3 and c["model"]["name"] == "unet"  # flags beat --set
    c = printed(tmp_path / "some data", "--folds", 3)
    assert c["data"]["path"] == str(tmp_path / "some data") and c["split"]["folds"] == 3
