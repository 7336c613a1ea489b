"""Reading images users bring: every Pillow mode, decompression bombs, and (Hypothesis) any
dtype, shape or byte garbage either works or raises a one-line BeadsegError."""

import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from beadseg.core import images
from beadseg.core.errors import BeadsegError, ConfigError, InputError
from beadseg.core.images import (
    MAX_PIXELS_ENV,
    canonical_image,
    max_image_pixels,
    read_image,
    read_raw_image,
    to_grey,
)
from beadseg.core.normalization import model_input, normalization_record

RGB = (
    np.array([[[200, 100, 30], [10, 220, 120]], [[90, 90, 90], [250, 5, 160]]], np.uint8)
    .repeat(4, 0)
    .repeat(4, 1)
)


def test_cmyk_jpeg_is_decoded_to_its_colours_not_inverted(tmp_path):
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    got = read_raw_image(tmp_path / "c.jpg")
    assert got.shape == RGB.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - RGB).max() <= 8  # JPEG's loss; inverted would be ~200 off


def test_palette_grey_alpha_bilevel_and_16_bit_pngs(tmp_path):
    Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_raw_image(tmp_path / "p.png"), RGB)  # colours, not palette indices
    pa = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pa.info["transparency"] = 0
    pa.save(tmp_path / "pt.png", transparency=0)
    np.testing.assert_array_equal(read_raw_image(tmp_path / "pt.png"), RGB)  # alpha dropped
    Image.fromarray(RGB[..., 0]).convert("LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_raw_image(tmp_path / "la.png")[..., 0], RGB[..., 0])
    Image.fromarray(RGB[..., 0] > 100).save(tmp_path / "b.png")
    bits = read_raw_image(tmp_path / "b.png")
    assert bits.dtype == bool and bits.shape == (8, 8, 1) and bits.sum() == (RGB[..., 0] > 100).sum()
    u16 = RGB[..., 0].astype(np.uint16) * 257
    Image.fromarray(u16).save(tmp_path / "g16.png")
    got = read_raw_image(tmp_path / "g16.png")
    assert got.dtype.kind in "ui" and got.dtype.isnative
    np.testing.assert_array_equal(got[..., 0], u16)


def test_tiffs_whose_values_are_not_intensities_are_decoded(tmp_path):
    # palette, CMYK and white-is-zero TIFFs: tifffile gives the stored values (indices, inks,
    # inverted grey), which would be counted as intensities
    for mode in ("P", "CMYK", "YCbCr", "LAB"):
        Image.fromarray(RGB).convert(mode).save(tmp_path / f"{mode}.tif")
        got = read_raw_image(tmp_path / f"{mode}.tif").astype(int)
        tolerance = {"P": 60, "LAB": 10}.get(mode, 3)  # a 256-colour palette, 8-bit Lab: lossy
        assert got.shape == RGB.shape and np.abs(got - RGB).max() <= tolerance, mode
    grey = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "w.tif", 65535 - grey, photometric="miniswhite")
    np.testing.assert_array_equal(read_raw_image(tmp_path / "w.tif")[..., 0], grey)
    tifffile.imwrite(tmp_path / "wf.tif", grey.astype(np.float32), photometric="miniswhite")
    with pytest.raises(InputError, match="white-is-zero float32"):
        read_raw_image(tmp_path / "wf.tif")


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV", "CMYK", "RGBX", "RGBa", "La", "PA", "I;16B"])
def test_every_pillow_mode_is_decoded_to_grey_or_rgb(mode):
    src = Image.fromarray(RGB[..., 0].astype(np.uint16) * 257) if mode == "I;16B" else Image.fromarray(RGB)
    if mode == "PA":
        src = src.convert("P").convert("PA")
    arr = images._pillow_array(src.convert(mode))
    arr = canonical_image(arr, mode)
    assert arr.shape[-1] in (1, 3) and arr.dtype.isnative
    if mode in ("YCbCr", "CMYK", "RGBX", "RGBa"):
        assert np.abs(arr.astype(int) - RGB).max() <= 3


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A 60-byte PNG that claims ``width x height`` grey pixels (its pixel data cut off)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    return path


def test_decompression_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    bomb = _png_header_only(tmp_path / "bomb.png", 32768, 32768)  # 1 G pixels in 60 bytes
    with pytest.raises(InputError) as e:
        read_image(bomb)
    msg = str(e.value)
    assert "bomb.png" in msg and "1,073,741,824 pixels" in msg and f"{MAX_PIXELS_ENV}=1073741824" in msg
    assert "\n" not in msg


def test_pixel_limit_applies_to_tiffs_before_their_pixels_are_read(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((40, 50), np.uint16))
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "big.png")

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixels decoded before the size was checked")

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", no_decoding)
    with pytest.raises(InputError, match=r"big.tif has 2,000 pixels .* limit of 1,999"):
        read_raw_image(tmp_path / "big.tif", max_pixels=1999)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1999")
    with pytest.raises(InputError, match="big.png has 2,000 pixels"):
        read_raw_image(tmp_path / "big.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "2000")
    assert read_raw_image(tmp_path / "big.png").shape == (40, 50, 1)


def test_pixel_limit_setting_is_checked(monkeypatch):
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert max_image_pixels() == images.MAX_IMAGE_PIXELS == 2**28
    assert max_image_pixels(5000) == 5000
    monkeypatch.setenv(MAX_PIXELS_ENV, "3e8")
    assert max_image_pixels() == 300_000_000
    for bad in ("lots", "-5", "0", "nan"):
        monkeypatch.setenv(MAX_PIXELS_ENV, bad)
        with pytest.raises(ConfigError, match=MAX_PIXELS_ENV):
            max_image_pixels()


def test_to_grey_is_the_channel_mean():
    x = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(to_grey(x), x.mean(-1))
    np.testing.assert_array_equal(to_grey(x.astype(np.float64), np.float64), x.astype(np.float64).mean(-1))
    assert to_grey(x[..., 0]).shape == (5, 6)


# ---------------------------------------------------------------- property tests (Hypothesis)

DTYPES = ["bool", "uint8", "uint16", "int16", "int32", "float16", "float32", "float64"]
SHAPES = st.one_of(
    st.tuples(st.integers(0, 6), st.integers(0, 6)),
    st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5)),
    st.tuples(st.integers(0, 5)),
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3)),
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
)
RECORDS = [None, normalization_record("percentile"), {"method": "dtype_max"}]
# a fixed set of examples: a test's outcome must not depend on the run
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(SHAPES)
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=dtype.itemsize * 8)
        scale = draw(st.sampled_from([1.0, 1e-30, 1e30, 255.0]))
        arr = draw(hnp.arrays(dtype, shape, elements=elements))
        with np.errstate(over="ignore", invalid="ignore"):
            return (arr * dtype.type(scale)).astype(dtype) if draw(st.booleans()) else arr
    return draw(hnp.arrays(dtype, shape))


def _works_or_one_line(fn, *args):
    """``fn(*args)``, or None when it raised a one-line BeadsegError; anything else fails."""
    try:
        return fn(*args)
    except BeadsegError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
        return None


@PROPERTY
@given(arrays(), st.sampled_from(RECORDS), st.sampled_from([1, 3]))
def test_any_array_is_a_network_input_or_a_one_line_error(arr, record, channels):
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no silent overflow either
        out = _works_or_one_line(model_input, arr, record, channels)
    if out is not None:
        assert out.dtype == np.float32 and out.shape == (*arr.shape[:2], channels)
        assert np.isfinite(out).all()


def _write(path: Path, arr: np.ndarray) -> bool:
    """Write ``arr`` as the file's format allows (False: the writer refused it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tifffile on zero-size arrays
            if path.suffix == ".tif":
                tifffile.imwrite(path, arr)
            else:
                Image.fromarray(arr).save(path)
    except (TypeError, ValueError, KeyError, OSError):
        return False
    return True


@PROPERTY
@given(arrays(), st.sampled_from([".tif", ".png", ".jpg"]))
def test_any_image_file_reads_or_gives_a_one_line_error(arr, ext):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{ext}"
        if not _write(path, arr):
            return
        raw = _works_or_one_line(read_raw_image, path)
        shown = _works_or_one_line(read_image, path)
        x = _works_or_one_line(model_input, path, None, 3)
    if raw is not None:
        assert raw.ndim == 3 and raw.shape[-1] in (1, 3) and raw.dtype.isnative
        assert shown is not None and shown.dtype == np.float32 and shown.shape == raw.shape
    if x is not None:
        assert np.isfinite(x).all() and x.shape == (*raw.shape[:2], 3)


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV"]


@PROPERTY
@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9), st.just(3))),
    st.sampled_from(MODES),
    st.sampled_from([".png", ".jpg", ".tif"]),
)
def test_any_pillow_mode_reads_as_grey_or_rgb(rgb, mode, ext):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{ext}"
        try:
            Image.fromarray(rgb).convert(mode).save(path)
        except (OSError, ValueError, KeyError):
            return  # a mode this format cannot hold
        raw = _works_or_one_line(read_raw_image, path)
    if raw is not None:
        assert raw.shape[:2] == rgb.shape[:2] and raw.shape[-1] in (1, 3) and raw.dtype.isnative
        if mode in ("RGB", "RGBA") and ext != ".jpg":
            np.testing.assert_array_equal(raw, rgb)


@PROPERTY
@given(st.binary(max_size=300), st.sampled_from([".png", ".tif", ".tiff", ".jpg", ".jpeg"]), st.booleans())
def test_byte_garbage_under_an_image_name_gives_a_one_line_error(data, ext, real_header):
    header = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8\xff", ".jpeg": b"\xff\xd8\xff"}
    magic = header.get(ext, b"II*\x00")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"garbage{ext}"
        path.write_bytes((magic if real_header else b"") + data)
        _works_or_one_line(read_raw_image, path)
        _works_or_one_line(model_input, path, None, 1)
