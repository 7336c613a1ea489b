"""ONNX export and the ONNX Runtime inference path (no torch)."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from beadseg.core.config import InstanceConfig, ModelConfig, PredictConfig
from beadseg.core.errors import BeadsegWarning, ConfigError, InputError
from beadseg.core.images import write_image
from beadseg.data.synth import synth_image
from beadseg.inference import OnnxModel, load_model, segment_image
from beadseg.inference.torch_model import LoadedModel
from beadseg.models import build_model
from beadseg.models.checkpoint import CHECKPOINT_FORMAT, DEFAULT_MODEL, save_checkpoint
from beadseg.models.onnx import export_onnx, onnx_path, write_onnx_beside


def _tiny_checkpoint(path, **meta):
    """A checkpoint of a small UNet whose BatchNorm statistics are not the identity."""
    torch.manual_seed(0)
    cfg = ModelConfig(base_channels=4, depth=2)
    net = build_model(cfg, 3)
    net.train()
    net(torch.rand(4, 3, 32, 32))
    state = {
        "format": CHECKPOINT_FORMAT,
        "model_state": net.state_dict(),
        "meta": {"model": cfg.model_dump(), "in_channels": 3, "threshold": 0.5, **meta},
    }
    return save_checkpoint(path, state)


@pytest.fixture
def shipped_copy(tmp_path):
    """The shipped (trained) model copied into tmp_path, with its ONNX file exported there."""
    ckpt = tmp_path / "model" / "best.pt"
    ckpt.parent.mkdir()
    shutil.copy(DEFAULT_MODEL, ckpt)
    export_onnx(ckpt)
    return ckpt


def test_onnx_and_torch_paths_give_the_same_masks(shipped_copy):
    onnx_m = load_model(shipped_copy, "cpu")
    torch_m = load_model(shipped_copy, "cpu", runtime="torch")
    assert isinstance(onnx_m, OnnxModel) and isinstance(torch_m, LoadedModel)
    assert (onnx_m.threshold, onnx_m.instances, onnx_m.meta) == (
        torch_m.threshold,
        torch_m.instances,
        torch_m.meta,
    )
    img = (synth_image((150, 203), 120, seed=4, cluster_fraction=0.4).image / 255).astype(np.float32)
    for cfg in (PredictConfig(mode="full"), PredictConfig(mode="tiled", tile_size=64, overlap=32)):
        p_onnx, lab_onnx, _ = segment_image(onnx_m, img, cfg)
        p_torch, lab_torch, _ = segment_image(torch_m, img, cfg)
        assert np.abs(p_onnx - p_torch).max() < 1e-4
        assert lab_torch.max() > 20  # the shipped model finds the beads
        np.testing.assert_array_equal(lab_onnx, lab_torch)


def test_metadata_holds_what_inference_needs(tmp_path):
    import onnxruntime as ort

    norm = {"method": "background", "level": 0.5, "gain": 1.0, "bins": 256, "sample_px": 262144}
    fingerprint = {"n_images": 3, "grey_median": [0.4, 0.41]}
    ckpt = _tiny_checkpoint(
        tmp_path / "m.pt",
        threshold=0.3,
        instances={"min_area_px": 5, "min_distance_px": 2},
        normalization=norm,
        fingerprint=fingerprint,
    )
    path = export_onnx(ckpt)
    assert path == tmp_path / "m.onnx"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    props = sess.get_modelmeta().custom_metadata_map
    assert float(props["beadseg.threshold"]) == 0.3
    assert json.loads(props["beadseg.normalization"]) == norm
    assert json.loads(props["beadseg.instances"]) == {"min_area_px": 5, "min_distance_px": 2}
    assert json.loads(props["beadseg.fingerprint"]) == fingerprint
    assert json.loads(props["beadseg.outputs"]) == ["foreground"]
    assert int(props["beadseg.align"]) == 4
    m = load_model(path)  # the .onnx file alone is a model
    assert m.threshold == 0.3 and m.instances == InstanceConfig(min_area_px=5, min_distance_px=2)
    assert m.meta["normalization"] == norm
    x = np.random.default_rng(0).random((2, 3, 36, 44), dtype=np.float32)  # H, W not multiples of 4
    with torch.no_grad():
        ref = torch.sigmoid(load_model(ckpt, runtime="torch").net(torch.from_numpy(x)))[:, 0].numpy()
    assert np.abs(m(x) - ref).max() < 1e-5


def test_a_stale_onnx_file_is_never_run(tmp_path):
    ckpt = _tiny_checkpoint(tmp_path / "best.pt")
    export_onnx(ckpt)
    assert isinstance(load_model(ckpt, "cpu"), OnnxModel)
    _tiny_checkpoint(ckpt, threshold=0.7)  # the checkpoint changes after the export
    with pytest.warns(BeadsegWarning, match="not made from"):
        m = load_model(ckpt, "cpu")
    assert isinstance(m, LoadedModel) and m.threshold == 0.7
    with pytest.raises(InputError, match="no up-to-date ONNX file"):
        load_model(ckpt, "cpu", runtime="onnx")
    onnx_path(ckpt).write_bytes(b"garbage")
    with pytest.warns(BeadsegWarning, match="cannot load ONNX model"):
        assert isinstance(load_model(ckpt, "cpu"), LoadedModel)


def test_onnx_model_refuses_gpu_and_torch(tmp_path):
    path = export_onnx(_tiny_checkpoint(tmp_path / "m.pt"), tmp_path / "copy.onnx")
    with pytest.raises(ConfigError, match="ONNX model"):
        load_model(path, "cuda")
    with pytest.raises(ConfigError, match="ONNX model"):
        load_model(path, runtime="torch")
    with pytest.raises(ConfigError, match="runtime"):
        load_model(path, runtime="tensorrt")
    with pytest.raises(InputError, match="is the model being exported"):
        export_onnx(tmp_path / "m.pt", tmp_path / "m.pt")


def test_a_failed_export_warns_and_keeps_going(tmp_path):
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.warns(BeadsegWarning, match="could not write the ONNX file"):
        assert write_onnx_beside(bad) is None
    assert not onnx_path(bad).exists()


def test_predict_with_onnx_never_imports_torch(shipped_copy, tmp_path):
    write_image(tmp_path / "in" / "320x_a.png", synth_image(96, 20, seed=1).image)
    script = textwrap.dedent(
        f"""
        import sys
        from beadseg.cli import main
        try:
            main(["predict", {str(shipped_copy.parent)!r}, {str(tmp_path / "in")!r}, "--out",
                  {str(tmp_path / "out")!r}, "--device", "cpu", "--quiet"])
        except SystemExit as e:
            assert not e.code, e.code
        print("torch imported:", "torch" in sys.modules)
        print("matplotlib imported:", "matplotlib" in sys.modules)
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "torch imported: False" in r.stdout
    assert "matplotlib imported: False" in r.stdout  # overlays are drawn with numpy and Pillow
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["runtime"] == "onnxruntime" and settings["model"] == str(shipped_copy)


def test_export_command(tmp_path):
    from beadseg.cli.app import main

    ckpt = _tiny_checkpoint(tmp_path / "run" / "best.pt")
    with pytest.raises(SystemExit) as done:
        main(["export", str(ckpt.parent), "--format", "onnx"])
    assert done.value.code in (0, None) and (tmp_path / "run" / "best.onnx").is_file()
    with pytest.raises(SystemExit) as done:
        main(["export", str(ckpt), "--format", "tflite"])
    assert done.value.code == 2
