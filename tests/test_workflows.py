"""The library owns output folders: every workflow function (what `beadseg` and a notebook call)
holds its folder by one rule, so the Python API refuses exactly where the command line refuses,
never touches a finished run, keeps what the user put in a folder, and never reports a count of
a file that has changed since."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import FROZEN, dense_data, oracle_model, run_cli, tiny_train_config

import beadseg
from beadseg import workflows
from beadseg.core.config import PredictConfig
from beadseg.core.errors import BeadsegError, ConfigError, InputError
from beadseg.core.images import write_image
from beadseg.data.synth import synth_image
from beadseg.outputs.folder import MANIFEST


def snapshot(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    data = dense_data(root / "data")
    cfg = tiny_train_config(data, **{**FROZEN, "train.epochs": 1})
    res = workflows.train(cfg, root / "run")
    assert res.status == "ok" and (root / "run" / "best.pt").is_file()
    return cfg, root / "run"


def test_train_over_a_finished_run_is_refused_and_touches_nothing(finished_run, tmp_path):
    cfg, original = finished_run
    run = shutil.copytree(original, tmp_path / "run")
    before = snapshot(run)
    with pytest.raises(BeadsegError) as exc:
        beadseg.train(cfg, run)  # the README's call, into a folder that holds this very run
    assert "resume=" in str(exc.value) and "overwrite" in str(exc.value)
    other = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"weight_decay": 0.5})})
    with pytest.raises(BeadsegError, match=r"optim.weight_decay 0.0001 -> 0.5.*overwrite"):
        beadseg.train(other, run)
    assert snapshot(run) == before


def test_the_api_refuses_exactly_where_the_cli_refuses(finished_run, tmp_path):
    _, original = finished_run
    run = shutil.copytree(original, tmp_path / "run")
    before = snapshot(run)
    with pytest.raises(BeadsegError) as api:
        workflows.analyze(run, run)  # a training run's folder as the doctor's output
    cli = run_cli("analyze", run, "--out", run)
    assert cli.returncode == 2 and cli.stderr.strip() == f"error: {api.value}"
    assert snapshot(run) == before


def test_resume_refuses_an_edited_config_and_finds_moved_data(finished_run, tmp_path):
    cfg, original = finished_run
    run = shutil.copytree(original, tmp_path / "run")
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("weight_decay: 0.0001", "weight_decay: 0.2"))
    with pytest.raises(ConfigError, match=r"was edited.*optim.weight_decay 0.0001 -> 0.2"):
        workflows.train(resume=run)
    (run / "config.yaml").write_text(text)
    moved = shutil.move(str(cfg.data.path), str(tmp_path / "moved"))
    try:
        with pytest.raises(InputError, match="data of .* is gone .* give its new place"):
            workflows.train(resume=run)
        res = workflows.train(resume=run, data=moved)  # finished already: nothing to do
        assert res.status == "ok"
    finally:
        shutil.move(moved, cfg.data.path)


def _frames(folder: Path, n: int = 2) -> Path:
    for i in range(n):
        write_image(folder / f"f{i}.png", synth_image(64, 6 + 4 * i, seed=i, cluster_fraction=0.0).image)
    return folder


def test_a_replaced_image_is_predicted_again(tmp_path):
    model, cfg = oracle_model(), PredictConfig(mode="full")
    frames = _frames(tmp_path / "in")
    first = workflows.predict(model, frames, tmp_path / "out", config=cfg)
    counts = {r.image: r.count for r in first.counts}
    write_image(frames / "f0.png", synth_image(64, 20, seed=9, cluster_fraction=0.0).image)  # refocused
    again = workflows.predict(model, frames, tmp_path / "out", config=cfg)
    assert again.n_resumed == 1  # f1 unchanged
    assert {r.image: r.count for r in again.counts}["f0"] != counts["f0"]
    rows = (tmp_path / "out" / "counts.csv").read_text()
    assert f"f0,None,None,{counts['f0']}," not in rows


def test_a_file_touched_but_unchanged_is_checked_by_its_bytes(tmp_path):
    model, cfg = oracle_model(), PredictConfig(mode="full")
    frames = _frames(tmp_path / "in", 1)
    workflows.predict(model, frames, tmp_path / "out", config=cfg)
    os.utime(frames / "f0.png", ns=(1, 1))  # copied with other times: predicted again, same count
    again = workflows.predict(model, frames, tmp_path / "out", config=cfg)
    assert again.n_resumed == 0 and again.n_images == 1


def test_overwrite_removes_only_beadsegs_own_files(tmp_path):
    model, cfg = oracle_model(), PredictConfig(mode="full")
    frames = _frames(tmp_path / "in")
    out = tmp_path / "out"
    workflows.predict(model, frames, out, config=cfg)
    (out / "notes.txt").write_text("focus was off in f1")
    before = snapshot(out)
    with pytest.raises(InputError, match=r"notes.txt.*move them out"):
        workflows.predict(model, frames, out, config=cfg, threshold=0.3, overwrite=True)
    assert snapshot(out) == before
    (out / "notes.txt").unlink()
    workflows.predict(model, frames, out, config=cfg, threshold=0.3, overwrite=True)
    assert json.loads((out / MANIFEST).read_text())["settings"]["threshold"] == 0.3


def test_overwrite_checks_everything_can_go_before_removing_anything(tmp_path, monkeypatch):
    model, cfg = oracle_model(), PredictConfig(mode="full")
    frames = _frames(tmp_path / "in")
    out = tmp_path / "out"
    workflows.predict(model, frames, out, config=cfg)
    before = snapshot(out)
    real_access = os.access
    stuck = out / "labels"  # as if its permissions kept its files in (root ignores chmod)
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != stuck and real_access(p, mode))
    with pytest.raises(InputError, match=r"labels cannot be removed .* nothing was replaced"):
        workflows.predict(model, frames, out, config=cfg, threshold=0.3, overwrite=True)
    assert snapshot(out) == before


def test_a_refused_cv_job_keeps_the_manifest_of_the_job_sharing_its_folder(tmp_path):
    cfg = tiny_train_config(dense_data(tmp_path / "d"), **FROZEN)
    out = tmp_path / "cv"
    out.mkdir()
    from beadseg.outputs.folder import write_manifest

    # the first job of the array has claimed the folder and not written a fold yet
    write_manifest(out, "cv", {"config": cfg.model_dump(mode="json"), "folds": 2})
    other = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"weight_decay": 0.5})})
    with pytest.raises(InputError, match="other settings"):
        workflows.cv(other, out, folds=2, fold=1)
    assert (out / MANIFEST).is_file()


def test_every_command_writes_only_the_outputs_it_declares(tmp_path):
    from beadseg.outputs.folder import read_manifest

    model = oracle_model()
    frames = _frames(tmp_path / "in")
    data = tmp_path / "data"
    runs = {
        "synth": lambda: workflows.synth(data, n=3, size=64, seed=1),
        "analyze": lambda: workflows.analyze(data, tmp_path / "an", plots=False),
        "fix-masks": lambda: workflows.fix_masks(data, tmp_path / "fx"),
        "predict": lambda: workflows.predict(
            model, frames, tmp_path / "pr", config=PredictConfig(mode="full")
        ),
        "merge": lambda: workflows.merge([tmp_path / "pr"], tmp_path / "mg"),
        "evaluate": lambda: workflows.evaluate(
            model, data, tmp_path / "ev", config=PredictConfig(mode="full")
        ),
    }
    for command, run in runs.items():
        r = run()
        out = Path(getattr(r, "out", None) or r.path)
        manifest = read_manifest(out)
        assert manifest["command"] == command
        import fnmatch

        extra = [
            e.name
            for e in out.iterdir()
            if e.name not in (MANIFEST, ".beadseg.lock")
            and not any(fnmatch.fnmatch(e.name, p) for p in manifest["outputs"])
        ]
        assert not extra, (command, extra)


def test_results_are_frozen_and_serialise(tmp_path):
    r = workflows.synth(tmp_path / "s", n=2, size=32)
    with pytest.raises(AttributeError):
        r.names = ()
    assert json.loads(json.dumps(r.to_dict()))["names"] == list(r.names)


def test_export_refuses_a_folder_and_an_existing_file_unless_overwrite(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="is a folder; export writes one file"):
        workflows.export("default", "onnx", tmp_path / "folder")
    target = tmp_path / "m.onnx"
    target.write_bytes(b"mine")
    with pytest.raises(InputError, match="exists; .* overwrite"):
        workflows.export("default", "onnx", target)
    assert target.read_bytes() == b"mine"
    r = workflows.export("default", "onnx", target, overwrite=True)
    assert r.path == target and target.stat().st_size > 1000


def test_predict_needs_the_space_its_outputs_take(tmp_path, monkeypatch):
    frames = _frames(tmp_path / "in")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=100))
    with pytest.raises(InputError, match=r"has 100 bytes free but predicting 2 images needs about"):
        workflows.predict(oracle_model(), frames, tmp_path / "out", config=PredictConfig(mode="full"))
    assert not (tmp_path / "out").exists()


def test_loaded_models_and_files_give_the_same_folder_rule(tmp_path):
    frames = _frames(tmp_path / "in", 1)
    s = workflows.predict(oracle_model(), frames, tmp_path / "out", config=PredictConfig(mode="full"))
    assert s.out == tmp_path / "out" and s.n_images == 1
    assert np.isfinite(s.megapixels)
    with pytest.raises(InputError, match="other settings"):
        workflows.predict(
            oracle_model(threshold=0.4), frames, tmp_path / "out", config=PredictConfig(mode="full")
        )


def test_a_folder_from_before_a_setting_existed_names_that_setting(tmp_path):
    """A folder written before a setting existed is refused naming the setting and the way on,
    not as "other settings"."""
    from beadseg.outputs.folder import OutputFolder

    with OutputFolder.claim(tmp_path / "out", "predict", {"model": "default", "predict": {"overlap": 128}}):
        pass
    new = {"model": "default", "predict": {"overlap": 128, "overlays": "preview"}}
    with pytest.raises(InputError) as err:
        with OutputFolder.claim(tmp_path / "out", "predict", new):
            pass
    msg = str(err.value)
    assert 'did not record the setting predict.overlays (now "preview")' in msg
    assert "--overwrite" in msg and "other settings" not in msg
