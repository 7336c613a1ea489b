import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from beadseg.core.errors import InputError
from beadseg.core.images import read_raw_image, write_image
from beadseg.core.normalization import LEGACY, as_hwc, background_level, normalization_record, normalize_image
from beadseg.data.synth import synth_image


@pytest.fixture
def tile8():
    """A synthetic brightfield tile as 8-bit RGB (background ~100/255, dark beads)."""
    img = synth_image(96, n_beads=30, seed=4, background=0.4).image
    assert img.dtype == np.uint8
    return img


def test_bit_depths_and_dtypes_of_one_image_normalise_alike(tile8):
    ref = normalize_image(tile8)
    copies = {
        "12-bit in 16-bit": tile8.astype(np.uint16) * 16,
        "16-bit": tile8.astype(np.uint16) * 257,
        "float 0-1": tile8.astype(np.float32) / 255,
        "float 0-255": tile8.astype(np.float64),
    }
    for name, arr in copies.items():
        np.testing.assert_allclose(normalize_image(arr), ref, atol=1e-5, err_msg=name)


def test_background_sits_at_half_and_beads_below(tile8):
    y = normalize_image(tile8)
    assert y.dtype == np.float32 and y.shape == tile8.shape
    assert abs(float(np.median(y)) - 0.5) < 0.03  # the mode, with an illumination ramp
    assert float(y.min()) < 0.4  # the beads are darker than the background


def test_background_level_is_the_mode_not_the_median():
    # 60 % of the pixels are beads spread over 40-110, 40 % background at 150 +- 1: the median
    # is a bead value, the mode the background
    rng = np.random.default_rng(0)
    img = rng.integers(40, 111, (100, 100)).astype(np.uint8)
    img[:40] = 150 + rng.integers(-1, 2, (40, 100))
    assert 149 <= background_level(img)[0] <= 151
    assert np.median(img) < 110


def test_brighter_lamp_and_white_balance_are_normalised_away(tile8):
    ref = normalize_image(tile8)
    tinted = tile8.astype(np.float32) * np.array([1.3, 1.0, 0.8], np.float32)
    np.testing.assert_allclose(normalize_image(tinted), ref, atol=1e-5)


def test_grey_2d_array_and_saved_file(tmp_path, tile8):
    grey = tile8[..., 0]
    y = normalize_image(grey)
    assert y.shape == (96, 96, 1)
    write_image(tmp_path / "g.tif", grey.astype(np.float32) / 255)  # saved as 16-bit TIFF
    raw = read_raw_image(tmp_path / "g.tif")
    assert raw.dtype == np.uint16 and raw.shape == (96, 96, 1)
    np.testing.assert_allclose(normalize_image(raw), y, atol=2e-3)


def test_legacy_checkpoints_keep_dtype_max_scaling(tile8):
    y = normalize_image(tile8, LEGACY)
    np.testing.assert_allclose(y, tile8 / 255, atol=1e-6)
    np.testing.assert_allclose(normalize_image(tile8.astype(np.uint16) * 257, LEGACY), y, atol=1e-6)


def test_percentile_method(tile8):
    y = normalize_image(tile8, normalization_record("percentile"))
    assert float(np.percentile(y, 1)) == pytest.approx(0.0, abs=0.02)
    assert float(np.percentile(y, 99.8)) == pytest.approx(1.0, abs=0.02)


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(InputError, match="shape"):
        normalize_image(np.zeros((3, 32, 32, 3)))
    with pytest.raises(InputError, match="channels last"):
        as_hwc(np.zeros((3, 32, 32)))
    bad = np.ones((8, 8), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        normalize_image(bad, name="x.tif")
    with pytest.raises(InputError, match="background level"):
        normalize_image(np.full((8, 8), -1.0))
    black = normalize_image(np.zeros((8, 8), np.uint8))
    assert np.all(black == 0.5)
    with pytest.raises(ValueError, match="not one of"):
        normalization_record("zscore")


@given(
    st.integers(40, 200),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
)
def test_an_integer_image_and_its_float_copy_get_one_background(level, noise, seed):
    """uint8 and uint8 / 255 as float32 (what a float TIFF of it holds) have one background:
    a grey value exactly 1/32 of the range from the histogram's mode used to fall in or out of
    the window by float32 rounding (one real dev tile: levels 2.7 % apart)."""
    rng = np.random.default_rng(seed)
    img = np.clip(level + rng.integers(-noise, noise + 1, (48, 48, 3)), 0, 255).astype(np.uint8)
    img[10:16, 10:16] //= 2  # a dark bead
    u8 = background_level(img)
    assert np.allclose(background_level(img.astype(np.float32) / 255) * 255, u8, rtol=1e-6)
    assert np.allclose(background_level(img.astype(np.uint16) * 257) / 257, u8, rtol=1e-6)
