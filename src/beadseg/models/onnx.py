"""A checkpoint as an ONNX file: the network, BatchNorm folded, a sigmoid on its outputs, and
everything inference needs in the file's metadata.

The graph (opset 17) maps a float32 ``N x C x H x W`` batch, already normalised (see
:func:`input_normalization`), to ``N x K x H x W`` probabilities: channel 0 is the bead
foreground, channel 1 (models with a centre head) the bead-centre map. ``N``, ``H`` and ``W`` are
dynamic; ``H`` and ``W`` must be multiples of ``2**depth`` (``beadseg.align`` in the metadata):
beadseg pads frames itself (:func:`beadseg.inference.tiling.pad_to_multiple`), so the graph
carries no padding logic.

Metadata (``metadata_props``, strings; JSON where structured):

``beadseg.meta``            the checkpoint's ``meta`` (the one record :mod:`beadseg.inference`
                            reads: architecture, threshold, instance settings, normalisation,
                            training-data fingerprint, ...)
``beadseg.outputs``         names of the output channels, e.g. ``["foreground"]``
``beadseg.align``           H and W must be multiples of this
``beadseg.threshold``, ``beadseg.normalization``, ``beadseg.instances``, ``beadseg.fingerprint``
                            copies of those meta entries, for people and other tools (Netron,
                            ``onnx.load(...).metadata_props``)
``beadseg.source_sha256``   SHA-256 of the checkpoint file it was made from: an ONNX file beside
                            a checkpoint is used only while the two match
``beadseg.format``, ``beadseg.version``

Exporting needs torch and the ``onnx`` package; running the file needs only onnxruntime.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.errors import InputError
from .checkpoint import ONNX_FORMAT, file_sha256, onnx_path

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
#: the mismatch (max abs difference of probabilities) between torch and ONNX Runtime that an
#: export tolerates; measured ~4e-6 on the shipped model
MAX_EXPORT_DIFF = 1e-4


def input_normalization(meta: dict) -> dict:
    """The input normalisation a checkpoint's network was trained with: ``meta["normalization"]``,
    or - for checkpoints without that record - ``{"method": "dtype_max"}`` (integers divided by
    their dtype's maximum, floats in [0, 1] kept). The one place exports read it."""
    return dict(meta.get("normalization") or {"method": "dtype_max"})


def output_channels(meta: dict) -> list[str]:
    """Names of the network's output channels, in order: ``foreground`` (and ``centres`` for a
    model trained with a centre head)."""
    return ["foreground", "centres"] if meta.get("model", {}).get("centre_head") else ["foreground"]


def onnx_metadata(meta: dict, source_sha256: str | None = None) -> dict[str, str]:
    """The ``metadata_props`` of an exported model (see the module docstring); absolute paths in
    ``meta`` are recorded as folder names (:func:`beadseg.core.files.strip_machine_paths`)."""
    from ..core.portable import strip_machine_paths
    from ..outputs.provenance import to_jsonable

    meta = strip_machine_paths(to_jsonable(meta))
    props = {
        "beadseg.format": ONNX_FORMAT,
        "beadseg.version": __version__,
        "beadseg.meta": json.dumps(meta, sort_keys=True),
        "beadseg.outputs": json.dumps(output_channels(meta)),
        "beadseg.align": str(2 ** int(meta["model"]["depth"])),
        "beadseg.threshold": str(float(meta.get("threshold", 0.5))),
        "beadseg.normalization": json.dumps(input_normalization(meta), sort_keys=True),
        "beadseg.instances": json.dumps(meta.get("instances", {}), sort_keys=True),
    }
    if meta.get("fingerprint") is not None:
        props["beadseg.fingerprint"] = json.dumps(meta["fingerprint"], sort_keys=True)
    if source_sha256:
        props["beadseg.source_sha256"] = source_sha256
    return props


def _doc_string(meta: dict) -> str:
    norm = input_normalization(meta)
    return (
        f"beadseg {meta['model']['name']} (base {meta['model']['base_channels']}, depth "
        f"{meta['model']['depth']}). Input '{INPUT_NAME}': float32 N x {meta['in_channels']} x H x W, "
        f"H and W multiples of {2 ** int(meta['model']['depth'])}, normalised by "
        f"{json.dumps(norm, sort_keys=True)} (see beadseg.normalization). Output "
        f"'{OUTPUT_NAME}': sigmoid probabilities N x K x H x W, channels "
        f"{', '.join(output_channels(meta))}; bead mask = foreground > "
        f"{float(meta.get('threshold', 0.5))}."
    )


def inference_network(state: dict, path: str | Path = "checkpoint"):
    """The checkpoint's network as exported: inference weights, BatchNorm folded into the
    convolutions, a sigmoid on every output channel, eval mode (torch)."""
    from torch import nn

    from . import fuse_for_inference
    from .checkpoint import model_from_checkpoint

    return nn.Sequential(fuse_for_inference(model_from_checkpoint(state, path)), nn.Sigmoid()).eval()


def _trace_to_onnx(net, in_channels: int, align: int, path: Path) -> np.ndarray:
    """Write the traced network to ``path``; returns a test input it was checked with."""
    import torch

    side = max(64, 2 * align)
    x = torch.rand(1, in_channels, side, side, generator=torch.Generator().manual_seed(0))
    dims = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        # the network's own "pad to a multiple" branch is traced as not taken: H, W must be
        # multiples of align, which beadseg guarantees and the metadata states
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x,),
            str(path),
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency, dynamic H/W
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: dims, OUTPUT_NAME: dims},
            do_constant_folding=True,
        )
    return x.numpy()


def _check_against_torch(net, path: Path, x: np.ndarray, align: int) -> float:
    """Max abs difference of ONNX Runtime and torch on ``x`` and on a batch of 2 of another
    H and W (which checks the dynamic axes); raises if it exceeds :data:`MAX_EXPORT_DIFF`."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, c, h, w = x.shape
    other = np.random.default_rng(1).random((2, c, h - align, w + align), dtype=np.float32)
    diff = 0.0
    for batch in (x, other):
        with torch.no_grad():
            ref = net(torch.from_numpy(batch)).numpy()
        got = sess.run(None, {INPUT_NAME: batch})[0]
        diff = max(diff, float(np.abs(got - ref).max()))
    if not diff <= MAX_EXPORT_DIFF:
        raise RuntimeError(f"ONNX export of {path.name} differs from torch by {diff:.2g}")
    return diff


def _add_metadata(path: Path, props: dict[str, str], doc: str) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "beadseg"
    proto.producer_version = __version__
    proto.doc_string = doc
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def export_onnx(model: str | Path, out: str | Path | None = None) -> Path:
    """Write a model (run folder, checkpoint or ``default``) as an ONNX file.

    Parameters
    ----------
    model : path or "default"
    out : path, optional
        Default: beside the checkpoint (:func:`onnx_path`).

    Returns
    -------
    Path
        The ONNX file, checked against torch on a test input (max abs difference
        <= :data:`MAX_EXPORT_DIFF`).

    Raises
    ------
    InputError
        Not a usable checkpoint, or ``out`` is the checkpoint itself.
    """
    from ..core.files import atomic_path
    from .checkpoint import load_checkpoint, resolve_model_path

    src = resolve_model_path(model)
    if src.suffix == ".onnx":
        raise InputError(f"{src} is already an ONNX file; give the checkpoint it was made from")
    out = onnx_path(src) if out is None else Path(out)
    if out.resolve() == src.resolve():
        raise InputError(f"{out} is the model being exported; write the ONNX file to another path")
    state = load_checkpoint(src)
    meta = state["meta"]
    net = inference_network(state, src)
    with atomic_path(out) as tmp:
        align = 2 ** int(meta["model"]["depth"])
        x = _trace_to_onnx(net, int(meta["in_channels"]), align, tmp)
        _add_metadata(tmp, onnx_metadata(meta, file_sha256(src)), _doc_string(meta))
        _check_against_torch(net, tmp, x, align)
    return out


def write_onnx_beside(checkpoint: str | Path) -> Path | None:
    """Training's hook: write ``<checkpoint>.onnx`` beside a checkpoint; on failure warn and
    return None (a run is never lost to an export problem; ``beadseg export`` can retry)."""
    from ..core.errors import BeadsegWarning

    try:
        return export_onnx(checkpoint)
    except Exception as exc:  # noqa: BLE001 - any failure: keep the run, say why
        warnings.warn(
            f"could not write the ONNX file of {checkpoint} ({type(exc).__name__}: {exc}); "
            f"predict will use torch; retry with `beadseg export {checkpoint} --format onnx`",
            BeadsegWarning,
            stacklevel=2,
        )
        return None
