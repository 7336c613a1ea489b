"""The int8 network: `beadseg export --format int8`, and predict choosing it on CPUs only while
it was made from the checkpoint as it is now."""

import json
import shutil
import warnings

import numpy as np
import pytest
from helpers import assert_refused, run_cli

from beadseg.core.errors import BeadsegWarning, ConfigError, InputError
from beadseg.core.images import write_image
from beadseg.data.synth import synth_image
from beadseg.inference import load_model, segment_image
from beadseg.inference.merge import merge_runs
from beadseg.integrations.export import export_int8
from beadseg.integrations.export.int8 import head_nodes
from beadseg.models.checkpoint import (
    DEFAULT_MODEL,
    file_sha256,
    int8_path,
    load_checkpoint,
    onnx_path,
    save_checkpoint,
)
from beadseg.models.onnx import export_onnx
from beadseg.workflows import predict


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """The shipped model copied into a run folder with its ONNX file and an int8 file
    calibrated on three synthetic bead tiles."""
    tmp = tmp_path_factory.mktemp("int8")
    ckpt = tmp / "run" / "best.pt"
    ckpt.parent.mkdir()
    shutil.copy(DEFAULT_MODEL, ckpt)
    export_onnx(ckpt)
    for i in range(3):
        write_image(tmp / "calib" / f"320x_c{i}.png", synth_image(256, 80, seed=10 + i).image)
    result = export_int8(ckpt.parent, [tmp / "calib"])
    return ckpt, result


def test_the_int8_file_sits_beside_the_checkpoint_and_keeps_the_head_in_float(quantized):
    import onnx

    ckpt, result = quantized
    assert result.path == int8_path(ckpt) == ckpt.parent / "best.int8.onnx"
    assert (result.images, result.crops) == (3, 3)
    assert result.mask_agreement > 0.99, result
    proto = onnx.load(str(result.path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["beadseg.precision"] == "int8"
    assert props["beadseg.source_sha256"] == file_sha256(ckpt)
    assert json.loads(props["beadseg.calibration"])["crops"] == 3
    ops = {n.name: n.op_type for n in proto.graph.node}
    assert "QLinearConv" in ops.values()
    # the output head (its last convolution and the sigmoid) stays float32
    head = head_nodes(proto.graph)
    assert {ops[n] for n in head} >= {"Conv", "Sigmoid"}


def test_predict_runs_the_int8_file_on_cpus_and_float32_when_asked(quantized, tmp_path):
    ckpt, _ = quantized
    auto = load_model(ckpt, "cpu")
    f32 = load_model(ckpt, "cpu", precision="float32")
    assert (auto.precision, auto.runtime, f32.precision) == ("int8", "onnxruntime", "float32")
    assert auto.meta == f32.meta and auto.source == f32.source == str(ckpt)
    img = synth_image(300, 120, seed=3).image
    p8, lab8, _ = segment_image(auto, img)
    p32, lab32, _ = segment_image(f32, img)
    assert np.mean((p8 > 0.5) == (p32 > 0.5)) > 0.99
    assert abs(int(lab8.max()) - int(lab32.max())) <= 0.05 * lab32.max()
    assert load_model(ckpt, "cpu", runtime="torch").precision == "float32"  # torch: float weights


def test_int8_is_refused_where_it_cannot_run(quantized, tmp_path):
    ckpt, result = quantized
    with pytest.raises(ConfigError, match="int8 runs with ONNX Runtime"):
        load_model(ckpt, "cpu", runtime="torch", precision="int8")
    with pytest.raises(ConfigError, match="runs on the CPU"):
        load_model(ckpt, "cuda", precision="int8")
    with pytest.raises(ConfigError, match="precision"):
        load_model(ckpt, "cpu", precision="int4")
    with pytest.raises(ConfigError, match="is a int8 model"):
        load_model(result.path, precision="float32")
    assert load_model(result.path).precision == "int8"  # the file alone is a model too


def test_a_stale_int8_file_is_never_run(quantized, tmp_path):
    ckpt, _ = quantized
    run = tmp_path / "run"
    shutil.copytree(ckpt.parent, run)
    state = load_checkpoint(run / "best.pt")
    state["meta"]["threshold"] = 0.45  # the checkpoint changes; its float ONNX is made again
    save_checkpoint(run / "best.pt", state)
    export_onnx(run / "best.pt")
    with pytest.warns(BeadsegWarning, match="int8"):
        m = load_model(run, "cpu")
    assert m.precision == "float32" and m.threshold == 0.45
    with pytest.raises(InputError, match="--format int8 --calibration"):
        load_model(run, "cpu", precision="int8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float32 asked: the stale file is not looked at
        assert load_model(run, "cpu", precision="float32").precision == "float32"


def test_runs_record_the_precision_and_never_mix_it(quantized, tmp_path):
    ckpt, _ = quantized
    write_image(tmp_path / "in" / "320x_a.png", synth_image(128, 40, seed=5).image)
    out = tmp_path / "out"
    predict(ckpt.parent, [tmp_path / "in"], out, progress=False)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["precision"] == "int8"
    first = (out / "records" / "320x_a.json").read_text()
    # the same folder with float32: the frame is predicted again, never reused from int8
    from beadseg.core.config import PredictConfig

    f32 = tmp_path / "f32"
    predict(ckpt.parent, [tmp_path / "in"], f32, config=PredictConfig(precision="float32"), progress=False)
    assert json.loads((f32 / "settings.json").read_text())["precision"] == "float32"
    assert (
        json.loads(first)["settings_hash"]
        != json.loads((f32 / "records" / "320x_a.json").read_text())["settings_hash"]
    )
    with pytest.raises(InputError, match="precision"):
        merge_runs([out, f32], tmp_path / "merged")


def test_export_int8_needs_calibration_images(quantized, tmp_path):
    ckpt, _ = quantized
    assert_refused(run_cli("export", ckpt, "--format", "int8"), "--calibration")
    bare = tmp_path / "bare" / "best.pt"
    bare.parent.mkdir()
    shutil.copy(ckpt, bare)  # no ONNX file beside it
    (tmp_path / "c").mkdir()
    write_image(tmp_path / "c" / "a.png", synth_image(64, 10, seed=1).image)
    assert_refused(
        run_cli("export", bare, "--format", "int8", "--calibration", tmp_path / "c"), "beadseg export"
    )


def test_the_shipped_int8_file_matches_the_shipped_checkpoint():
    """A new default.pt needs its int8 file made and checked again (BENCHMARKS.md, "A cheaper
    network": python benchmarks/cheaper_network.py quantize default --install), or removed."""
    path = int8_path(DEFAULT_MODEL)
    if not path.is_file():
        pytest.skip("no int8 file is shipped")
    m = load_model(path)
    assert m.precision == "int8"
    assert (
        m.source_sha256 == file_sha256(DEFAULT_MODEL) == load_model(onnx_path(DEFAULT_MODEL)).source_sha256
    ), (
        "models/weights/default.int8.onnx was not made from default.pt: run "
        "`python benchmarks/cheaper_network.py quantize default --install` (or delete the file)"
    )
