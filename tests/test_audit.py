"""`beadseg audit`: crops of a predict run across densities, clicks in them, the measured bias.

Exact-truth images stand in for the user: their true centres are the clicks."""

import csv
import json

import numpy as np
import pytest
import tifffile
from helpers import assert_refused, oracle_model, run_cli

from beadseg.core.config import PredictConfig
from beadseg.core.images import write_image
from beadseg.data.synth import synth_image
from beadseg.evaluation.audit import in_crop, read_clicks, sample_crops
from beadseg.inference.runner import predict_images
from beadseg.workflows import audit

DENSITIES = {"100x_a": 700, "400x_b": 180, "1600x_c": 45}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A predict run of the oracle on three frames of a dilution series, and their truth."""
    root = tmp_path_factory.mktemp("audit")
    truth = {}
    for i, (name, n) in enumerate(DENSITIES.items()):
        s = synth_image(192, n, seed=20 + i, background=0.6, min_gap_px=0.0)
        write_image(root / "in" / f"{name}.png", s.image)
        truth[name] = s.centers
    predict_images(oracle_model(), [root / "in"], root / "pred", PredictConfig(mode="full"), progress=False)
    return root, truth


def _clicks_from_truth(crops, truth) -> list[dict]:
    """napari's Points CSV of the true centres in each crop (axis-0 crop, axis-1 row, axis-2 col)."""
    rows = []
    for c in crops:
        pts = truth[c.image]
        for y, x in pts[in_crop(pts, c.x0, c.y0, c.size)]:
            rows.append({"index": len(rows), "axis-0": c.crop, "axis-1": y - c.y0, "axis-2": x - c.x0})
    return rows


def test_sheet_samples_every_density_and_opens_in_napari(run):
    root, _ = run
    r = audit(root / "pred", root / "sheet", size=48, per_bin=3, bins=3)
    assert not r.scored and r.n_crops == 9
    crops = list(csv.DictReader(open(root / "sheet" / "crops.csv")))
    assert {c["density_bin"] for c in crops} == {"0", "1", "2"}
    frac = {b: [float(c["foreground_fraction"]) for c in crops if c["density_bin"] == b] for b in "012"}
    assert max(frac["0"]) <= min(frac["1"]) and max(frac["1"]) <= min(frac["2"])  # bins by density
    stack = tifffile.imread(root / "sheet" / "crops.tif")
    assert stack.shape == (9, 48, 48, 3) and stack.dtype == np.uint8
    assert len(list((root / "sheet" / "crops").glob("crop_*.png"))) == 9
    header = open(root / "sheet" / "points.csv").readline().strip()
    assert header == "index,axis-0,axis-1,axis-2"
    assert read_clicks(root / "sheet" / "points.csv", sample_crops(root / "pred", 48, 3, 3)) == {
        k: pytest.approx(np.zeros((0, 2))) for k in range(9)
    }
    predicted = list(csv.DictReader(open(root / "sheet" / "predicted_points.csv")))
    assert len(predicted) == sum(int(c["predicted"]) for c in crops)


def test_clicks_give_the_model_bias_and_correct_the_dilution_fit(run, tmp_path):
    root, truth = run
    crops = sample_crops(root / "pred", 48, 3, 3)
    clicks = _clicks_from_truth(crops, truth)
    from beadseg.core.files import write_csv

    write_csv(tmp_path / "clicks.csv", clicks, ["index", "axis-0", "axis-1", "axis-2"])
    r = audit(root / "pred", tmp_path / "scored", points=tmp_path / "clicks.csv", size=48, per_bin=3, bins=3)
    assert r.scored and len(r.bins) == 3
    for b in r.bins:  # the bias is what the truth says of the model's beads in those crops
        sel = [c for c in crops if c.density_bin == b["density_bin"]]
        true = sum(int(in_crop(truth[c.image], c.x0, c.y0, c.size).sum()) for c in sel)
        assert b["clicked"] == true and b["predicted"] == sum(c.predicted for c in sel)
        assert b["bias"] == pytest.approx(b["predicted"] / true - 1)
    corrected = list(csv.DictReader(open(tmp_path / "scored" / "counts_corrected.csv")))
    assert {r["image"] for r in corrected} == set(DENSITIES)
    for row in corrected:
        assert int(row["count_low"]) <= float(row["count_corrected"]) <= int(row["count_high"])
    saved = json.loads((tmp_path / "scored" / "audit.json").read_text())
    assert saved["dilution"]["slope_corrected"] < 0 and r.dilution == saved["dilution"]
    assert any("bias" in line for line in r.lines())


def test_plain_crop_xy_clicks_and_bad_clicks(run, tmp_path):
    root, truth = run
    crops = sample_crops(root / "pred", 48, 3, 3)
    rows = [
        {"crop": r["axis-0"], "x": r["axis-2"], "y": r["axis-1"]} for r in _clicks_from_truth(crops, truth)
    ]
    from beadseg.core.files import write_csv

    write_csv(tmp_path / "xy.csv", rows, ["crop", "x", "y"])
    r = run_cli(
        "audit",
        root / "pred",
        "--points",
        tmp_path / "xy.csv",
        "--size",
        48,
        "--per-bin",
        3,
        "--bins",
        3,
        "--out",
        tmp_path / "o",
    )
    assert r.returncode == 0, r.stderr
    assert "density bin 2" in r.stdout
    write_csv(tmp_path / "bad.csv", [{"crop": 99, "x": 1, "y": 1}], ["crop", "x", "y"])
    bad = run_cli(
        "audit", root / "pred", "--points", tmp_path / "bad.csv", "--size", 48, "--out", tmp_path / "b"
    )
    assert_refused(bad, "crop 99", "bad.csv")
    assert_refused(run_cli("audit", tmp_path, "--out", tmp_path / "c"), "counts.csv", out=tmp_path / "c")
