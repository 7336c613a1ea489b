"""A checkpoint as a bioimage.io model package: ``rdf.yaml``, ONNX and TorchScript weights, a test
input and its expected output, a cover image and a model card (``README.md``), zipped.

deepImageJ, ilastik, BiaPy and the bioimage.io tools (``bioimageio.core``) run the package. What
they compute is the network's bead probability (channel ``foreground``; ``centres`` too for a
model with a centre head); beadseg's threshold and instance settings are stated in the model card
and in ``config.beadseg`` of the rdf, since bioimage.io has no watershed post-processing.

Preprocessing: beadseg's input normalisation (:func:`beadseg.models.onnx.input_normalization`)
written in bioimage.io's vocabulary where it exists there (``dtype_max``, ``percentile``, see
:func:`preprocessing_steps`); the ``background`` normalisation has no equivalent there and is
computed inside the graphs instead (:mod:`beadseg.integrations.export.graph_normalization`), which then take
raw intensities.

Needs ``bioimageio.spec`` (``pip install 'beadseg[bioimageio]'``) and torch.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from ... import __version__
from ...core.errors import InputError
from ...core.images import to_grey
from ...core.portable import strip_machine_paths
from ...models.onnx import OPSET, input_normalization, output_channels
from .model_card import model_card

TEST_SIDE = 256  # px of the test tile
UNET_DOI = "10.1007/978-3-319-24574-4_28"  # Ronneberger et al. 2015, the architecture


def _spec():
    try:
        from bioimageio.spec.model import v0_5
    except ImportError:
        raise InputError(
            "exporting a bioimage.io package needs bioimageio.spec: pip install 'beadseg[bioimageio]'"
        ) from None
    return v0_5


def receptive_radius(net, in_channels: int, depth: int) -> int:
    """How far (px) an input pixel reaches into the output, measured with autograd: the extent
    of the non-zero gradient of one output pixel, over three random inputs."""
    import torch

    side = max(256, 16 * 2**depth)
    g = torch.Generator().manual_seed(0)
    reach = 0
    for _ in range(3):
        x = torch.rand(1, in_channels, side, side, generator=g, requires_grad=True)
        net(x)[0, 0, side // 2, side // 2].backward()
        rows, cols = np.nonzero(x.grad.abs().sum(1)[0].numpy())
        reach = max(reach, int(np.abs(rows - side // 2).max()), int(np.abs(cols - side // 2).max()))
    return reach


def preprocessing_steps(norm: dict, v0_5) -> tuple[str, list]:
    """(input dtype, bioimage.io preprocessing) equal to beadseg's normalisation ``norm``.

    ``dtype_max``: 8-bit input divided by 255 (``scale_linear``). ``percentile``:
    ``scale_range`` over channels and space with the same percentiles (beadseg takes them from a
    subsample of ~0.26 MP; identical for tiles up to 512 x 512). ``background``: a cast to
    float32 only; the graph normalises (:func:`network_for_package`).

    Raises
    ------
    InputError
        A normalisation method beadseg does not know.
    """
    # ensure_dtype first and last: without the last one bioimage.io casts the result back to
    # the input's dtype (uint8)
    to_float = v0_5.EnsureDtypeDescr(kwargs=v0_5.EnsureDtypeKwargs(dtype="float32"))
    method = norm.get("method")
    if method == "dtype_max":
        scale = v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=1 / 255, offset=0.0))
        return "uint8", [to_float, scale, to_float]
    if method == "percentile":
        axes = [v0_5.AxisId("channel"), v0_5.AxisId("y"), v0_5.AxisId("x")]
        kwargs = v0_5.ScaleRangeKwargs(axes=axes, min_percentile=norm["low"], max_percentile=norm["high"])
        return "uint8", [to_float, v0_5.ScaleRangeDescr(kwargs=kwargs), to_float]
    if method == "background":
        return "uint8", [to_float]
    raise InputError(f"normalisation {method!r} has no bioimage.io equivalent in this version of beadseg")


def _apply_preprocessing(raw: np.ndarray, norm: dict) -> np.ndarray:
    """What bioimage.io's steps of :func:`preprocessing_steps` make of ``raw`` (float32)."""
    x = raw.astype(np.float32)
    if norm["method"] == "background":
        return x  # normalised inside the graph
    if norm["method"] == "dtype_max":
        return x * np.float32(1 / 255)
    lo, hi = np.percentile(x, [norm["low"], norm["high"]])
    return ((x - lo) / (hi - lo + 1e-6)).astype(np.float32)  # bioimage.io's scale_range eps


def network_for_package(net, meta: dict):
    """The graph of the package: ``net`` (the checkpoint's network as
    :func:`beadseg.models.onnx.inference_network` gives it) preceded by the input normalisation
    where bioimage.io's preprocessing cannot express it."""
    from torch import nn

    from .graph_normalization import normalization_module

    norm = normalization_module(input_normalization(meta))
    return net if norm is None else nn.Sequential(norm, net).eval()


def _test_input(in_channels: int) -> np.ndarray:
    """A synthetic 8-bit tile of beads (``1 x C x 256 x 256``, uint8)."""
    from ...data.synth import synth_image

    image = synth_image(TEST_SIDE, 60, seed=0, cluster_fraction=0.3).image
    if in_channels == 1:
        image = np.round(to_grey(image)[..., None]).astype(np.uint8)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None])


def _cover(raw: np.ndarray, maps: np.ndarray, meta: dict, path: Path) -> None:
    """A 2:1 cover: the test tile and the same tile with beadseg's bead outlines (``maps``: the
    network's ``K x H x W`` output, foreground and, with a centre head, bead centres)."""
    from ...core.beads import segment_instances
    from ...core.config import InstanceConfig
    from ...core.images import write_image
    from ...inference.overlay import OVERLAY_PALETTE, overlay

    rgb = raw[0].transpose(1, 2, 0)
    rgb = np.repeat(rgb, 3, -1) if rgb.shape[-1] == 1 else rgb
    labels = segment_instances(
        maps[0],
        maps[1] if len(maps) > 1 else None,
        InstanceConfig(**meta.get("instances", {})),
        float(meta.get("threshold", 0.5)),
    )
    outlined = OVERLAY_PALETTE[overlay(rgb.astype(np.float32) / 255, labels)]
    write_image(path, np.concatenate([rgb, outlined], axis=1))


def _where_normalised(norm: dict) -> str:
    from .graph_normalization import describe

    if norm.get("method") == "background":
        return describe(norm)
    return "written as this package's preprocessing (bioimage.io steps)"


def _tensors(v0_5, meta: dict, dtype: str, pre: list, halo: int, align: int, files: dict):
    """The input and output tensor descriptions."""
    names = (
        ["red", "green", "blue"]
        if meta["in_channels"] == 3
        else [f"c{i}" for i in range(meta["in_channels"])]
    )
    size = v0_5.ParameterizedSize(min=align * (-(-(2 * halo + 1) // align)), step=align)
    inp = v0_5.InputTensorDescr(
        id=v0_5.TensorId("image"),
        axes=[
            v0_5.BatchAxis(),
            v0_5.ChannelAxis(channel_names=[v0_5.Identifier(n) for n in names]),
            v0_5.SpaceInputAxis(id=v0_5.AxisId("y"), size=size),
            v0_5.SpaceInputAxis(id=v0_5.AxisId("x"), size=size),
        ],
        test_tensor=v0_5.FileDescr(source=files["input"]),
        sample_tensor=v0_5.FileDescr(source=files["sample"]),
        data=v0_5.IntervalOrRatioDataDescr(type=dtype),
        preprocessing=pre,
    )

    def space(axis: str):
        ref = v0_5.SizeReference(tensor_id=v0_5.TensorId("image"), axis_id=v0_5.AxisId(axis))
        return v0_5.SpaceOutputAxisWithHalo(id=v0_5.AxisId(axis), size=ref, halo=halo)

    out = v0_5.OutputTensorDescr(
        id=v0_5.TensorId("probabilities"),
        axes=[
            v0_5.BatchAxis(),
            v0_5.ChannelAxis(channel_names=[v0_5.Identifier(n) for n in output_channels(meta)]),
            space("y"),
            space("x"),
        ],
        test_tensor=v0_5.FileDescr(source=files["output"]),
        data=v0_5.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )
    return inp, out


def _describe(v0_5, src: Path, state: dict, files: dict, tensors: tuple):
    """The ModelDescr of the package."""
    import torch

    meta = state["meta"]
    m = meta["model"]
    return v0_5.ModelDescr(
        name=f"beadseg {m['name']} base {m['base_channels']} depth {m['depth']}",
        description="Microbead segmentation in brightfield microscopy: per-pixel bead probability "
        "(beadseg's threshold and watershed give bead instances and counts).",
        authors=[v0_5.Author(name="beadseg maintainers")],
        cite=[v0_5.CiteEntry(text="Ronneberger, Fischer, Brox. U-Net (MICCAI 2015)", doi=v0_5.Doi(UNET_DOI))],
        license=v0_5.LicenseId("MIT"),
        documentation=v0_5.FileDescr(source=files["card"]),
        covers=[v0_5.FileDescr(source=files["cover"])],
        tags=["beadseg", "microbeads", "brightfield", "segmentation", "unet", "2d", "onnx", "torchscript"],
        version=__version__,
        inputs=[tensors[0]],
        outputs=[tensors[1]],
        weights=v0_5.WeightsDescr(
            torchscript=v0_5.TorchscriptWeightsDescr(
                source=files["torchscript"], pytorch_version=v0_5.Version(torch.__version__.split("+")[0])
            ),
            onnx=v0_5.OnnxWeightsDescr(source=files["onnx"], opset_version=OPSET, parent="torchscript"),
        ),
        config={
            "beadseg": {
                "source": src.name,
                "meta": strip_machine_paths(json.loads(json.dumps(meta, default=str))),
            }
        },
    )


def _write_weights(net, meta: dict, x: np.ndarray, work: Path) -> tuple[Path, Path]:
    """``weights.onnx`` (with beadseg's metadata) and ``weights_torchscript.pt`` of ``net``."""
    import torch

    from ...models.onnx import _add_metadata, _doc_string, _trace_to_onnx, onnx_metadata

    align = 2 ** int(meta["model"]["depth"])
    onnx_file, ts_file = work / "weights.onnx", work / "weights_torchscript.pt"
    _trace_to_onnx(net, int(meta["in_channels"]), align, onnx_file)
    props = onnx_metadata(meta)
    props["beadseg.input"] = (
        "raw" if input_normalization(meta).get("method") == "background" else "preprocessed"
    )
    _add_metadata(onnx_file, props, _doc_string(meta))
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the traced-away padding branch, as in _trace_to_onnx
        torch.jit.trace(net, torch.from_numpy(x), check_trace=False).save(str(ts_file))
    return onnx_file, ts_file


def export_bioimageio(model: str | Path, out: str | Path | None = None) -> Path:
    """Write a model (run folder, checkpoint or ``default``) as a bioimage.io package (zip).

    Parameters
    ----------
    model : path or "default"
    out : path, optional
        The zip to write; default ``./<name>.bioimageio.zip``.

    Returns
    -------
    Path
        The package; ``bioimageio.core.test_model`` passes on it (tested).

    Raises
    ------
    InputError
        Not a checkpoint, bioimageio.spec missing, or a normalisation bioimage.io cannot express.
    """
    import onnxruntime as ort

    from ...core.files import atomic_path
    from ...models.checkpoint import is_shipped, load_checkpoint, resolve_model_path
    from ...models.onnx import inference_network

    v0_5 = _spec()
    src = resolve_model_path(model)
    stem = "beadseg-default" if is_shipped(src) else f"{src.parent.name}-{src.stem}"
    out = Path(out) if out is not None else Path.cwd() / f"{stem}.bioimageio.zip"
    state = load_checkpoint(src)
    meta = state["meta"]
    dtype, pre = preprocessing_steps(input_normalization(meta), v0_5)
    bare = inference_network(state, src)
    net = network_for_package(bare, meta)
    align = 2 ** int(meta["model"]["depth"])
    # the network's reach, without the normalisation (whose statistics see the whole input)
    halo = -(-receptive_radius(bare, meta["in_channels"], meta["model"]["depth"]) // align) * align
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        raw = _test_input(int(meta["in_channels"]))
        x = _apply_preprocessing(raw, input_normalization(meta))
        onnx_file, ts_file = _write_weights(net, meta, x, work)
        sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        prob = sess.run(None, {"image": x})[0]
        files = {"input": work / "test_input.npy", "output": work / "test_output.npy", "onnx": onnx_file}
        files.update(torchscript=ts_file, sample=work / "sample_input.tif", cover=work / "cover.png")
        files["card"] = work / "README.md"
        np.save(files["input"], raw)
        np.save(files["output"], prob)
        _sample_tiff(raw, files["sample"])
        _cover(raw, prob[0], meta, files["cover"])
        files["card"].write_text(model_card(src, state, halo, align, _where_normalised))
        descr = _describe(v0_5, src, state, files, _tensors(v0_5, meta, dtype, pre, halo, align, files))
        from bioimageio.spec import save_bioimageio_package

        with atomic_path(out) as tmp:
            save_bioimageio_package(descr, output_path=tmp.with_suffix(".zip"))
            tmp.with_suffix(".zip").replace(tmp)
    return out


def _sample_tiff(raw: np.ndarray, path: Path) -> None:
    """The test tile as an image file (``sample_tensor``: what a viewer shows): ``1 x C x H x W``,
    3 channels as RGB planes (the layout stated, so a tifffile release cannot change it)."""
    import tifffile

    if raw.shape[1] == 3:
        tifffile.imwrite(path, raw, photometric="rgb", planarconfig="separate")
    else:
        tifffile.imwrite(path, raw, photometric="minisblack")
