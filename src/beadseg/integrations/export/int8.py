"""A checkpoint's network in 8-bit integers for CPUs: ``best.pt`` -> ``best.int8.onnx``
(``beadseg export MODEL --format int8 --calibration IMAGES``).

ONNX Runtime's static quantisation of the checkpoint's ONNX file (:mod:`beadseg.models.onnx`):
weights per output channel in int8, activations in uint8 with ranges calibrated (min/max) on
real images normalised as the model sees them (:func:`beadseg.core.normalization.model_input`).
The output head - the last convolution(s) and the sigmoid - stays in float32: probabilities
quantised to 1/255 steps put plateaus into the centre map, whose peaks seed the beads (the
shipped model, exact-truth counting benchmark: clumped count error +3.2 % quantised, -0.4 %
with the head in float32, -0.2 % in float32; BENCHMARKS.md).

The file carries the float file's metadata plus ``beadseg.precision = int8`` and
``beadseg.calibration`` (how many images and crops); its ``beadseg.source_sha256`` is the
checkpoint's, so :func:`beadseg.inference.runtime.load_model` runs it on CPUs only while the
checkpoint is unchanged. Quantising needs ``onnx`` and ``onnxruntime.quantization``; running the
file needs onnxruntime only. Whether a quantised model counts as well as its float one is for
the counting benchmark to say (``benchmarks/cheaper_network.py``): quantisation is never done
behind a user's back.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.errors import InputError
from ...models.checkpoint import INT8, file_sha256, int8_path, onnx_path

#: side of the calibration crops (px) and the most crops taken
CALIBRATION_CROP_PX = 512
MAX_CALIBRATION_CROPS = 64
#: intermediate outputs ONNX Runtime's calibrator holds before it folds them into ranges
#: (bounds its memory: ~40 tensors of up to 16 x 512 x 512 floats per crop, ~70 MB)
_CALIBRATION_CHUNK = 4


def _chunk(n_crops: int) -> int | None:
    """A chunk size for the calibrator that does not divide ``n_crops`` (ONNX Runtime 1.2x-1.3x
    raises "No data is collected" when the last chunk leaves nothing behind); None: no chunks."""
    if n_crops <= 2 * _CALIBRATION_CHUNK:
        return None
    return next(c for c in range(_CALIBRATION_CHUNK, n_crops) if n_crops % c)


@dataclass(frozen=True)
class QuantizeResult:
    """What :func:`quantize_model` wrote and how close it stays to the float network on the
    calibration crops (probabilities of both heads; the foreground mask at the threshold)."""

    path: Path
    images: int
    crops: int
    max_abs_diff: float
    mask_agreement: float

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "images": self.images,
            "crops": self.crops,
            "max_abs_diff": self.max_abs_diff,
            "mask_agreement": self.mask_agreement,
        }


def calibration_crops(
    images: list[Path], normalization: dict, in_channels: int, align: int, crop_px: int = CALIBRATION_CROP_PX
) -> list[np.ndarray]:
    """Float32 ``1 x C x h x w`` network inputs from image files: each normalised as the model
    sees it, cut into up to four ``crop_px`` windows (corners of larger images, the whole of
    smaller ones, sides trimmed to multiples of ``align``); at most
    :data:`MAX_CALIBRATION_CROPS`, taken evenly over the images."""
    from ...core.images import read_raw_image
    from ...core.normalization import model_input

    per_image = max(1, -(-MAX_CALIBRATION_CROPS // max(len(images), 1)))
    step = max(1, len(images) * min(per_image, 4) // MAX_CALIBRATION_CROPS)
    crops: list[np.ndarray] = []
    for path in images[::step]:
        x = model_input(read_raw_image(path), normalization, in_channels, str(path))
        h, w = x.shape[:2]
        ch, cw = min(crop_px, h - h % align), min(crop_px, w - w % align)
        if ch < align or cw < align:
            continue
        corners = {(0, 0), (h - ch, w - cw), (0, w - cw), (h - ch, 0)}
        for y, x0 in sorted(corners)[: min(per_image, 4)]:
            window = x[y : y + ch, x0 : x0 + cw].transpose(2, 0, 1)
            crops.append(np.ascontiguousarray(window[None], np.float32))
    return crops[:MAX_CALIBRATION_CROPS]


def head_nodes(graph) -> list[str]:
    """Names of the nodes from the last convolution(s) to the graph's output: every node on a
    path back from an output up to and including the first Conv met (the output head)."""
    producer = {out: node for node in graph.node for out in node.output}
    head, todo = [], [o.name for o in graph.output]
    seen: set[str] = set()
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        head.append(node.name)
        if node.op_type not in ("Conv", "ConvTranspose"):
            todo += list(node.input)
    return head


def _write_int8(source: Path, out: Path, crops: list[np.ndarray], calibration: dict) -> None:
    """Quantise the float ONNX file ``source`` into ``out`` (calibrated on ``crops``)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name: str):
            self._it = iter(crops)
            self._name = name

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {self._name: x}

    with tempfile.TemporaryDirectory(prefix="beadseg-int8-") as tmp:
        pre = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        prepared = onnx.load(str(pre))
        quantize_static(
            str(pre),
            str(out),
            Reader(prepared.graph.input[0].name),
            quant_format=QuantFormat.QOperator,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=head_nodes(prepared.graph),
            extra_options={"CalibMaxIntermediateOutputs": _chunk(len(crops))},
        )
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props if p.key.startswith("beadseg.")}
    props |= {"beadseg.precision": INT8, "beadseg.calibration": json.dumps(calibration, sort_keys=True)}
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))


def quantize_model(
    model: str | Path, images: list[str | Path], out: str | Path | None = None
) -> QuantizeResult:
    """Write the int8 ONNX file of a checkpoint (see the module docstring).

    Parameters
    ----------
    model : path or "default"
        A run folder or checkpoint with an up-to-date ONNX file beside it (``beadseg export``).
    images : list of paths
        Calibration images (files as predict reads them; real frames of the model's domain).
    out : path, optional
        Default: beside the checkpoint (:func:`beadseg.models.checkpoint.int8_path`).

    Raises
    ------
    InputError
        No up-to-date ONNX file beside the checkpoint, or no usable calibration image.
    """
    from ...core.files import atomic_path
    from ...inference.onnx_model import load_onnx_model
    from ...models.checkpoint import resolve_model_path

    src = resolve_model_path(model)
    if src.suffix.lower() == ".onnx":
        raise InputError(f"{src} is an ONNX file; give the checkpoint it was exported from")
    fp = onnx_path(src)
    float_model = load_onnx_model(fp, source=str(src)) if fp.is_file() else None
    if float_model is None or float_model.source_sha256 != file_sha256(src):
        raise InputError(
            f"{src} has no up-to-date ONNX file beside it; write one first: beadseg export {model}"
        )
    crops = calibration_crops(
        [Path(p) for p in images], float_model.normalization, float_model.in_channels, float_model.align
    )
    if not crops:
        raise InputError("no calibration image could be used; give real images of the model's domain")
    out = int8_path(src) if out is None else Path(out)
    calibration = {
        "images": len(images),
        "crops": len(crops),
        "method": "minmax",
        "crop_px": CALIBRATION_CROP_PX,
    }
    with atomic_path(out) as tmp:
        _write_int8(fp, tmp, crops, calibration)
        int8_model = load_onnx_model(tmp, source=str(src))
        diff, agree = _agreement(float_model, int8_model, crops)
    return QuantizeResult(out, len(images), len(crops), diff, agree)


def _agreement(float_model, int8_model, crops: list[np.ndarray]) -> tuple[float, float]:
    """(max abs difference of the probabilities, share of foreground-mask pixels that agree) of
    the two networks over ``crops``."""
    diff, same, total = 0.0, 0, 0
    for x in crops:
        a, b = float_model.all_channels(x), int8_model.all_channels(x)
        diff = max(diff, float(np.abs(a - b).max()))
        t = float_model.threshold
        same += int(np.count_nonzero((a[:, 0] > t) == (b[:, 0] > t)))
        total += a[:, 0].size
    return diff, same / max(total, 1)
