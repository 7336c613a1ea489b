import numpy as np
import pytest

from beadseg.evaluate import evaluate
from beadseg.io import write_image, write_labels, write_mask
from beadseg.registration import fix_masks, shift_mask
from beadseg.synth import synth_image


def test_evaluate_prediction_folder_matches_stardist(tmp_path):
    from stardist.matching import matching

    data, pred = tmp_path / "data", tmp_path / "pred"
    rng = np.random.default_rng(0)
    pairs = {}
    for i in range(3):
        s = synth_image(128, 40 + 20 * i, seed=i)
        p = shift_mask(s.labels, int(rng.integers(-2, 3)), 1)
        write_image(data / "images" / f"{320 * (i + 1)}x_f{i}.png", s.image)
        write_mask(data / "masks" / f"{320 * (i + 1)}x_f{i}.png", s.mask)
        write_labels(data / "labels" / f"{320 * (i + 1)}x_f{i}.tif", s.labels)
        write_labels(pred / "labels" / f"{320 * (i + 1)}x_f{i}.tif", p)
        pairs[f"{320 * (i + 1)}x_f{i}"] = (s.labels, p)
    r = evaluate(pred, data, tmp_path / "ev")
    for row in r["per_image"]:
        t, p = pairs[row["image"]]
        ref = matching(t, p, thresh=0.5)
        assert row["object_f1"] == pytest.approx(ref.f1)
        assert row["pred_count"] == ref.n_pred and row["true_count"] == ref.n_true
        assert row["iou_best_shift"] >= row["iou"]
    assert set(r["per_dilution"]) == {"320", "640", "960"}
    for f in ("metrics.json", "metrics.csv", "worst_cases.png"):
        assert (tmp_path / "ev" / f).is_file()


def test_fix_masks_restores_known_shifts(tmp_path):
    truth = {}
    for i, (dy, dx) in enumerate([(0, 0), (3, -2), (0, 4)]):
        s = synth_image(160, 120, seed=30 + i)
        write_image(tmp_path / "d" / "images" / f"t{i}.png", s.image)
        write_mask(tmp_path / "d" / "masks" / f"t{i}.png", shift_mask(s.mask, dy, dx))
        truth[f"t{i}"] = (s.mask, (dy, dx))
    before = {p.name: p.read_bytes() for p in (tmp_path / "d" / "masks").iterdir()}
    rows = fix_masks(tmp_path / "d", tmp_path / "fixed")
    from beadseg.io import read_mask

    for r in rows:
        mask, (dy, dx) = truth[r["name"]]
        assert r["fixed"] == ((dy, dx) != (0, 0))
        fixed = read_mask(tmp_path / "fixed" / "masks" / f"{r['name']}.png").mask
        # restored exactly, except the strip that was shifted out of the image
        inner = (slice(5, -5), slice(5, -5))
        np.testing.assert_array_equal(fixed[inner], mask[inner])
    assert before == {p.name: p.read_bytes() for p in (tmp_path / "d" / "masks").iterdir()}
    assert (tmp_path / "fixed" / "shifts.csv").is_file()
