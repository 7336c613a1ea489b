"""A trained network ready for inference with torch: loaded from a checkpoint, BatchNorm folded
into the convolutions, channels-last on CPU, and callable as a tiling predictor (numpy in, numpy
out). The engine for GPUs and for checkpoints without an ONNX file; which engine runs a model is
decided by :func:`beadseg.inference.runtime.load_model`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.config import InstanceConfig
from ..core.normalization import LEGACY
from ..models import has_centre_head
from ..models.checkpoint import load_checkpoint, model_from_checkpoint, resolve_model_path


@dataclass
class LoadedModel:
    """A network with the settings it was trained/calibrated with.

    Calling it maps a float32 ``N x C x H x W`` numpy batch of normalised images to
    ``N x H x W`` probabilities (``N x 2 x H x W``: foreground and bead centres, for a model with
    a centre head), the predictor :func:`beadseg.inference.tiling.predict_tiled` takes.
    ``normalization`` is how images must be scaled for it (:mod:`beadseg.core.normalization`; the
    checkpoint's record, dtype-max scaling for checkpoints without one).
    """

    net: torch.nn.Module
    in_channels: int
    depth: int
    threshold: float
    instances: InstanceConfig
    source: str
    meta: dict = field(default_factory=dict)
    normalization: dict = field(default_factory=lambda: dict(LEGACY))
    runtime: str = "torch"
    precision: str = "float32"  #: the checkpoint's weights as trained

    @property
    def centre_head(self) -> bool:
        """True when the network also predicts bead centres (a second output channel)."""
        return has_centre_head(self.meta.get("model", {}))

    @property
    def fingerprint(self) -> dict | None:
        """The training-data fingerprint (:mod:`beadseg.core.domain`), None for older checkpoints."""
        return self.meta.get("fingerprint")

    @property
    def device(self) -> torch.device:
        """Where the network's weights are (CPU for a network without parameters)."""
        return next(self.net.parameters(), torch.empty(0)).device

    @property
    def device_type(self) -> str:
        """``cpu``, ``cuda`` or ``mps``."""
        return self.device.type

    #: tile side when the config gives none: on CPU a call should touch ~0.26 MP (measured
    #: here, 512-px tiles ran at 13.3 MP/s one at a time but 6.1 MP/s four at a time: larger
    #: activations no longer fit in cache)
    default_tile_size = 512

    def default_batch_size(self, tile_px: int) -> int:
        """Tiles per call when the config gives none: 8 on CUDA, ~0.26 MP per call on CPU."""
        return 8 if self.device_type == "cuda" else max(1, 262144 // tile_px)

    @property
    def align(self) -> int:
        """Tile origins and sizes must be multiples of this (the network pools ``depth`` times)."""
        return 2**self.depth

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        device = self.device
        x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(device)
        if device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = torch.sigmoid(self.net(x)).float().cpu().numpy()
        return out if out.shape[1] > 1 else out[:, 0]


def load_torch_model(model: str | Path, device: torch.device | str | None = None) -> LoadedModel:
    """Load a checkpoint for inference with torch.

    Parameters
    ----------
    model : path or "default"
        A run folder, a checkpoint or ``default`` (see
        :func:`beadseg.models.checkpoint.resolve_model_path`).
    device : torch.device or str, optional
        A torch device or a ``--device`` name (``auto``, ``cpu``, ``cuda``, ...); default
        ``auto``: CUDA, then MPS, then the CPU.

    Returns
    -------
    LoadedModel
        Its threshold is the checkpoint's ``meta["threshold"]`` (0.5 when absent), its
        normalisation ``meta["normalization"]`` (dtype-max scaling when absent).

    Raises
    ------
    InputError
        Not a usable beadseg checkpoint.
    """
    from ..models import fuse_for_inference

    path = resolve_model_path(model)
    state = load_checkpoint(path)
    net = fuse_for_inference(model_from_checkpoint(state, path))
    meta = state["meta"]
    if not isinstance(device, torch.device):
        from ..models.devices import resolve_device

        device = resolve_device("auto" if device is None else str(device))
    net = net.to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)  # 2-3x faster convolutions on CPU
    return LoadedModel(
        net,
        meta["in_channels"],
        meta["model"]["depth"],
        float(meta.get("threshold", 0.5)),
        InstanceConfig(**meta.get("instances", {})),
        str(path),
        meta,
        dict(meta.get("normalization") or LEGACY),
    )
