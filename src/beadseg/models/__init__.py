"""Segmentation networks and their files: a registry of U-Net variants for small beads
(:mod:`.registry`, :mod:`.blocks`), losses, checkpoints (:mod:`.checkpoint`), the ONNX file
beside every checkpoint (:mod:`.onnx`), devices, and the shipped model (``weights/``).

The names below are imported on first use, so ``import beadseg.models.checkpoint`` (which the
ONNX Runtime path reads) does not pull in torch.
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
