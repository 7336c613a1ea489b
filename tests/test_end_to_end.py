"""End-to-end through the CLI on synthetic data, and the demo."""

import json

import pytest
from helpers import run_cli


def cli(*args, check=True):
    r = run_cli(*args)  # in this process: the pipeline, not the interpreter's start-up
    if check:
        assert r.returncode == 0, (args, r.stderr[-3000:])
    return r


def test_cli_pipeline(tmp_path):
    data, series = tmp_path / "data", tmp_path / "series"
    # dense tiles (helpers.FROZEN): a kept model between "marks everything" and "learned" is
    # never collapsed, so the run ends "ok" on every machine
    cli("synth", data, "--n", 6, "--size", 96, "--seed", 2, "--min-beads", 2500, "--max-beads", 3000)
    cli("synth", series, "--dilution-series", "--size", 96, "--seed", 3)
    cli("analyze", data, "--out", tmp_path / "an", "--workers", 1)
    assert json.loads((tmp_path / "an" / "summary.json").read_text())["dataset_size"] == 6
    # enough crops and a high learning rate to learn in 2 epochs: a run whose model predicts
    # no foreground ends "collapsed" (exit 3), however short it was
    sets = [
        "data.crop_size=64",
        "data.crops_per_epoch=64",
        "optim.lr=0.02",
        "model.base_channels=4",
        "model.depth=2",
        "train.batch_size=4",
        "split.val_fraction=0.34",
    ]
    setargs = sum((["--set", s] for s in sets), [])
    cli("train", data, "--out", tmp_path / "run", "--epochs", 2, "--quiet", *setargs)
    assert (tmp_path / "run" / "best.onnx").is_file()  # predict runs it, without torch
    cli(
        "train",
        data,
        "--out",
        tmp_path / "run2",
        "--epochs",
        2,
        "--model",
        "attention_unet",
        "--quiet",
        *setargs,
    )
    r = cli("compare", tmp_path / "run", tmp_path / "run2", "--out", tmp_path / "cmp")
    assert "attention_unet" in r.stdout and (tmp_path / "cmp" / "compare.csv").is_file()
    # each run named by what it is, not only by its folder: model, loss, learning rate, data
    assert "| loss | lr | data |" in r.stdout and f"| bce_dice | 0.02 | {data.name} |" in r.stdout
    cli("predict", tmp_path / "run", series / "images", "--out", tmp_path / "pred", "--quiet")
    assert (tmp_path / "pred" / "counts.csv").is_file()
    r = cli("evaluate", tmp_path / "pred", series, "--out", tmp_path / "ev")
    assert f"read {tmp_path / 'ev' / 'report.html'}" in r.stdout
    assert (tmp_path / "ev" / "report.html").is_file()
    r = cli("evaluate", tmp_path / "run", data, "--out", tmp_path / "ev2", "--calibrate")
    from beadseg.models.checkpoint import load_checkpoint

    calibrated = tmp_path / "ev2" / "calibrated.pt"
    assert str(calibrated) in r.stdout
    assert load_checkpoint(calibrated)["meta"]["threshold_calibrated"]
    assert "threshold_calibrated" not in load_checkpoint(tmp_path / "run" / "best.pt")["meta"]
    best = json.loads((tmp_path / "ev2" / "metrics.json").read_text())["calibration"]["best_threshold"]
    from beadseg.inference import load_model

    assert load_model(calibrated).threshold == best
    cli("dilution", tmp_path / "pred" / "counts.csv", "--out", tmp_path / "dil")
    assert (tmp_path / "dil" / "dilution.png").is_file()
    r = cli("lr-find", data, "--out", tmp_path / "lr", "--steps", 12, *setargs)
    assert (tmp_path / "lr" / "lr_find.png").is_file()


def test_demo_quick(tmp_path):
    from beadseg.models.checkpoint import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "default.pt").is_file():
        pytest.fail("the shipped default model is missing")
    r = cli("demo", "--quick", "--out", tmp_path / "demo")
    # a newcomer sees what each step found, not only how long it took
    assert "evaluate shipped model" in r.stdout and "centroid F1 0.9" in r.stdout
    assert "(true -1)" in r.stdout
    html = (tmp_path / "demo" / "report.html").read_text()
    md = (tmp_path / "demo" / "report.md").read_text()
    assert "src=" not in html.replace('src="data:image/png;base64,', "")  # every figure embedded
    for fig in (
        "analysis/distribution_analysis.png",
        "evaluate-default/worst_cases.png",
        "finetune/curves.png",
        "dilution/dilution.png",
    ):
        assert f"({fig})" in md and f'title="{fig}"' in html and (tmp_path / "demo" / fig).is_file()
    from report_checks import check_report

    for page in (
        "report.html",
        "analysis/report.html",
        "evaluate-default/report.html",
        "dilution/report.html",
    ):
        check_report(tmp_path / "demo" / page)
