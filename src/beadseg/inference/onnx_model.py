"""An exported network run by ONNX Runtime on the CPU: beadseg's inference path without torch.

An :class:`OnnxModel` behaves like :class:`~beadseg.inference.torch_model.LoadedModel` (same
attributes, callable as a tiling predictor) but imports only numpy and onnxruntime: 0.2-0.3 s
to import instead of 1-3 s for torch, and 2.7-3.8x faster per 512-px tile than torch on this
2-core CPU (see BENCHMARKS.md). Its settings come from the file's metadata
(:mod:`beadseg.models.onnx`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..models.checkpoint import FLOAT32, INT8, ONNX_FORMAT
from .tiling import pad_to_multiple


def read_onnx_metadata(session) -> dict[str, str]:
    """The ``metadata_props`` of a loaded session as a dict of strings."""
    return dict(session.get_modelmeta().custom_metadata_map)


def cpu_threads() -> int:
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS, Windows
        return max(os.cpu_count() or 1, 1)


def open_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session of ``path`` with ``threads`` intra-op threads (default: the
    cores this process may use) and full graph optimisation.

    Raises
    ------
    InputError
        The file is missing or not a valid ONNX model.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or cpu_threads())
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no pre-planned block for all activations: peak memory of a 1128 x 1032 tile 245 MB instead
    # of 390 MB, same speed (measured); the arena still reuses buffers between calls
    opts.enable_mem_pattern = False
    opts.log_severity_level = 3  # errors only: no "unused initializer" chatter on stderr
    # threads sleep between operators instead of spinning: on a busy machine spinning threads
    # fight the other processes (1.5x slower wall time with 2 threads, measured at load ~4); with
    # ~1-MP tiles an operator runs for milliseconds, so waking costs nothing measurable
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot load ONNX model {path}: {first}; export it again with `beadseg export`"
        ) from None


@dataclass
class OnnxModel:
    """An ONNX Runtime session with the settings stored in its file.

    Calling it maps a float32 ``N x C x H x W`` batch (any H and W: padded to the network's
    multiple and cropped back) to ``N x H x W`` foreground probabilities, or ``N x K x H x W``
    for a network of K outputs (foreground, bead centres), as the torch model does.
    """

    session: object
    in_channels: int
    depth: int
    threshold: float
    instances: object  # an InstanceConfig
    source: str
    meta: dict = field(default_factory=dict)
    outputs: tuple[str, ...] = ("foreground",)
    source_sha256: str | None = None
    device_type: str = "cpu"
    runtime: str = "onnxruntime"
    #: ``float32`` or ``int8`` (the file's ``beadseg.precision``; see
    #: :mod:`beadseg.integrations.export.int8`)
    precision: str = FLOAT32

    #: tile side when the config gives none. Measured on a 3840x2160 frame with the shipped
    #: model (2 threads, overlap 128): 512: 1.90 s, 768: 1.53, 1024: 1.40, 1152: 1.37, 1536: 1.21;
    #: streaming 20 frames, peak RSS 1.43 GB at 1024 vs 1.53 GB at 1152 for the same time
    #: (41.5 vs 41.4 s). 1024 covers a 4K frame with 4 x 3 tiles.
    default_tile_size = 1024

    def default_batch_size(self, tile_px: int) -> int:
        """Tiles per call when the config gives none: 1 (batching tiles saved nothing, measured
        at 256 and 512 px; one large tile already keeps the threads busy)."""
        return 1

    @property
    def align(self) -> int:
        """H and W of a call are padded to multiples of this (the network pools ``depth`` times)."""
        return 2**self.depth

    @property
    def threads(self) -> int:
        return int(self.session.get_session_options().intra_op_num_threads)

    @property
    def normalization(self) -> dict:
        """How images must be scaled for the network (the checkpoint's record; dtype-max
        scaling for models exported without one)."""
        return dict(self.meta.get("normalization") or {"method": "dtype_max"})

    @property
    def centre_head(self) -> bool:
        """True when the network also outputs a bead-centre map."""
        return len(self.outputs) > 1

    @property
    def fingerprint(self) -> dict | None:
        """The training-data fingerprint (``meta["fingerprint"]``), None when not recorded."""
        return self.meta.get("fingerprint")

    def all_channels(self, batch: np.ndarray) -> np.ndarray:
        """Every output channel: ``N x K x H x W`` probabilities (see ``outputs``)."""
        batch = np.asarray(batch, np.float32)
        n, c, h, w = batch.shape
        if c != self.in_channels:
            raise InputError(f"a batch of {c} channels given to a model of {self.in_channels}")
        if h % self.align or w % self.align:
            batch = np.stack([pad_to_multiple(b, self.align) for b in batch])
        name = self.session.get_inputs()[0].name
        out = self.session.run(None, {name: np.ascontiguousarray(batch)})[0]
        return out[:, :, :h, :w]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = self.all_channels(batch)
        return out if out.shape[1] > 1 else out[:, 0]


def load_onnx_model(path: str | Path, threads: int | None = None, source: str | None = None) -> OnnxModel:
    """Load an ONNX file written by ``beadseg export`` / ``beadseg train``.

    Parameters
    ----------
    path : path
        The ``.onnx`` file.
    threads : int, optional
        ONNX Runtime intra-op threads (default: the cores this process may use).
    source : str, optional
        What to report as the model (default: ``path``); the checkpoint beside it, usually.

    Raises
    ------
    InputError
        Not an ONNX file with beadseg's metadata.
    """
    from ..core.config import InstanceConfig

    session = open_session(path, threads)
    props = read_onnx_metadata(session)
    if props.get("beadseg.format") != ONNX_FORMAT or "beadseg.meta" not in props:
        raise InputError(
            f"{path} is an ONNX model without beadseg's metadata; export it with `beadseg export "
            "MODEL --format onnx`"
        )
    meta, outputs = _checked_metadata(session, props, path)
    precision = props.get("beadseg.precision", FLOAT32)
    if precision not in (FLOAT32, INT8):
        raise InputError(f"{path}: beadseg.precision {precision!r} is not {FLOAT32} or {INT8}; {REEXPORT}")
    return OnnxModel(
        session,
        int(meta["in_channels"]),
        int(meta["model"]["depth"]),
        float(meta.get("threshold", 0.5)),
        InstanceConfig(**meta.get("instances", {})),
        source or str(path),
        meta,
        outputs,
        props.get("beadseg.source_sha256"),
        precision=precision,
    )


#: what to do about an ONNX file whose metadata or graph cannot be used
REEXPORT = "export it again from its checkpoint: `beadseg export CHECKPOINT --format onnx`"


def _checked_metadata(session, props: dict[str, str], path) -> tuple[dict, tuple[str, ...]]:
    """(meta, output names) of a beadseg ONNX file, checked against each other and the graph:
    a usable meta record (:func:`beadseg.models.checkpoint.check_meta`), the input channels the
    graph takes, and the output channels it gives (e.g. ``centres``) as the metadata says.

    Raises
    ------
    InputError
        Naming the file, the disagreement and the fix.
    """
    from ..models.checkpoint import check_meta
    from ..models.onnx import output_channels

    try:
        meta = json.loads(props["beadseg.meta"])
        outputs = tuple(json.loads(props.get("beadseg.outputs", '["foreground"]')))
    except (ValueError, TypeError):
        raise InputError(f"{path}: its beadseg metadata is not valid JSON; {REEXPORT}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: beadseg.meta is {meta!r}, not a record; {REEXPORT}")
    check_meta(meta, path, REEXPORT)
    expected = tuple(output_channels(meta))
    if outputs != expected:
        raise InputError(
            f"{path}: beadseg.outputs {list(outputs)} disagree with the network its metadata "
            f"describes ({list(expected)}); {REEXPORT}"
        )
    graph_in = session.get_inputs()[0].shape[1] if len(session.get_inputs()[0].shape) == 4 else None
    graph_out = session.get_outputs()[0].shape[1] if len(session.get_outputs()[0].shape) == 4 else None
    if graph_in != meta["in_channels"] or graph_out != len(outputs):
        raise InputError(
            f"{path}: the network takes {graph_in} input and gives {graph_out} output channels, "
            f"its metadata says {meta['in_channels']} and {len(outputs)} ({', '.join(outputs)}); "
            f"{REEXPORT}"
        )
    return meta, outputs
