import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from beadseg.core.errors import BeadsegWarning, InputError
from beadseg.core.files import atomic_path, find_pairs, write_columns_csv
from beadseg.core.images import read_image, to_channels
from beadseg.core.masks import classify_mask, read_mask, read_pair, write_labels, write_mask


def _pair(root, name, image, mask, img_ext=".png", mask_ext=".png"):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for sub, arr, ext in (("images", image, img_ext), ("masks", mask, mask_ext)):
        p = root / sub / f"{name}{ext}"
        if ext in (".tif", ".tiff"):
            tifffile.imwrite(p, arr)
        else:
            iio.imwrite(p, arr)


def test_read_png_rgb_gray_rgba(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    iio.imwrite(tmp_path / "rgb.png", rgb)
    iio.imwrite(tmp_path / "gray.png", rgb[..., 0])
    iio.imwrite(tmp_path / "rgba.png", np.dstack([rgb, np.full((4, 5), 7, np.uint8)]))
    a = read_image(tmp_path / "rgb.png")
    assert a.dtype == np.float32 and a.shape == (4, 5, 3)
    np.testing.assert_allclose(a, rgb / 255, atol=1e-6)
    assert read_image(tmp_path / "gray.png").shape == (4, 5, 1)
    np.testing.assert_allclose(read_image(tmp_path / "rgba.png"), a)


def test_read_tiff_16bit_and_float(tmp_path):
    u16 = np.array([[0, 65535], [32768, 1]], np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", u16)
    np.testing.assert_allclose(read_image(tmp_path / "a.tif")[..., 0], u16 / 65535, atol=1e-6)
    f = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    tifffile.imwrite(tmp_path / "f.tiff", f)
    np.testing.assert_allclose(read_image(tmp_path / "f.tiff")[..., 0], f)
    wide = np.array([[10.0, 20.0], [30.0, 50.0]], np.float32)  # outside [0,1] -> min-max
    tifffile.imwrite(tmp_path / "w.tif", wide)
    np.testing.assert_allclose(read_image(tmp_path / "w.tif")[..., 0], (wide - 10) / 40)


def test_read_jpeg(tmp_path):
    img = np.full((8, 8, 3), 128, np.uint8)
    iio.imwrite(tmp_path / "a.jpg", img)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (8, 8, 3) and abs(out.mean() - 128 / 255) < 0.02


def test_stack_is_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((7, 16, 16), np.uint8))
    with pytest.raises(InputError, match="3-D stack"):
        read_image(tmp_path / "stack.tif")


def test_corrupt_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="bad.png"):
        read_image(tmp_path / "bad.png")


@pytest.mark.parametrize("fg", [255, 1, True])
def test_binary_masks(fg):
    m = np.zeros((5, 5), np.uint8 if fg is not True else bool)
    m[1:3, 1:3] = fg
    info = classify_mask(m)
    assert info.kind == "binary"
    assert info.mask.dtype == bool and info.mask.sum() == 4


def test_label_mask():
    m = np.zeros((10, 10), np.uint16)
    m[1:3, 1:3] = 1
    m[5:8, 5:8] = 2
    m[1:3, 6:9] = 3
    info = classify_mask(m)
    assert info.kind == "label"
    assert info.mask.sum() == 4 + 9 + 6
    assert set(np.unique(info.labels)) == {0, 1, 2, 3}


def test_soft_mask_thresholded_at_half_max():
    yy, xx = np.mgrid[:21, :21]
    d = np.hypot(yy - 10, xx - 10)
    soft = (np.clip(6 - d, 0, 1) * 255).astype(np.uint8)  # plateau with a one-px ramp
    info = classify_mask(soft)
    assert info.kind == "soft" and info.soft
    np.testing.assert_array_equal(info.mask, soft >= 127.5)
    f = soft.astype(np.float32) / 255
    assert classify_mask(f).kind == "soft"


def test_mask_with_noise_values_is_rejected(rng):
    m = rng.choice(np.array([0, 50, 255], np.uint8), size=(20, 20))
    with pytest.raises(InputError, match="neither instance labels"):
        classify_mask(m, "m.png")


def test_find_pairs_ok_and_unknown_extension_warns(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    _pair(tmp_path, "a", img, np.zeros((8, 8), np.uint8))
    _pair(tmp_path, "b", img, np.zeros((8, 8), np.uint8), img_ext=".tif", mask_ext=".tif")
    (tmp_path / "images" / "notes.txt").write_text("x")
    with pytest.warns(BeadsegWarning, match="notes.txt"):
        pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["a", "b"]


def test_find_pairs_lists_unpaired_names(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    _pair(tmp_path, "a", img, np.zeros((8, 8), np.uint8))
    iio.imwrite(tmp_path / "images" / "lonely_image.png", img)
    iio.imwrite(tmp_path / "masks" / "lonely_mask.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError) as e:
        find_pairs(tmp_path)
    assert "lonely_image" in str(e.value) and "lonely_mask" in str(e.value)


def test_find_pairs_empty_and_missing_folders(tmp_path):
    with pytest.raises(InputError, match="no images/ and no masks/"):
        find_pairs(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(InputError, match="hold no images"):
        find_pairs(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        find_pairs(tmp_path / "nope")


def test_size_mismatch(tmp_path):
    _pair(tmp_path, "a", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.uint8))
    with pytest.raises(InputError, match="same size"):
        read_pair(find_pairs(tmp_path)[0])


def test_write_roundtrip_and_atomic(tmp_path):
    m = np.zeros((6, 6), bool)
    m[2:4, 2:4] = True
    write_mask(tmp_path / "m.png", m)
    assert read_mask(tmp_path / "m.png").mask.tolist() == m.tolist()
    lab = np.zeros((6, 6), np.int64)
    lab[0, 0] = 70000
    write_labels(tmp_path / "l.tif", lab)
    assert tifffile.imread(tmp_path / "l.tif").dtype == np.uint32
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.png") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert not (tmp_path / "x.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_to_channels():
    g = np.zeros((2, 2, 1), np.float32)
    assert to_channels(g, 3).shape == (2, 2, 3)
    assert to_channels(np.zeros((2, 2, 3), np.float32), 1).shape == (2, 2, 1)
    with pytest.raises(InputError, match="expects 4"):
        to_channels(g, 4)


def test_read_labels_trusts_ids(tmp_path):
    from beadseg.core.masks import read_labels

    lab = np.zeros((6, 6), np.uint16)
    lab[0:3, 0:3] = 1
    lab[0:3, 3:6] = 2  # touching objects with many differing neighbours
    lab[3:6, 0:3] = 3
    tifffile.imwrite(tmp_path / "l.tif", lab)
    np.testing.assert_array_equal(read_labels(tmp_path / "l.tif"), lab)
    tifffile.imwrite(tmp_path / "f.tif", np.full((4, 4), 0.5, np.float32))
    with pytest.raises(InputError, match="non-integer"):
        read_labels(tmp_path / "f.tif")


def test_soft_mask_dilation_equals_scipy():
    from scipy import ndimage as ndi

    from beadseg.core.masks import _dilate_cross

    rng = np.random.default_rng(3)
    for shape, p in (((1, 1), 0.5), ((9, 13), 0.2), ((64, 80), 0.02)):
        m = rng.random(shape) < p
        for it in (1, 3):
            assert np.array_equal(_dilate_cross(m, it), ndi.binary_dilation(m, iterations=it))


def test_column_csv_rounds_floats_and_keeps_integers(tmp_path):
    import csv

    cols = {
        "id": np.array([1, 2], np.int32),
        "x": np.array([0.12345, 2.5], np.float32),
        "n": np.array([3, 4]),
    }
    rows = list(csv.DictReader(open(write_columns_csv(tmp_path / "t.csv", cols))))
    assert rows == [{"id": "1", "x": "0.123", "n": "3"}, {"id": "2", "x": "2.5", "n": "4"}]
    empty = {k: v[:0] for k, v in cols.items()}
    assert open(write_columns_csv(tmp_path / "e.csv", empty)).read().strip() == "id,x,n"
