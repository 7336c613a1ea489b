"""One image path: file -> canonical array -> the model's normalisation -> the model's channels
(beadseg.core.normalization.model_input), the same in training, prediction and the export."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import beadseg
from beadseg.core.config import PredictConfig
from beadseg.core.errors import InputError
from beadseg.core.files import find_pairs
from beadseg.core.images import to_grey
from beadseg.core.masks import write_mask
from beadseg.core.normalization import model_input, normalization_record
from beadseg.data.dataset import load_samples
from beadseg.data.synth import synth_image
from beadseg.inference.frames import infer_file

ONE_GREY_LEVEL = 1 / 255  # of the normalised range


def _frame(seed=3):
    """A grey 8-bit synthetic frame (H x W) and its bead mask."""
    s = synth_image(128, 30, seed=seed)
    return np.round(to_grey(s.image)).astype(np.uint8), s.mask


def _save_formats(folder: Path, grey: np.ndarray) -> dict[str, Path]:
    """The same frame as 8-bit PNG, 16-bit TIFF, 16-bit PNG, float32 TIFF in 0-1 and in 0-255."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / k for k in ("a_u8.png", "b_u16.tif", "c_u16.png", "d_f01.tif", "e_f255.tif")}
    Image.fromarray(grey).save(paths["a_u8.png"])
    tifffile.imwrite(paths["b_u16.tif"], grey.astype(np.uint16) * 257)
    Image.fromarray(grey.astype(np.uint16) * 257).save(paths["c_u16.png"])  # Pillow: 16-bit grey PNG
    tifffile.imwrite(paths["d_f01.tif"], grey.astype(np.float32) / 255)
    tifffile.imwrite(paths["e_f255.tif"], grey.astype(np.float32))
    return paths


class _Recording:
    """A loaded model that keeps every batch it is given (the network's input)."""

    def __init__(self, model):
        self._model, self.inputs = model, []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, batch):
        self.inputs.append(np.array(batch))
        return self._model(batch)


@pytest.fixture(scope="module")
def model():
    return beadseg.load_model("default")


def test_one_frame_in_five_formats_is_one_network_input_and_one_count(tmp_path, model):
    grey, mask = _frame()
    paths = _save_formats(tmp_path / "images", grey)
    for p in paths.values():
        write_mask(tmp_path / "masks" / f"{p.stem}.png", mask)
    assert Image.open(paths["c_u16.png"]).mode.startswith("I")  # really 16-bit

    # training: the load_samples path
    samples = load_samples(find_pairs(tmp_path), model.in_channels, normalization=model.normalization)
    trained = {s.name: s.image.astype(np.float32) for s in samples}
    # prediction: the infer_file path (what `beadseg predict` and evaluate run), as the network sees it
    predicted = {}
    for p in paths.values():
        rec = _Recording(model)
        infer_file(rec, p, PredictConfig())
        (batch,) = rec.inputs
        predicted[p.stem] = batch[0].transpose(1, 2, 0)
    ref = predicted["a_u8"]
    assert ref.shape == (128, 128, model.in_channels)
    for name in trained:
        np.testing.assert_allclose(trained[name], ref, atol=ONE_GREY_LEVEL, err_msg=f"training {name}")
        np.testing.assert_allclose(predicted[name], ref, atol=ONE_GREY_LEVEL, err_msg=f"prediction {name}")

    counts = {p.stem: int(beadseg.segment(model, p).labels.max()) for p in paths.values()}
    assert len(set(counts.values())) == 1, counts
    assert 20 <= counts["a_u8"] <= 40  # the frame has 30 beads


def test_network_input_of_an_array_is_that_of_its_file(tmp_path, model):
    grey, _ = _frame(seed=5)
    path = _save_formats(tmp_path, grey)["e_f255.tif"]
    from_file = model_input(path, model.normalization, model.in_channels)
    from_array = model_input(grey.astype(np.float32), model.normalization, model.in_channels)
    np.testing.assert_array_equal(from_file, from_array)
    seg = beadseg.segment(model, grey.astype(np.float32))
    np.testing.assert_array_equal(seg.image, from_file)  # Segmentation.image: what the network saw


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0, 3), (7,), (2, 8, 8, 3)])
def test_segment_refuses_arrays_without_one_2d_image(model, shape):
    with pytest.raises(InputError, match=rf"shape \({shape[0]},") as e:
        beadseg.segment(model, np.zeros(shape, np.uint8))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("scale", [1e-30, 1e30, 1e-300, 1e300])
def test_huge_and_tiny_float_images_normalise_like_8_bit(model, scale):
    grey, _ = _frame()
    ref = model_input(grey, model.normalization, 1)
    for dtype in (np.float32, np.float64):
        with np.errstate(over="ignore", under="ignore"):
            x = (grey.astype(np.float64) * scale).astype(dtype)
        if not (np.isfinite(x).all() and np.any(x)):
            continue  # beyond the dtype (float32 at 1e300, 1e-300)
        for rec in (model.normalization, normalization_record("percentile")):
            y = model_input(x, rec, 1)
            assert np.isfinite(y).all()
            np.testing.assert_allclose(y, model_input(grey, rec, 1), atol=1e-5)
        np.testing.assert_allclose(model_input(x, model.normalization, 1), ref, atol=1e-5)
    if scale in (1e-30, 1e30):
        seg = beadseg.segment(model, (grey * scale).astype(np.float32))
        assert seg.labels.max() == beadseg.segment(model, grey).labels.max() > 0


def test_float_image_with_pixels_beyond_float32_is_refused_not_nan():
    x = np.full((16, 16), 100.0)
    x[0, 0] = 1e300  # a hot pixel 1e298 times the background
    with pytest.raises(InputError, match="1e38"):
        model_input(x, None, 1)


def test_model_input_adapts_channels_and_names_the_image():
    grey = np.full((8, 8), 100, np.uint8)
    assert model_input(grey, None, 3).shape == (8, 8, 3)
    rgb = np.full((8, 8, 3), 100, np.uint8)
    assert model_input(rgb, None, 1).shape == (8, 8, 1)
    with pytest.raises(InputError, match="frame.png has shape"):
        model_input(np.zeros((3, 8, 8, 2)), None, 1, "frame.png")


def test_exported_graph_normalises_as_model_input():
    torch = pytest.importorskip("torch")
    from beadseg.integrations.export.graph_normalization import normalization_module

    rgb = synth_image(96, 20, seed=2).image
    record = normalization_record("background")
    graph = normalization_module(record)
    for image in (rgb, rgb.astype(np.uint16) * 257, rgb.astype(np.float32) * 7.5):
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]).astype(np.float64))
        got = graph(x)[0].numpy().transpose(1, 2, 0)
        np.testing.assert_allclose(got, model_input(image, record, 3), atol=1e-5)
    grey = to_grey(rgb)
    x = torch.from_numpy(np.repeat(grey[None, None], 3, axis=1).astype(np.float64))  # grey as RGB
    np.testing.assert_allclose(
        graph(x)[0].numpy().transpose(1, 2, 0), model_input(grey, record, 3), atol=1e-5
    )
