"""A trained network ready for inference: loaded from a checkpoint, BatchNorm folded into the
convolutions, channels-last on CPU, and callable as a tiling predictor (numpy in, numpy out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint, model_from_checkpoint, resolve_model_path
from ..config import InstanceConfig
from ..models import has_centre_head
from ..normalization import LEGACY


@dataclass
class LoadedModel:
    """A network with the settings it was trained/calibrated with.

    Calling it maps a float32 ``N x C x H x W`` numpy batch of normalised images to
    ``N x H x W`` probabilities (``N x 2 x H x W``: foreground and bead centres, for a model with
    a centre head), the predictor :func:`beadseg.inference.tiling.predict_tiled` takes.
    ``normalization`` is how images must be scaled for it (:mod:`beadseg.normalization`; the
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

    @property
    def centre_head(self) -> bool:
        """True when the network also predicts bead centres (a second output channel)."""
        return has_centre_head(self.meta.get("model", {}))

    @property
    def fingerprint(self) -> dict | None:
        """The training-data fingerprint (:mod:`beadseg.domain`), None for older checkpoints."""
        return self.meta.get("fingerprint")

    @property
    def device(self) -> torch.device:
        """Where the network's weights are (CPU for a network without parameters)."""
        return next(self.net.parameters(), torch.empty(0)).device

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


def load_model(model: str | Path, device: torch.device | None = None) -> LoadedModel:
    """Load a model for inference.

    Parameters
    ----------
    model : path or "default"
        A run folder, a checkpoint or ``default`` (see
        :func:`beadseg.checkpoint.resolve_model_path`).
    device : torch.device, optional
        Default: CPU.

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
    device = device or torch.device("cpu")
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
