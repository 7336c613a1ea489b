"""What every engine offers the rest of inference: the :class:`Predictor` protocol.

Two engines implement it: :class:`~beadseg.inference.onnx_model.OnnxModel` (ONNX Runtime on
the CPU, no torch import) and :class:`~beadseg.inference.torch_model.LoadedModel` (torch, any
device); :func:`~beadseg.inference.runtime.load_model` picks one. Tiling, one image, one frame,
the batch runner and the napari widget take any ``Predictor``, so a model built in memory (a
test's hand-made detector, a user's own network wrapped in these attributes) runs through the
same code as the shipped one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Predictor(Protocol):
    """A segmentation network with the settings it was trained and calibrated with.

    Calling it maps a float32 ``N x C x H x W`` batch of normalised images to ``N x H x W``
    bead probabilities (``N x 2 x H x W``, foreground and bead centres, for a model with a
    centre head).
    """

    in_channels: int  #: channels the network takes (images are adapted: grey <-> RGB)
    threshold: float  #: probability above which a pixel is bead
    instances: object  #: the InstanceConfig that turns its mask into beads
    source: str  #: where it came from (a file, or a name for a model built in memory)
    meta: dict  #: the checkpoint's metadata (model, training data, fingerprint, ...)
    runtime: str  #: "onnxruntime" or "torch"

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    @property
    def normalization(self) -> dict:
        """How an image is scaled for it (:mod:`beadseg.core.normalization`)."""

    @property
    def centre_head(self) -> bool:
        """True when it also predicts bead centres."""

    @property
    def fingerprint(self) -> dict | None:
        """The training-data fingerprint (:mod:`beadseg.core.domain`), None when unknown."""

    @property
    def align(self) -> int:
        """Input sides are padded to a multiple of this (2 ** depth)."""

    @property
    def device_type(self) -> str:
        """``cpu``, ``cuda`` or ``mps``."""

    default_tile_size: int  #: tile side when the settings give none

    def default_batch_size(self, tile_px: int) -> int:
        """Tiles per call when the settings give none."""
