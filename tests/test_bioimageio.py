"""`beadseg export --format bioimageio`: a package bioimage.io's own test passes offline, and the
exported ONNX file alone (numpy + onnxruntime + its metadata) reproduces predict's mask."""

import json
import socket
import zipfile

import numpy as np
import pytest

from beadseg.core.images import write_image
from beadseg.data.synth import synth_image


def _no_network(*args, **kwargs):
    raise OSError("network access in an offline test")


def test_package_passes_bioimageio_test_model_offline(tmp_path, monkeypatch):
    pytest.importorskip("bioimageio.core")
    from bioimageio.core import test_model

    from beadseg.integrations.export import export_model

    path = export_model("default", "bioimageio", tmp_path / "beads.zip")
    names = set(zipfile.ZipFile(path).namelist())
    assert {"rdf.yaml", "README.md", "cover.png", "test_input.npy", "test_output.npy"} <= names
    assert {"weights.onnx", "weights_torchscript.pt"} <= names
    card = zipfile.ZipFile(path).read("README.md").decode()
    for section in ("## Intended use", "## Training data", "## Validation", "centroid F1"):
        assert section in card
    monkeypatch.setattr(socket.socket, "connect", _no_network)  # offline from here on
    summary = test_model(path)
    failed = [(d.name, [e.msg[:200] for e in d.errors]) for d in summary.details if d.status != "passed"]
    assert summary.status == "passed", failed
    assert any("onnx" in d.name for d in summary.details)
    assert any("torchscript" in d.name for d in summary.details)


def background_normalised(x, norm):
    """docs/export.md's ``background`` scaling in numpy: y = level + gain * (x / b_c - 1), b_c the
    per-channel median of the pixels near the mode of the grey histogram (a 512-px tile is its
    own sample)."""
    grey = x.astype(np.float64).mean(-1)
    lo, hi = np.percentile(grey, [0.5, 99.5])
    hist, edges = np.histogram(grey, bins=norm["bins"], range=(lo, hi))
    r = np.arange(-12, 13)
    kernel = np.exp(-0.5 * (r / 3.0) ** 2)
    k = int(np.argmax(np.convolve(hist.astype(np.float64), kernel / kernel.sum(), "same")))
    mode = 0.5 * (edges[k] + edges[k + 1])
    b = np.median(x.astype(np.float64)[np.abs(grey - mode) <= (hi - lo) / 32], axis=0)
    gain = (norm["gain"] / b).astype(np.float32)
    return (x * gain + np.float32(norm["level"] - norm["gain"])).astype(np.float32)


def onnx_alone_mask(onnx_file, image_uint8):
    """beadseg's bead mask of an 8-bit H x W x 3 tile with nothing but numpy, onnxruntime and the
    file's metadata (what a user of the exported file would write)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    props = sess.get_modelmeta().custom_metadata_map
    norm = json.loads(props["beadseg.normalization"])
    assert norm["method"] == "background"  # the shipped model: relative to the background level
    x = background_normalised(image_uint8.astype(np.float32), norm)
    align = int(props["beadseg.align"])
    h, w = x.shape[:2]
    x = np.pad(x, ((0, -h % align), (0, -w % align), (0, 0)), mode="reflect")
    prob = sess.run(None, {"image": x.transpose(2, 0, 1)[None].copy()})[0][0, 0, :h, :w]
    return prob > float(props["beadseg.threshold"]), prob


def test_onnx_file_alone_reproduces_predicts_mask(tmp_path):
    import tifffile

    from beadseg.cli.app import main

    tile = synth_image((512, 512), 300, seed=5, cluster_fraction=0.3).image
    write_image(tmp_path / "in" / "640x_tile.png", tile)
    for args in (
        ["export", "default", "--format", "onnx", "--out", str(tmp_path / "beads.onnx")],
        ["predict", "default", str(tmp_path / "in"), "--out", str(tmp_path / "pred"), "--quiet"]
        + ["--save-probabilities", "--device", "cpu", "--precision", "float32"],
    ):
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code in (0, None)
    mask, prob = onnx_alone_mask(tmp_path / "beads.onnx", tile)
    predicted = tifffile.imread(tmp_path / "pred" / "probabilities" / "640x_tile.tif")
    assert np.abs(prob - predicted).max() < 1e-5
    np.testing.assert_array_equal(mask, predicted > 0.5)
    assert mask.mean() > 0.01  # a tile with beads
