"""Physical sizes and search radii users give: absurd ones are refused in one line naming the
value and the plausible range (core/limits.py), before anything is computed or written; the
shift-tolerant IoU costs about the same at every allowed radius and equals the brute search."""

import numpy as np
import pytest
from helpers import assert_refused, run_cli

from beadseg.core.config import PredictConfig, load_config
from beadseg.core.dilution import microlitre_per_mp
from beadseg.core.errors import ConfigError, InputError
from beadseg.core.limits import MAX_SHIFT_RADIUS_PX, PHYSICAL
from beadseg.core.metrics import best_shift_iou, pixel_scores
from beadseg.core.registration import shift_mask


@pytest.mark.parametrize("value", [1e-30, 0.001, 345.0, 1e30, float("nan"), float("inf"), 0.0, -0.3])
def test_an_absurd_pixel_size_is_refused_with_the_range(value):
    with pytest.raises(ConfigError, match=r"pixel_size_um = .* 0\.01-100"):  # inf, NaN: "finite"
        load_config(None, {"pixel_size_um": value}, model=PredictConfig)
    with pytest.raises(InputError, match=r"--pixel-size-um .* is outside 0\.01-100 µm"):
        microlitre_per_mp(value, 100)


def test_sizes_within_the_range_are_taken_as_given():
    (p_low, p_high), (d_low, d_high) = PHYSICAL["pixel_size_um"][:2], PHYSICAL["depth_um"][:2]
    assert microlitre_per_mp(p_low, d_low) == pytest.approx(1e6 * p_low**2 * d_low / 1e9)
    assert microlitre_per_mp(p_high, d_high) == pytest.approx(1e6 * p_high**2 * d_high / 1e9)
    for v in (p_low, 0.345, p_high):
        assert load_config(None, {"pixel_size_um": v}, model=PredictConfig).pixel_size_um == v


@pytest.mark.parametrize("depth", ["0", "1e30", "0.5", "nan"])
def test_cli_dilution_refuses_an_absurd_chamber_depth(depth, tmp_path):
    counts, out = tmp_path / "counts.csv", tmp_path / "o"
    counts.write_text("image,count,area_mp\n160x_a,10,0.25\n320x_b,5,0.25\n")
    r = run_cli("dilution", counts, "--pixel-size-um", 0.3, "--depth-um", depth, "--out", out)
    assert_refused(r, "--depth-um", "1-10000 µm", out=out)
    r = run_cli("dilution", counts, "--pixel-size-um", "1e-30", "--depth-um", 100, "--out", out)
    assert_refused(r, "--pixel-size-um", "1e-30", "0.01-100 µm", out=out)


def test_cli_predict_refuses_an_absurd_pixel_size_before_writing(synth_data, tmp_path):
    out = tmp_path / "o"
    r = run_cli("predict", "default", synth_data, "--pixel-size-um", "1e-30", "--out", out, "-q")
    assert_refused(r, "pixel_size_um", "1e-30", "0.01-100", out=out)
    r = run_cli("predict", "default", synth_data, "--set", "pixel_size_um=inf", "--out", out, "-q")
    assert_refused(r, "pixel_size_um", out=out)


# ----------------------------------------------------------------------------- shift radius


def _brute(pred, true, r):
    """The search as it was: every shifted copy, the first strictly better IoU kept."""
    best = (pixel_scores(pred, true).iou, 0, 0)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            iou = pixel_scores(pred, shift_mask(true, dy, dx)).iou
            if (dy or dx) and iou > best[0] + 1e-12:
                best = (iou, dy, dx)
    return best


@pytest.mark.parametrize("radius", [0, 1, 3, 6, 7, 10])  # both ways of counting (up to 6, above)
def test_best_shift_iou_equals_the_brute_search(radius):
    rng = np.random.default_rng(radius)
    for h, w in [(1, 1), (3, 17), (24, 24), (40, 9)]:
        true = rng.random((h, w)) < 0.3
        for pred in (shift_mask(true, 2, -1), rng.random((h, w)) < 0.5, np.zeros((h, w), bool), true):
            assert best_shift_iou(pred, true, radius) == _brute(pred, true, radius), (h, w)


def test_best_shift_iou_finds_an_offset_at_the_largest_radius():
    true = np.zeros((96, 96), bool)
    true[20:30, 40:52] = true[60:70, 10:18] = True
    pred = shift_mask(true, -30, 31)
    assert best_shift_iou(pred, true, MAX_SHIFT_RADIUS_PX) == (1.0, -30, 31)


@pytest.mark.parametrize("radius", [33, 1000, -1, 2.5])
def test_a_shift_radius_outside_the_range_is_refused(radius):
    t = np.zeros((8, 8), bool)
    with pytest.raises(InputError, match="radius_px"):
        best_shift_iou(t, t, radius)  # before: 1000 searched 4 million shifted copies


def test_cli_evaluate_refuses_a_huge_shift_radius_at_once(synth_data, tmp_path):
    out = tmp_path / "o"
    r = run_cli("evaluate", "default", synth_data, "--shift-radius", 1000, "--out", out)
    assert_refused(r, "--shift-radius", "1000", "0-32 px", out=out)
    r = run_cli("evaluate", "default", synth_data, "--centroid-px", "1e9", "--out", out)
    assert_refused(r, "--centroid-px", "100", out=out)


def test_cli_fix_masks_refuses_a_huge_radius(synth_data, tmp_path):
    out = tmp_path / "o"
    assert_refused(
        run_cli("fix-masks", synth_data, "--radius", 1000, "--out", out), "--radius", "0-32", out=out
    )
