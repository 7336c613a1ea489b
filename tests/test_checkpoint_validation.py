"""Checkpoints and ONNX files are checked when they are loaded: a record that would give wrong
beads (a threshold of 5 marks none, integer weights find none) or fail image by image is
refused in one line naming the file, the value and the fix; nothing is predicted."""

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beadseg.cli.app import main
from beadseg.core.config import InstanceConfig, ModelConfig
from beadseg.core.errors import InputError
from beadseg.core.images import write_image
from beadseg.core.normalization import normalize_image
from beadseg.data.synth import synth_image
from beadseg.models import build_model
from beadseg.models.checkpoint import CHECKPOINT_FORMAT, DEFAULT_MODEL, meta_problem, save_checkpoint
from beadseg.models.onnx import export_onnx, onnx_path

RETRAIN = "train again"
REEXPORT = "beadseg export CHECKPOINT --format onnx"


@pytest.fixture(scope="module")
def shipped():
    return torch.load(DEFAULT_MODEL, map_location="cpu", weights_only=True)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in" / "beads.png"
    write_image(path, synth_image(96, 30, seed=2).image)
    return path


def predict(model, image, out):
    """Exit code and stderr lines of `beadseg predict MODEL IMAGE --out OUT`."""
    with pytest.raises(SystemExit) as e:
        main(["predict", str(model), str(image), "--out", str(out), "--quiet"])
    return e.value.code


def assert_refused(code, capsys, out, needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    assert not (out / "counts.csv").exists()


def _with_meta(shipped, **changes):
    return {**shipped, "meta": {**shipped["meta"], **changes}}


CHECKPOINTS = {
    "threshold-5": (lambda s: _with_meta(s, threshold=5.0), ["meta.threshold is 5.0", "between 0 and 1"]),
    "threshold-text": (lambda s: _with_meta(s, threshold="high"), ["meta.threshold is 'high'"]),
    "int32-weights": (
        lambda s: {**s, "model_state": {k: v.to(torch.int32) for k, v in s["model_state"].items()}},
        ["is int32, not floating point"],
    ),
    "in-channels-text": (lambda s: _with_meta(s, in_channels="three"), ["meta.in_channels is 'three'"]),
    "in-channels-0": (lambda s: _with_meta(s, in_channels=0), ["meta.in_channels is 0"]),
    "normalization-unknown": (
        lambda s: _with_meta(s, normalization={"method": "magic"}),
        ["meta.normalization", "'magic'"],
    ),
    "normalization-text": (lambda s: _with_meta(s, normalization="background"), ["meta.normalization is"]),
    "normalization-gain-text": (
        lambda s: _with_meta(s, normalization={**s["meta"]["normalization"], "gain": "x"}),
        ["meta.normalization.gain is 'x'"],
    ),
    "normalization-incomplete": (
        lambda s: _with_meta(s, normalization={"method": "background", "level": 0.5}),
        ["lacks bins, gain, sample_px"],
    ),
    "instances-unknown-method": (
        lambda s: _with_meta(s, instances={"method": "nope"}),
        ["meta.instances.method is 'nope'"],
    ),
    "instances-text": (lambda s: _with_meta(s, instances="auto"), ["meta.instances is 'auto'"]),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINTS))
def test_a_damaged_checkpoint_is_refused_on_load(case, shipped, image, tmp_path, capsys):
    make, needles = CHECKPOINTS[case]
    path = tmp_path / f"{case}.pt"
    torch.save(make(shipped), path)  # no ONNX file beside it: the checkpoint itself is loaded
    code = predict(path, image, tmp_path / "out")
    assert_refused(code, capsys, tmp_path / "out", [f"{case}.pt", *needles, RETRAIN])


def _edit_onnx(src, dst, meta_changes=None, props=None):
    import onnx

    proto = onnx.load(str(src))
    for p in proto.metadata_props:
        if p.key == "beadseg.meta" and meta_changes:
            meta = json.loads(p.value)
            for key, value in meta_changes.items():
                node = meta
                *parents, last = key.split(".")
                for parent in parents:
                    node = node[parent]
                node[last] = value
            p.value = json.dumps(meta)
        if props and p.key in props:
            p.value = props[p.key]
    onnx.save(proto, str(dst))
    return dst


def _one_output_onnx(tmp_path):
    """An ONNX export of a small network without the centre head (1 output channel)."""
    cfg = ModelConfig(base_channels=4, depth=2, centre_head=False)
    ckpt = tmp_path / "plain" / "best.pt"
    save_checkpoint(
        ckpt,
        {
            "format": CHECKPOINT_FORMAT,
            "model_state": build_model(cfg, 3).state_dict(),
            "meta": {"model": cfg.model_dump(), "in_channels": 3, "threshold": 0.5},
        },
    )
    return export_onnx(ckpt)


ONNX_FILES = {
    # the shipped network, its threshold edited
    "threshold-5": (
        lambda t: _edit_onnx(onnx_path(DEFAULT_MODEL), t / "threshold-5.onnx", {"threshold": 5.0}),
        ["meta.threshold is 5.0"],
    ),
    # one output channel, metadata claiming a centre head as well
    "centre-head-claimed": (
        lambda t: _edit_onnx(
            _one_output_onnx(t),
            t / "centre-head-claimed.onnx",
            {"model.centre_head": True},
            {"beadseg.outputs": '["foreground", "centres"]'},
        ),
        ["gives 1 output channels", "metadata says 3 and 2 (foreground, centres)"],
    ),
    # a graph for RGB whose metadata says grey images
    "input-channels": (
        lambda t: _edit_onnx(_one_output_onnx(t), t / "input-channels.onnx", {"in_channels": 1}),
        ["takes 3 input", "metadata says 1"],
    ),
    "outputs-disagree": (
        lambda t: _edit_onnx(
            _one_output_onnx(t), t / "outputs-disagree.onnx", props={"beadseg.outputs": '["centres"]'}
        ),
        ["beadseg.outputs ['centres'] disagree"],
    ),
}


@pytest.mark.parametrize("case", sorted(ONNX_FILES))
def test_a_damaged_onnx_file_is_refused_on_load(case, image, tmp_path, capsys):
    make, needles = ONNX_FILES[case]
    path = make(tmp_path)
    code = predict(path, image, tmp_path / "out")
    assert_refused(code, capsys, tmp_path / "out", [f"{case}.onnx", *needles, REEXPORT])


def test_a_grey_model_segments_colour_images_with_either_engine(tmp_path, image):
    # a model trained on 1-channel images: colour images are made grey, the same with ONNX
    # Runtime and torch
    from beadseg.core.config import PredictConfig
    from beadseg.core.images import read_image
    from beadseg.inference import load_model, segment_image

    cfg = ModelConfig(base_channels=4, depth=2)
    torch.manual_seed(0)
    net = build_model(cfg, 1)
    net(torch.rand(4, 1, 32, 32))  # BatchNorm statistics that are not the identity
    ckpt = save_checkpoint(
        tmp_path / "grey" / "best.pt",
        {
            "format": CHECKPOINT_FORMAT,
            "model_state": net.state_dict(),
            "meta": {"model": cfg.model_dump(), "in_channels": 1, "threshold": 0.5},
        },
    )
    export_onnx(ckpt)
    rgb = read_image(image)
    assert rgb.shape[-1] == 3
    by_onnx = load_model(ckpt, "cpu")
    by_torch = load_model(ckpt, "cpu", runtime="torch")
    assert (by_onnx.runtime, by_torch.runtime) == ("onnxruntime", "torch")
    p_onnx = segment_image(by_onnx, rgb, PredictConfig(mode="full"))[0]
    p_torch = segment_image(by_torch, rgb, PredictConfig(mode="full"))[0]
    np.testing.assert_allclose(p_onnx, p_torch, atol=1e-4)


def test_the_shipped_model_and_its_onnx_file_pass_their_own_checks(tmp_path, image):
    assert predict("default", image, tmp_path / "out") in (0, None)
    assert (tmp_path / "out" / "counts.csv").exists()


# ----------------------------------------------------------------------------- any record

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(0, 3), max_size=2),
)


def plausible(good):
    """Mostly values a record could hold (9 in 10), sometimes anything."""
    return st.integers(0, 9).flatmap(lambda i: values if i == 9 else good)


def _record(method):
    """A normalisation record of ``method`` with every parameter, each plausible or not."""
    from beadseg.core.normalization import DEFAULTS

    good = {"bins": st.integers(2, 512), "sample_px": st.integers(1, 10**6), "level": st.floats(-1, 1)}
    good.update(gain=st.floats(0.01, 10), low=st.floats(0, 50), high=st.floats(50, 100))
    return st.fixed_dictionaries(
        {"method": st.just(method), **{k: plausible(good[k]) for k in DEFAULTS[method]}}
    )


normalizations = st.one_of(
    st.none(),
    st.sampled_from(["background", "percentile", "dtype_max"]).flatmap(_record),
    st.sampled_from(["background", "percentile", "dtype_max"]).flatmap(_record),
    st.fixed_dictionaries(
        {"method": st.sampled_from(["background", "percentile", "magic"])},
        optional={k: st.floats(0, 300) for k in ("level", "gain", "bins", "low", "extra")},
    ),
    values,
)
instances = plausible(
    st.fixed_dictionaries(
        {},
        optional={
            "method": plausible(st.sampled_from(["auto", "distance", "centre_peaks"])),
            "min_area_px": plausible(st.integers(0, 50)),
            "split_touching": plausible(st.booleans()),
        },
    )
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    threshold=plausible(st.floats(0, 1, exclude_min=True, exclude_max=True)),
    in_channels=plausible(st.integers(1, 4)),
    depth=plausible(st.integers(1, 4)),
    normalization=normalizations,
    inst=instances,
)
def test_any_meta_record_is_usable_or_named_in_one_line(threshold, in_channels, depth, normalization, inst):
    meta = {
        "model": {"name": "unet", "depth": depth},
        "in_channels": in_channels,
        "threshold": threshold,
        "normalization": normalization,
        "instances": inst,
    }
    problem = meta_problem(meta)  # never raises
    if problem is not None:
        assert isinstance(problem, str) and "\n" not in problem and problem.startswith("meta.")
        return
    # what the loaders do with an accepted record works
    assert 0 < float(meta["threshold"]) < 1 and int(meta["in_channels"]) >= 1
    InstanceConfig(**inst)
    tile = np.full((16, 16, 3), 120, np.uint8)
    tile[4:8, 4:8] = 60
    try:
        y = normalize_image(tile, normalization)
    except InputError:
        return  # an image the record cannot scale is refused as such
    assert y.dtype == np.float32 and y.shape == tile.shape and np.isfinite(y).all()


def test_a_refused_record_raises_input_error_naming_the_file(tmp_path):
    from beadseg.models.checkpoint import check_meta

    with pytest.raises(InputError, match=r"^m\.pt: meta\.threshold is 1\.0, .*; train again"):
        check_meta({"model": {"depth": 2}, "in_channels": 3, "threshold": 1.0}, "m.pt")
