"""Count intervals: calibrated on images of known count, written into counts.csv, widened past
the densest calibration image, and used as weights by the dilution fit."""

import csv

import numpy as np
import pytest
from helpers import oracle_model

from beadseg.core.config import PredictConfig
from beadseg.core.dilution import FrameDensity, fit_dilution, fit_dilution_frames, stock_concentration
from beadseg.core.errors import InputError
from beadseg.core.images import write_image
from beadseg.core.intervals import CountCalibration, calibrate
from beadseg.data.synth import synth_image


def _calibration_images():
    """40 images at 4 densities; the model counts 5 % low at the densest, +-2 % scatter."""
    rng = np.random.default_rng(0)
    frac = np.repeat([0.01, 0.05, 0.12, 0.25], 10)
    true = np.repeat([40, 200, 450, 1000], 10).astype(float)
    bias = np.repeat([0.0, -0.01, -0.02, -0.05], 10)
    pred = np.round(true * (1 + bias + rng.normal(0, 0.02, 40)))
    return pred, true, frac, np.full(40, 512.0**2)


def test_calibration_covers_its_images_and_corrects_the_bias():
    pred, true, frac, area = _calibration_images()
    cal = calibrate(pred, true, frac, area, min_per_bin=10)
    assert len(cal.bins) == 4 and cal.max_fraction == 0.25
    assert cal.bins[-1].mean == pytest.approx(np.log(1 / 0.95), abs=0.01)  # counts 5 % low
    inside = []
    for p, t, f, a in zip(pred, true, frac, area):
        iv = cal.interval(p, f, a)
        inside.append(iv.low <= t <= iv.high)
        assert not iv.beyond and iv.low <= iv.high
    assert np.mean(inside) >= 0.95
    again = CountCalibration.from_dict(cal.to_dict())
    assert again == cal


def test_beyond_the_densest_calibration_the_interval_widens_to_the_area_count():
    pred, true, frac, area = _calibration_images()
    cal = calibrate(pred, true, frac, area, min_per_bin=10)
    inside = cal.interval(1000, 0.25, 512.0**2)
    past = cal.interval(1000, 0.40, 512.0**2, area_count=1400)
    assert past.beyond and not inside.beyond
    assert past.high >= 1400 and past.high - past.low > 2 * (inside.high - inside.low)
    small = cal.interval(1000 / 16, 0.25, 128.0**2)  # a crop: more scatter, relatively wider
    assert (small.high - small.low) / 62.5 > (inside.high - inside.low) / 1000
    assert cal.interval(0, 0.0, 512.0**2).low == 0


def test_the_frame_term_widens_every_interval_and_does_not_average_out_over_a_large_frame():
    pred, true, frac, area = _calibration_images()
    plain = calibrate(pred, true, frac, area, min_per_bin=10)
    framed = calibrate(pred, true, frac, area, min_per_bin=10, frame_sd=0.05)
    for count, f in ((40, 0.01), (1000, 0.25)):
        a, b = plain.interval(count, f, 512.0**2), framed.interval(count, f, 512.0**2)
        assert b.low < a.low and b.high > a.high
    # a 4K frame: the tiles' scatter stays as it is, a frame's bias of 5 % does not shrink
    big = framed.interval(20000, 0.25, 3840 * 2160)
    assert np.log(big.high / 20000) - framed.bins[-1].mean >= 1.96 * 0.05
    # crops of the user's own frames: the frame term still adds to what averages out
    crops = calibrate(pred, true, frac, area, 10, area_model="crops", frame_sd=0.05)
    assert crops.interval(20000, 0.25, 3840 * 2160).high > plain.interval(20000, 0.25, 3840 * 2160).high
    assert CountCalibration.from_dict(framed.to_dict()) == framed
    old = framed.to_dict()
    del old["frame_sd"]  # a table written before the frame term: none
    assert CountCalibration.from_dict(old).frame_sd == 0.0
    for bad in (-0.1, float("nan"), "wide"):
        with pytest.raises(InputError, match="frame_sd"):
            CountCalibration.from_dict({**old, "frame_sd": bad})


def test_a_table_of_another_kind_is_refused():
    with pytest.raises(InputError, match="log_ratio_by_foreground_fraction"):
        CountCalibration.from_dict({"kind": "something else", "bins": []})
    assert CountCalibration.from_dict(None) is None
    with pytest.raises(InputError, match="at least 2 images"):
        calibrate([1], [1], [0.1], [100])


def test_predict_writes_the_interval_of_a_calibrated_model(tmp_path):
    pred, true, frac, area = _calibration_images()
    model = oracle_model()
    model.meta = {"count_calibration": calibrate(pred, true, frac, area, 10).to_dict()}
    for i in range(2):
        write_image(
            tmp_path / "in" / f"f{i}.png", synth_image(128, 30 + 20 * i, seed=i, background=0.6).image
        )
    from beadseg.inference.runner import predict_images

    predict_images(model, [tmp_path / "in"], tmp_path / "out", PredictConfig(mode="full"), progress=False)
    rows = list(csv.DictReader(open(tmp_path / "out" / "counts.csv")))
    for r in rows:
        assert int(r["count_low"]) <= int(r["count"]) <= int(r["count_high"])
        assert r["beyond_calibration"] == "False" and float(r["count_by_area"]) > 0
    plain = oracle_model()  # no calibration: empty cells
    predict_images(plain, [tmp_path / "in"], tmp_path / "out2", PredictConfig(mode="full"), progress=False)
    r = next(csv.DictReader(open(tmp_path / "out2" / "counts.csv")))
    assert r["count_low"] == r["count_high"] == "" and float(r["count_by_area"]) > 0


def test_weighted_fit_equals_ols_with_equal_weights_and_trusts_narrow_intervals():
    d = [10, 20, 40, 80, 160]
    y = [1000, 480, 260, 120, 64]
    plain, same = fit_dilution(d, y), fit_dilution(d, y, weights=[3.0] * 5)
    assert same.slope == pytest.approx(plain.slope) and same.slope_ci95 == pytest.approx(plain.slope_ci95)
    assert same.weighted and not plain.weighted
    frames = [
        FrameDensity(f"f{k}", dil, c, 1.0, 1, c * lo, c * hi)
        for k, (dil, c, lo, hi) in enumerate(
            [(10, 3000, 0.5, 1.6), (20, 1000, 0.97, 1.03), (40, 500, 0.97, 1.03), (80, 250, 0.97, 1.03)]
        )
    ]  # the packed 10x frame counted 50 % high, but with a wide interval
    weighted = fit_dilution_frames(frames)
    unweighted = fit_dilution([f.dilution for f in frames], [f.beads_per_mp for f in frames])
    assert weighted.weighted and abs(weighted.slope + 1) < abs(unweighted.slope + 1)
    assert stock_concentration(frames).weighted
    no_interval = [FrameDensity("a", 10, 100, 1, 1), FrameDensity("b", 20, 50, 1, 1)]
    assert not fit_dilution_frames(no_interval).weighted
