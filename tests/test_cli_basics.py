import subprocess
import sys

import imageio.v3 as iio
import numpy as np
from helpers import run_cli as run


def test_entry_point_version_and_help():
    r = subprocess.run([sys.executable, "-m", "beadseg", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "beadseg" in r.stdout  # `python -m beadseg` itself, once
    for cmd in (
        "synth",
        "analyze",
        "train",
        "predict",
        "evaluate",
        "dilution",
        "compare",
        "models",
        "lr-find",
        "demo",
        "fix-masks",
    ):
        r = run(cmd, "--help")
        assert r.returncode == 0, (cmd, r.stderr)


def test_synth_cli_writes_pairs(tmp_path):
    r = run("synth", tmp_path / "s", "--n", 4, "--size", 256)
    assert r.returncode == 0, r.stderr
    import tifffile

    for p in sorted((tmp_path / "s" / "masks").glob("*.png")):
        m = iio.imread(p)
        lab = tifffile.imread(tmp_path / "s" / "labels" / (p.stem + ".tif"))
        np.testing.assert_array_equal(m > 0, lab > 0)
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 4


def test_bad_input_is_one_line_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run("analyze", tmp_path / "empty", "--out", tmp_path / "o")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "empty" in r.stderr
    assert not (tmp_path / "o").exists()


def test_models_table():
    r = run("models")
    assert r.returncode == 0
    for name in ("unet", "attention_unet", "attention_resunet"):
        assert f"| {name} |" in r.stdout


def test_analyze_does_not_import_torch():
    code = "import sys, beadseg.analysis, beadseg.cli; assert 'torch' not in sys.modules, 'torch imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_predict_set_instances_changes_the_beads_and_is_recorded(tmp_path):
    """`--set instances.KEY=V` changes that instance setting of the model for this run (it was
    accepted and ignored before): the beads, settings.json, config.yaml and the folder rule
    all follow it."""
    import json

    import yaml

    assert run("synth", tmp_path / "s", "--n", 1, "--size", 256, "--seed", 3).returncode == 0
    plain = run("predict", "default", tmp_path / "s" / "images", "--out", tmp_path / "a", "-q")
    strict = run(
        "predict", "default", tmp_path / "s" / "images", "--out", tmp_path / "b", "-q",
        "--set", "instances.min_centre=0.99",
    )  # fmt: skip
    assert plain.returncode == 0 and strict.returncode == 0, strict.stderr

    def total(folder):
        import csv

        return sum(int(r["count"]) for r in csv.DictReader(open(folder / "counts.csv")))

    assert total(tmp_path / "a") > 0 and total(tmp_path / "b") < total(tmp_path / "a")
    settings = json.loads((tmp_path / "b" / "settings.json").read_text())
    assert settings["instances"]["min_centre"] == 0.99
    assert settings["instances"]["border"] == "by_centre"  # the rest stays the model's
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())["instances"]["min_centre"] == 0.99
    again = run("predict", "default", tmp_path / "s" / "images", "--out", tmp_path / "b", "-q")
    assert again.returncode == 2 and "instances.min_centre" in again.stderr
    # the section form names the same key
    section = run(
        "predict", "default", tmp_path / "s" / "images", "--out", tmp_path / "c", "-q",
        "--set", "instances={min_centre: 0.99}",
    )  # fmt: skip
    assert section.returncode == 0, section.stderr
    assert json.loads((tmp_path / "c" / "settings.json").read_text())["instances"]["min_centre"] == 0.99
