"""Hostile input through the command line (issue 18, issue 14 items 3-5), the output-folder rule,
resume rules and the label grades acting on training and evaluation.

Every bad-input case runs in this process through ``beadseg.cli.app.main`` and must end with exit
code 2, one line on stderr naming the file or value and the fix, no traceback, and ``--out``
exactly as it was before (absent when it was absent).
"""

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
import torch
from helpers import FROZEN, dense_data, run_cli, tiny_train_config

from beadseg.core.masks import write_mask
from beadseg.core.registration import shift_mask
from beadseg.data.synth import synth_dataset, synth_image
from beadseg.models.checkpoint import CHECKPOINT_FORMAT, DEFAULT_MODEL
from beadseg.outputs.folder import LOCK, MANIFEST, acquire_lock, release_lock

TINY = [
    "--set",
    "data.crop_size=64",
    "--set",
    "data.crops_per_epoch=64",
    "--set",
    "model.base_channels=4",
    "--set",
    "model.depth=2",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.num_threads=1",
    "--set",
    "split.val_fraction=0.34",
    "--set",
    "model.norm=none",
    "--set",
    "optim.lr=1e-30",
    "--epochs",
    "1",
    "--quiet",
]  # fmt: skip  (helpers.FROZEN on dense tiles: the run ends "ok" on every machine)


def cli(*args):
    """Run ``beadseg ARGS`` in this process: (exit code, stdout, stderr)."""
    r = run_cli(*args)
    return r.returncode, r.stdout, r.stderr


def snapshot(path: Path):
    """Everything under ``path`` (hidden files too), to tell whether a command touched it."""
    path = Path(path)
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def assert_refused(code, err, needles):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """Small inputs and finished outputs, made once; cases copy what they modify."""
    from beadseg.cli.app import main

    root = tmp_path_factory.mktemp("rel")

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        assert e.value.code == 0, args

    data = root / "data"
    synth_dataset(data, n=6, size=96, seed=1, min_beads=2500, max_beads=3000)  # dense: see TINY
    nan = root / "nan"
    shutil.copytree(data, nan)
    img = synth_image(96, 30, seed=5).image.astype(np.float32)
    img[10:12, 10:12] = np.nan
    (nan / "images" / "synth_000.png").unlink()
    tifffile.imwrite(nan / "images" / "synth_000.tif", img, photometric="rgb")
    run("predict", "default", data, "--out", root / "pred", "--quiet")
    for i in range(3):
        run("predict", "default", data, "--out", root / f"shard{i}", "--shard", f"{i}/3", "--quiet")
    run("train", data, "--out", root / "run", *TINY)
    run("cv", data, "--out", root / "cv", "--folds", 2, "--fold", 0, *TINY[:-3], "--set", "train.epochs=1")
    run("analyze", data, "--out", root / "analysis", "--no-plots", "-q")
    run("synth", root / "synth", "--n", 2, "--size", 32)
    run("fix-masks", data, "--out", root / "fixed")
    state = torch.load(DEFAULT_MODEL, weights_only=True)
    incomplete = {"format": CHECKPOINT_FORMAT, "model_state": {}, "meta": {"in_channels": 3}}
    torch.save(incomplete, root / "incomplete.pt")
    reshaped = {**state, "meta": {**state["meta"], "model": {**state["meta"]["model"], "base_channels": 5}}}
    torch.save(reshaped, root / "reshaped.pt")
    nan_weights = {**state, "model_state": {k: v.clone() for k, v in state["model_state"].items()}}
    first = next(k for k, v in nan_weights["model_state"].items() if v.is_floating_point())
    nan_weights["model_state"][first].view(-1)[0] = float("nan")
    nan_weights["ema_state"] = None
    torch.save(nan_weights, root / "nan_weights.pt")
    (root / "afile").write_text("not a folder")
    (root / "list.json").write_text("[1, 2]")
    (root / "space_bad.yaml").write_text("space: {optim.lr: {type: float, low: 1\n")
    (root / "good.yaml").write_text("train:\n  epochs: 1\n")
    (root / "space.yaml").write_text("space:\n  optim.lr: {type: float, low: 0.001, high: 0.01}\n")
    return SimpleNamespace(root=root, data=data, nan=nan, nan_image=nan / "images" / "synth_000.tif")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _hidden_only(t: Path) -> Path:
    (t / "mine" / ".git").mkdir(parents=True)
    (t / "mine" / ".git" / "config").write_text("[core]\n")
    return t / "mine"


def _counts(t: Path, text: str) -> Path:
    (t / "c.csv").write_bytes(text.encode() if isinstance(text, str) else text)
    return t / "c.csv"


# ----------------------------------------------------------------------------- the cases
# Each case: (tmp folder, fixtures) -> (argv, the folder that must stay as it was, words of the
# error line). Grouped as in issue 18.

C: dict = {}
# fmt: off

# 1. stale or mixed results in an output folder
C["predict-other-threshold"] = lambda t, f: (
    ["predict", "default", f.data, "--out", _copy(f.root / "pred", t / "o"), "--threshold", "0.9", "--quiet"],
    t / "o", ["threshold", "0.9", "--overwrite"])
C["predict-other-model"] = lambda t, f: (
    ["predict", f.root / "run", f.data, "--out", _copy(f.root / "pred", t / "o"), "--quiet"],
    t / "o", ["model", "--overwrite"])
C["predict-other-inputs"] = lambda t, f: (
    ["predict", "default", f.data / "images" / "synth_001.png", "--out", _copy(f.root / "pred", t / "o"), "--quiet"],
    t / "o", ["inputs"])
C["predict-same-stem-two-folders"] = lambda t, f: (
    ["predict", "default", f.data / "images" / "synth_001.png", f.nan / "images" / "synth_001.png",
     "--out", t / "o", "--quiet"], t / "o", ["synth_001", "same name"])
C["train-into-old-run"] = lambda t, f: (
    ["train", f.data, "--out", _copy(f.root / "run", t / "o"), *TINY], t / "o", ["--resume"])
C["train-other-settings-into-old-run"] = lambda t, f: (
    ["train", f.data, "--out", _copy(f.root / "run", t / "o"), *TINY, "--set", "optim.lr=0.02"],
    t / "o", ["optim.lr", "1e-30"])
C["cv-fold-done-with-another-model"] = lambda t, f: (
    ["cv", f.data, "--out", _copy(f.root / "cv", t / "o"), "--folds", 2, "--fold", 0, *TINY[:-3],
     "--set", "train.epochs=1", "--set", "model.name=attention_unet"], t / "o", ["model.name", "attention_unet"])
C["analyze-plots-into-no-plots-folder"] = lambda t, f: (
    ["analyze", f.data, "--out", _copy(f.root / "analysis", t / "o"), "-q"], t / "o", ["plots"])
C["synth-other-n"] = lambda t, f: (
    ["synth", _copy(f.root / "synth", t / "o"), "--n", 3, "--size", 32], t / "o", ["n 2 -> 3"])
C["fix-masks-other-radius"] = lambda t, f: (
    ["fix-masks", f.data, "--out", _copy(f.root / "fixed", t / "o"), "--radius", 3], t / "o", ["radius"])
C["analyze-into-predict-folder"] = lambda t, f: (
    ["analyze", f.data, "--out", _copy(f.root / "pred", t / "o"), "-q"], t / "o", ["beadseg predict"])
C["merge-out-is-an-input"] = lambda t, f: (
    ["merge", _copy(f.root / "shard0", t / "s0"), f.root / "shard1", f.root / "shard2", "--out", t / "s0"],
    t / "s0", ["input"])
C["overwrite-a-folder-of-hidden-files"] = lambda t, f: (
    ["predict", "default", f.data, "--out", _hidden_only(t), "--overwrite"], t / "mine", ["did not write"])
C["overwrite-a-folder-beadseg-did-not-write"] = lambda t, f: (
    ["predict", "default", f.data, "--out", _copy(f.data / "images", t / "mine"), "--overwrite", "--quiet"],
    t / "mine", ["did not write"])

# 2. --resume must not silently ignore options
for flag, extra in {"epochs": ["--epochs", 3], "set": ["--set", "optim.lr=0.1"], "model": ["--model", "unet"],
                    "out": ["--out", "elsewhere"]}.items():  # fmt: skip
    C[f"resume-with-{flag}"] = lambda t, f, extra=extra: (
        ["train", "--resume", _copy(f.root / "run", t / "o"), *extra], t / "o", ["--resume", "leave them out"])
# DATA with --resume says where the run's data is now: it must be that data
C["resume-with-other-data"] = lambda t, f: (
    ["train", f.root / "synth", "--resume", _copy(f.root / "run", t / "o")], t / "o",
    ["is not the data of", "lacks 4 of the run's images"])


def _edited_run(t, f):
    run = _copy(f.root / "run", t / "o")
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("epochs: 1", "epochs: 9"))
    return run


C["resume-after-config-edit"] = lambda t, f: (
    ["train", "--resume", _edited_run(t, f)], t / "o", ["config.yaml was edited", "train.epochs 1 -> 9"])
C["resume-of-nothing"] = lambda t, f: (["train", "--resume", t / "o"], t / "o", ["nothing to continue"])

# 3. NaN/inf images are refused at read time, naming the file
C["predict-nan-image"] = lambda t, f: (["predict", "default", f.nan_image, "--out", t / "o", "--quiet"],
                                       t / "o", ["synth_000.tif", "NaN"])
C["train-nan-image"] = lambda t, f: (["train", f.nan, "--out", t / "o", *TINY], t / "o", ["synth_000.tif", "NaN"])
C["analyze-nan-image"] = lambda t, f: (["analyze", f.nan, "--out", t / "o", "-q"], t / "o", ["synth_000.tif"])
C["lr-find-nan-image"] = lambda t, f: (["lr-find", f.nan, "--out", t / "o", "--set", "data.crop_size=64"],
                                       t / "o", ["synth_000.tif"])
C["evaluate-nan-image"] = lambda t, f: (["evaluate", "default", f.nan, "--out", t / "o"], t / "o", ["synth_000.tif"])
C["cv-nan-image"] = lambda t, f: (["cv", f.nan, "--out", t / "o", "--folds", 2, "--set", "data.crop_size=64"],
                                  t / "o", ["synth_000.tif"])


# 4. --out that is a file, or under a file: every command that writes a folder, before computing
def _out_cases(bad):
    return {
        "synth": lambda t, f: ["synth", bad(t, f), "--n", 1, "--size", 32],
        "analyze": lambda t, f: ["analyze", f.data, "--out", bad(t, f), "-q"],
        "train": lambda t, f: ["train", f.data, "--out", bad(t, f), *TINY],
        "cv": lambda t, f: ["cv", f.data, "--out", bad(t, f), "--folds", 2],
        "sweep": lambda t, f: ["sweep", f.root / "space.yaml", "--out", bad(t, f)],
        "compare": lambda t, f: ["compare", f.root / "run", "--out", bad(t, f)],
        "lr-find": lambda t, f: ["lr-find", f.data, "--out", bad(t, f)],
        "predict": lambda t, f: ["predict", "default", f.data, "--out", bad(t, f), "--quiet"],
        "merge": lambda t, f: ["merge", f.root / "shard0", "--out", bad(t, f)],
        "evaluate": lambda t, f: ["evaluate", "default", f.data, "--out", bad(t, f)],
        "dilution": lambda t, f: ["dilution", f.root / "pred" / "counts.csv", "--out", bad(t, f)],
        "fix-masks": lambda t, f: ["fix-masks", f.data, "--out", bad(t, f)],
        "demo": lambda t, f: ["demo", "--out", bad(t, f), "--quick"],
    }


def _a_file(t, f):
    (t / "afile").write_text("x")
    return t / "afile"


for cmd, make in _out_cases(_a_file).items():
    C[f"out-is-a-file-{cmd}"] = lambda t, f, make=make: (make(t, f), t / "afile", ["is a file"])
for cmd, make in _out_cases(lambda t, f: f.root / "afile" / "sub").items():
    C[f"out-under-a-file-{cmd}"] = lambda t, f, make=make: (make(t, f), f.root / "afile", ["is a file"])

# 5. tracebacks before; one line now
C["dilution-non-numeric"] = lambda t, f: (
    ["dilution", _counts(t, "image,count,area_mp\n160x_a_grid_r0_c0,many,0.26\n"), "--out", t / "o"],
    t / "o", ["line 2", "many"])
C["dilution-ragged"] = lambda t, f: (
    ["dilution", _counts(t, "image,count,area_mp\n160x_a,3,0.26,9,9\n"), "--out", t / "o"], t / "o", ["line 2", "fields"])
C["dilution-short-row"] = lambda t, f: (
    ["dilution", _counts(t, "image,count,area_mp\n160x_a,3\n"), "--out", t / "o"], t / "o", ["line 2", "fields"])
C["dilution-binary"] = lambda t, f: (
    ["dilution", _counts(t, bytes(range(256)) * 4), "--out", t / "o"], t / "o", ["c.csv", "UTF-8"])
C["dilution-missing-columns"] = lambda t, f: (
    ["dilution", _counts(t, "name,n\na,1\n"), "--out", t / "o"], t / "o", ["area_mp"])
C["dilution-negative-pixel-size"] = lambda t, f: (
    ["dilution", f.root / "pred" / "counts.csv", "--out", t / "o", "--pixel-size-um", -1, "--depth-um", 5],
    t / "o", ["--pixel-size-um", "-1"])


def _damaged_run(t, f, name, text):
    run = _copy(f.root / "run", t / "r")
    (run / name).write_text(text)
    return run


C["compare-damaged-result"] = lambda t, f: (
    ["compare", _damaged_run(t, f, "result.json", "{not json"), "--out", t / "o"], t / "o", ["result.json"])
C["compare-damaged-history"] = lambda t, f: (
    ["compare", _damaged_run(t, f, "history.csv", "epoch,val_iou\n1,abc\n"), "--out", t / "o"], t / "o",
    ["history.csv"])


def _damaged_shard(t, f, name, text):
    run = _copy(f.root / "shard1", t / "s1")
    (run / name).write_text(text)
    return [f.root / "shard0", run, f.root / "shard2"]


C["merge-damaged-counts"] = lambda t, f: (
    ["merge", *_damaged_shard(t, f, "counts.csv", "image,count\na,1,2,3\n"), "--out", t / "o"], t / "o",
    ["counts.csv"])
C["merge-damaged-settings"] = lambda t, f: (
    ["merge", *_damaged_shard(t, f, "settings.json", "[1"), "--out", t / "o"], t / "o", ["settings.json"])
C["merge-2-of-3-shards"] = lambda t, f: (
    ["merge", f.root / "shard0", f.root / "shard2", "--out", t / "o"], t / "o", ["1/3", "missing", "--incomplete"])
C["predict-mode-fast"] = lambda t, f: (["predict", "default", f.data, "--out", t / "o", "--mode", "fast"],
                                       t / "o", ["mode", "fast"])
C["predict-device-tpu"] = lambda t, f: (["predict", "default", f.data, "--out", t / "o", "--device", "tpu"],
                                        t / "o", ["tpu"])
C["checkpoint-missing-keys"] = lambda t, f: (
    ["predict", f.root / "incomplete.pt", f.data, "--out", t / "o", "--quiet"], t / "o", ["incomplete.pt", "meta.model"])
C["checkpoint-other-shapes"] = lambda t, f: (
    ["predict", f.root / "reshaped.pt", f.data, "--out", t / "o", "--quiet"], t / "o", ["reshaped.pt", "do not fit"])
C["checkpoint-nan-weights"] = lambda t, f: (
    ["predict", f.root / "nan_weights.pt", f.data, "--out", t / "o", "--quiet"], t / "o", ["nan_weights.pt", "NaN"])
C["synth-negative-seed"] = lambda t, f: (["synth", t / "o", "--seed", -1], t / "o", ["--seed"])
C["train-negative-seed"] = lambda t, f: (["train", f.data, "--out", t / "o", "--set", "train.seed=-1"], t / "o",
                                         ["train.seed", "-1"])
C["sweep-yaml-syntax-error"] = lambda t, f: (["sweep", f.root / "space_bad.yaml", "--out", t / "o"], t / "o",
                                             ["space_bad.yaml", "YAML"])
C["analyze-reference-json-list"] = lambda t, f: (
    ["analyze", f.data, "--out", t / "o", "--reference", f.root / "list.json", "-q"], t / "o", ["list.json"])
C["synth-out-of-memory-size"] = lambda t, f: (["synth", t / "o", "--size", 100000], t / "o", ["--size", "4096"])

# 6. values that were not validated
for value in ("2", "-1", "nan"):
    C[f"predict-threshold-{value}"] = lambda t, f, v=value: (
        ["predict", "default", f.data, "--out", t / "o", "--threshold", v], t / "o", ["--threshold"])
    C[f"evaluate-threshold-{value}"] = lambda t, f, v=value: (
        ["evaluate", "default", f.data, "--out", t / "o", "--threshold", v], t / "o", ["--threshold"])
C["synth-min-above-max"] = lambda t, f: (["synth", t / "o", "--min-beads", 100, "--max-beads", 1], t / "o",
                                         ["--min-beads", "--max-beads"])
C["train-crop-size-7"] = lambda t, f: (["train", f.data, "--out", t / "o", "--set", "data.crop_size=7"], t / "o",
                                       ["data.crop_size", "7"])
C["set-error-blames-the-command-line"] = lambda t, f: (
    ["train", f.data, "--out", t / "o", "--config", f.root / "good.yaml", "--set", "data.crop_size=7"], t / "o",
    ["command line", "data.crop_size"])
C["did-you-mean-optim-lr"] = lambda t, f: (
    ["train", f.data, "--out", t / "o", "--set", "optim.learning_rate=0.1"], t / "o", ["did you mean 'optim.lr'"])


# 8. partial outputs on error
def _corrupt_data(t, f):
    d = _copy(f.data, t / "d")
    (d / "images" / "synth_003.png").write_bytes(b"\x89PNG truncated")
    return d


C["fix-masks-corrupt-input"] = lambda t, f: (["fix-masks", _corrupt_data(t, f), "--out", t / "o"], t / "o",
                                             ["synth_003.png"])
C["train-unknown-model"] = lambda t, f: (["train", f.data, "--out", t / "o", *TINY, "--model", "foo"], t / "o",
                                         ["foo"])
C["train-bad-init-weights"] = lambda t, f: (
    ["train", f.data, "--out", t / "o", *TINY, "--set", f"train.init_weights={t / 'none.pt'}"], t / "o", ["none.pt"])


def _space_bad_data(t, f):
    (t / "space.yaml").write_text(
        f"base: {{data: {{path: {t / 'nowhere'}}}}}\nspace:\n  optim.lr: {{type: float, low: 0.001, high: 0.01}}\n"
    )
    return t / "space.yaml"


C["sweep-failing-trial-leaves-no-study"] = lambda t, f: (
    ["sweep", _space_bad_data(t, f), "--out", t / "o", "--trials", 1], t / "o", ["nowhere"])


# 10. writing through links and into inputs
def _linked_out(t, f):
    out = _copy(f.root / "pred", t / "o")
    shutil.rmtree(out / "masks")
    (out / "masks").symlink_to(t / "elsewhere", target_is_directory=True)
    (t / "elsewhere").mkdir()
    return out


C["predict-through-a-linked-subfolder"] = lambda t, f: (
    ["predict", "default", f.data, "--out", _linked_out(t, f), "--quiet"], t / "elsewhere", ["masks", "link"])


def _masks_linked_to_input(t, f):
    d = _copy(f.data, t / "d")
    (t / "o").mkdir()
    (t / "o" / "masks").symlink_to(d / "masks", target_is_directory=True)
    return d


C["fix-masks-out-masks-linked-to-input"] = lambda t, f: (
    ["fix-masks", _masks_linked_to_input(t, f), "--out", t / "o"], t / "d", ["input"])
C["hpc-account-newline"] = lambda t, f: (["hpc", "slurm", "--account", "proj\nrm -rf ~"], t / "none", ["--account"])
C["hpc-out-dir-with-space"] = lambda t, f: (["hpc", "slurm", "--out-dir", "my runs"], t / "none", ["--out-dir"])

# issue 14.4: globs that match nothing
C["predict-empty-glob"] = lambda t, f: (["predict", "default", str(f.data / "images" / "*.xyz"), "--out", t / "o"],
                                        t / "o", ["no file matches", "*.xyz"])


# fmt: on


@pytest.mark.parametrize("case", sorted(C))
def test_bad_input_is_one_line_exit_2_and_leaves_out_as_it_was(case, fx, tmp_path):
    argv, keep, words = C[case](tmp_path, fx)
    before = snapshot(keep)
    code, _, err = cli(*argv)
    assert_refused(code, err, words)
    assert snapshot(keep) == before
    for p in tmp_path.rglob(LOCK):
        raise AssertionError(f"lock left behind: {p}")


# ----------------------------------------------------------------------------- the folder rule


def test_unwritable_out_is_refused_before_any_computation(fx, tmp_path, monkeypatch):
    import os

    readable_only = lambda path, mode, **k: not mode & os.W_OK  # noqa: E731
    monkeypatch.setattr(os, "access", readable_only)  # tests run as root: simulate a read-only disk
    code, _, err = cli("predict", "default", fx.data, "--out", tmp_path / "o", "--quiet")
    assert_refused(code, err, ["not writable", str(tmp_path)])
    assert not (tmp_path / "o").exists()


def test_predict_resumes_only_records_of_the_same_model_settings_and_file(fx, tmp_path):
    out = _copy(fx.root / "pred", tmp_path / "o")
    record = out / "records" / "synth_002.json"
    stale = json.loads(record.read_text())
    stale["settings_hash"], stale["count"] = "0" * 16, 9999  # as another model would have left it
    record.write_text(json.dumps(stale))
    (out / "masks" / ".synth_004.0123456789ab.png").write_bytes(b"half")  # a killed write
    code, stdout, _ = cli("predict", "default", fx.data, "--out", out, "--quiet")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_resumed"] == 5  # the stale record was predicted again
    counts = {r["image"]: int(r["count"]) for r in csv.DictReader(open(out / "counts.csv"))}
    assert counts == {
        r["image"]: int(r["count"]) for r in csv.DictReader(open(fx.root / "pred" / "counts.csv"))
    }
    assert not list(out.rglob(".*.????????????.*"))


def test_a_nan_image_among_good_ones_is_skipped_and_listed(fx, tmp_path):
    code, stdout, _ = cli("predict", "default", fx.nan, "--out", tmp_path / "o", "--quiet")
    assert code == 0 and "(1 skipped)" in stdout
    errors = list(csv.DictReader(open(tmp_path / "o" / "errors.csv")))
    assert len(errors) == 1 and "synth_000.tif" in errors[0]["image"] and "NaN" in errors[0]["error"]


def test_quoted_absolute_glob(fx, tmp_path):
    code, stdout, _ = cli("predict", "default", str(fx.data / "images" / "synth_00[0-2].png"),
                          "--out", tmp_path / "o", "--quiet")  # fmt: skip
    assert code == 0 and stdout.startswith("3 images")
    code, stdout, _ = cli("predict", "default", str(fx.data / "images" / "synth_00[0].png"),
                          "--out", tmp_path / "o1", "--quiet")  # fmt: skip
    assert code == 0 and stdout.startswith("1 image,")


def test_a_second_writer_is_refused_and_a_dead_writers_lock_taken_over(fx, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    fd = acquire_lock(out, "predict")  # a live run writing there
    try:
        code, _, err = cli("predict", "default", fx.data, "--out", out, "--quiet")
        assert_refused(code, err, ["being written by", "beadseg predict"])
    finally:
        release_lock(out, fd)
    (out / LOCK).write_text('{"pid": 999999, "host": "gone", "command": "predict"}')  # killed run
    code, _, _ = cli("predict", "default", fx.data, "--out", out, "--quiet")
    assert code == 0 and not (out / LOCK).exists() and (out / MANIFEST).is_file()


def test_overwrite_clears_the_folder_but_never_through_links(fx, tmp_path):
    out = _copy(fx.root / "pred", tmp_path / "o")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    shutil.rmtree(out / "overlays")
    (out / "overlays").symlink_to(outside, target_is_directory=True)  # where beadseg writes
    code, _, err = cli("predict", "default", fx.data / "images" / "synth_001.png", "--out", out,
                       "--overwrite", "--quiet")  # fmt: skip
    assert code == 0, err
    assert (outside / "keep.txt").read_text() == "mine" and not (out / "overlays").is_symlink()
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["synth_001.png"]  # no stale outputs


def test_overwrite_keeps_what_the_user_put_in_the_folder(fx, tmp_path):
    out = _copy(fx.root / "pred", tmp_path / "o")
    (out / "notes.txt").write_text("which frames were out of focus")
    (out / "mylink").symlink_to(fx.data, target_is_directory=True)
    before = snapshot(out)
    code, _, err = cli(
        "predict", "default", fx.data / "images" / "synth_001.png", "--out", out, "--overwrite"
    )
    assert_refused(code, err, ["did not write", "mylink", "notes.txt", "move them out"])
    assert snapshot(out) == before


def test_evaluate_scores_the_part_of_the_data_that_has_predictions(fx, tmp_path):
    pred = _copy(fx.root / "pred", tmp_path / "p")
    for name in ("synth_001", "synth_004"):
        (pred / "labels" / f"{name}.tif").unlink()
        (pred / "masks" / f"{name}.png").unlink()
    code, stdout, _ = cli("evaluate", pred, fx.data, "--out", tmp_path / "e")
    assert code == 0 and "2 of 6 labelled images have no prediction" in stdout
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["no_prediction"] == ["synth_001", "synth_004"] and metrics["overall"]["n_images"] == 4


def test_merge_needs_every_shard_unless_incomplete(fx, tmp_path):
    shards = [fx.root / f"shard{i}" for i in range(3)]
    code, _, _ = cli("merge", *shards, "--out", tmp_path / "all")
    settings = json.loads((tmp_path / "all" / "settings.json").read_text())
    assert (
        code == 0
        and settings["complete"]
        and len(list(csv.DictReader(open(tmp_path / "all" / "counts.csv")))) == 6
    )
    code, _, err = cli("merge", shards[0], shards[2], "--out", tmp_path / "part", "--incomplete")
    settings = json.loads((tmp_path / "part" / "settings.json").read_text())
    assert code == 0 and "1/3" in err and not settings["complete"] and settings["missing_shards"] == ["1/3"]


def test_hpc_quotes_paths_with_spaces_in_commands():
    code, script, _ = cli("hpc", "slurm", "--job", "predict", "--inputs", "/data/my frames/*.png")
    assert code == 0 and "'/data/my frames/*.png'" in script


# ----------------------------------------------------------------------------- resume rules


class _Killed(Exception):
    """Stands for SIGKILL between two writes (the exact-resume tests of test_train.py use it)."""


def _kill_at(epoch):
    def hook(e, row):
        if e == epoch:
            raise _Killed  # after last.pt of this epoch, before result.json

    return hook


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "d"
    synth_dataset(out, n=6, size=64, seed=2, min_beads=10, max_beads=60)
    return out


def _result(run):
    res = json.loads((run / "result.json").read_text())
    return {k: v for k, v in res.items() if k not in ("seconds", "train_crops_per_s")}


def _history(run):
    drop = ("seconds", "train_seconds")
    return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(open(run / "history.csv"))]


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    return dense_data(tmp_path_factory.mktemp("dense") / "d")


# outcomes certain on every machine (helpers.FROZEN: a network that cannot change, predicting
# every pixel): on dense tiles (3x the true foreground) no epoch improves and the run stops early
# at epoch 2; on sparse ones (~100x) every epoch has collapsed and the run stops at epoch 2
STOPS = {
    "early-stopped": ("dense", {"train.epochs": 6, "train.early_stop_patience": 1, **FROZEN}),
    "collapsed": ("small", {"train.epochs": 6, "train.early_stop_patience": "null", **FROZEN,
                            "train.collapse_min_epoch": 0, "train.collapse_patience": 2}),
}  # fmt: skip


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_resume_after_the_stop_decision_ends_as_the_uninterrupted_run(stop, request, tmp_path):
    from beadseg.models.checkpoint import load_checkpoint
    from beadseg.training import train

    data, sets = STOPS[stop]
    cfg = tiny_train_config(request.getfixturevalue(data), **{"data.crops_per_epoch": 8, **sets})
    full = train(cfg, tmp_path / "full", progress=False, log=lambda s: None)
    assert full["status"] == stop and full["epochs_run"] == 2
    cut = tmp_path / "cut"
    with pytest.raises(_Killed):
        train(cfg, cut, progress=False, log=lambda s: None, on_epoch=_kill_at(full["epochs_run"]))
    assert not (cut / "result.json").exists()
    (cut / ".last.0123456789ab.pt").write_bytes(b"half a checkpoint")  # a write the kill cut short
    code, stdout, _ = cli("train", "--resume", cut, "--quiet")
    assert code == (3 if stop == "collapsed" else 0), stdout
    assert _result(cut) == _result(tmp_path / "full") and _history(cut) == _history(tmp_path / "full")
    for name in ("best.pt", "last.pt"):
        a, b = (
            load_checkpoint(cut / name)["model_state"],
            load_checkpoint(tmp_path / "full" / name)["model_state"],
        )
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list(cut.glob(".*.????????????.*"))


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it(dense, tmp_path):
    from beadseg.workflows import train

    cfg = tiny_train_config(dense, **FROZEN)  # its kept model is never collapsed: the run is "ok"
    run = tmp_path / "run"
    with pytest.raises(_Killed):
        train(cfg, run, on_epoch=_kill_at(1))
    for name in ("last.pt", "best.pt", "history.csv"):  # as if killed during epoch 1
        (run / name).unlink()
    code, stdout, _ = cli("train", "--resume", run, "--quiet")
    assert code == 0 and "starting the run" in stdout
    assert json.loads((run / "result.json").read_text())["epochs_run"] == cfg.train.epochs


def test_a_killed_sweep_resumes_without_running_trials_and_with_new_parameters(small, tmp_path):
    import optuna

    space = tmp_path / "space.yaml"
    base = {"data": {"path": str(small), "crop_size": 64, "crops_per_epoch": 8},
            "model": {"base_channels": 4, "depth": 2}, "train": {"epochs": 1, "batch_size": 4},
            "split": {"val_fraction": 0.34}}  # fmt: skip
    space.write_text(json.dumps({"base": base, "space": {"optim.lr": {"type": "float", "low": 1e-3,
                                                                      "high": 1e-1, "log": True}}}))  # fmt: skip
    out = tmp_path / "sweep"
    assert cli("sweep", space, "--out", out, "--trials", 1)[0] == 0
    study = optuna.load_study(study_name="beadseg-sweep", storage=f"sqlite:///{out / 'study.db'}")
    killed = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)})
    killed.set_user_attr("out", str(out.resolve()))  # a worker of this folder, killed mid-trial
    (out / ".trials.0123456789ab.csv").write_text("half")
    code, stdout, _ = cli("sweep", space, "--out", out, "--trials", 2)
    assert code == 0 and f"trial {killed.number} was left running" in stdout
    trials = optuna.load_study(study_name="beadseg-sweep", storage=f"sqlite:///{out / 'study.db'}").trials
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and states[killed.number] == "FAIL"
    # two trials finished (a tiny trial that collapses is finished as PRUNED)
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 2
    lrs = [t.params["optim.lr"] for t in trials]
    assert len(set(lrs)) == len(lrs)  # the resumed sampler does not replay the first proposal
    assert not list(out.glob(".*.????????????.*"))


# ----------------------------------------------------------------------------- label grades


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Six pairs: synth_002's mask is empty while its image shows beads (unusable), synth_003's
    is shifted by (3, -2) px (fixable: re-registered by (-3, 2))."""
    from beadseg.core.masks import read_mask

    d = tmp_path_factory.mktemp("graded") / "d"
    synth_dataset(d, n=6, size=96, seed=1, min_beads=300, max_beads=1500)
    write_mask(d / "masks" / "synth_002.png", np.zeros((96, 96), bool))
    original = read_mask(d / "masks" / "synth_003.png").mask
    write_mask(d / "masks" / "synth_003.png", shift_mask(original, 3, -2))
    return d, original


def test_training_leaves_out_unusable_labels_and_reregisters_shifted_ones(graded):
    from beadseg.training.data import prepare_data

    data, original = graded
    td = prepare_data(tiny_train_config(data))
    samples = {s.name: s for s in td.train + td.val}
    assert "synth_002" not in samples and set(td.labels.left_out) == {"synth_002"}
    assert "empty mask" in td.labels.left_out["synth_002"][0]
    assert td.labels.shifts == {"synth_003": (-3, 2)}
    inner = (slice(4, -4), slice(4, -4))  # pixels shifted in at the border are background
    np.testing.assert_array_equal(samples["synth_003"].mask[inner], original[inner])
    every = prepare_data(tiny_train_config(data, **{"data.use_all_labels": "true"}))
    assert len(every.train + every.val) == 6 and not every.labels.left_out and not every.labels.shifts


def test_train_lists_left_out_labels_in_split_json(graded, tmp_path):
    code, stdout, _ = cli("train", graded[0], "--out", tmp_path / "run", *TINY)
    assert code == 0 and "left out 1 unusable label" in stdout
    labels = json.loads((tmp_path / "run" / "split.json").read_text())["labels"]
    assert [e["name"] for e in labels["left_out"]] == ["synth_002"]
    assert labels["re_registered"] == [{"name": "synth_003", "dy": -3, "dx": 2}]


def test_evaluate_scores_usable_labels_and_says_which_it_left_out(graded, tmp_path):
    code, stdout, _ = cli("evaluate", "default", graded[0], "--out", tmp_path / "e")
    assert code == 0 and "left out synth_002 (label unusable: empty mask" in stdout
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["overall"]["n_images"] == 5 and metrics["labels"]["left_out"][0]["name"] == "synth_002"
    code, _, _ = cli("evaluate", "default", graded[0], "--out", tmp_path / "all", "--all-labels")
    assert json.loads((tmp_path / "all" / "metrics.json").read_text())["overall"]["n_images"] == 6
