"""Segmentation networks: a registry of U-Net variants for small beads."""

from .registry import (
    MODELS,
    build_model,
    count_parameters,
    create_model,
    flops_per_megapixel,
    fuse_for_inference,
    has_centre_head,
    model_table,
)

__all__ = [
    "MODELS",
    "build_model",
    "create_model",
    "count_parameters",
    "flops_per_megapixel",
    "fuse_for_inference",
    "has_centre_head",
    "model_table",
]
