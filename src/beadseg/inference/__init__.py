"""Inference: a loaded network, tiled prediction on frames of any size, the predict pipeline.

- :mod:`~beadseg.inference.tiling`: tile origins, blending weights, :func:`predict_tiled` over
  any predictor (numpy batch in, probabilities out; imports no torch);
- :mod:`~beadseg.inference.runtime`: :func:`load_model`, which picks the engine: ONNX Runtime
  on the CPU (:mod:`~beadseg.inference.onnx_model`, no torch) when the model has an ONNX file,
  else torch (:mod:`~beadseg.inference.torch_model`: :class:`LoadedModel`);
- :mod:`~beadseg.inference.segmentation`: one image (:func:`segment`, :func:`segment_image`);
- :mod:`~beadseg.inference.runner`: many (:func:`predict_images`), frame by frame
  (:mod:`~beadseg.inference.frames`), resumable (:mod:`~beadseg.inference.records`);
  :mod:`~beadseg.inference.merge`: the runs of a job array joined;
- :mod:`~beadseg.inference.overlay`: outline overlays.

The names below are imported on first use, so ``import beadseg.inference.tiling`` does not pull
in torch (1.5-2.8 s to import here).
"""

from __future__ import annotations

from ..core.lazy import lazy_names

_WHERE = {
    "LoadedModel": "torch_model",
    "load_torch_model": "torch_model",
    "OnnxModel": "onnx_model",
    "load_onnx_model": "onnx_model",
    "load_model": "runtime",
    "OVERLAY_PALETTE": "overlay",
    "inner_boundaries": "overlay",
    "overlay": "overlay",
    "COUNT_FIELDS": "counts",
    "CountRow": "counts",
    "ImageResult": "counts",
    "MergeSummary": "merge",
    "PredictSummary": "counts",
    "collect_inputs": "runner",
    "merge_runs": "merge",
    "parse_shard": "runner",
    "predict_file": "frames",
    "predict_images": "runner",
    "predict_maps": "segmentation",
    "predict_probabilities": "segmentation",
    "segment": "segmentation",
    "segment_image": "segmentation",
    "Segmentation": "segmentation",
    "blend_profile": "tiling",
    "predict_tiled": "tiling",
    "tile_starts": "tiling",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
