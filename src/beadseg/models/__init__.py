"""Segmentation networks and their files: a registry of U-Net variants for small beads
(:mod:`.registry`, :mod:`.blocks`), losses, checkpoints (:mod:`.checkpoint`), the ONNX file
beside every checkpoint (:mod:`.onnx`), devices, and the shipped model (``weights/``).

The names below are imported on first use, so ``import beadseg.models.checkpoint`` (which the
ONNX Runtime path reads) does not pull in torch.
"""

from __future__ import annotations

from ..core.lazy import lazy_names

_WHERE = {
    name: "registry"
    for name in (
        "MODELS",
        "build_model",
        "count_parameters",
        "create_model",
        "flops_per_megapixel",
        "fuse_for_inference",
        "has_centre_head",
        "model_table",
    )
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
