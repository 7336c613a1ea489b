"""beadseg: microbead segmentation for brightfield microscopy.

The public API, importable from the package root (each name is imported on first use, so
``import beadseg`` stays cheap and pulls in neither torch nor scipy)::

    import beadseg

    model = beadseg.load_model("default")          # ONNX Runtime on a CPU, torch on a GPU
    seg = beadseg.segment(model, image)            # an image file, or any H x W (x C) array
    seg.labels.max()                               # the number of beads
    table = beadseg.bead_table(seg.labels, image)  # per-bead columns, as in beads/*.csv

Whole folders, one function per command (:mod:`beadseg.workflows`; each holds its output
folder by the same rule as the command line and returns a frozen result): :func:`synth`,
:func:`analyze`, :func:`fix_masks`, :func:`train` (with :func:`load_config`), :func:`lr_find`,
:func:`compare`, :func:`cv`, :func:`sweep`, :func:`predict`, :func:`merge`, :func:`evaluate`,
:func:`dilution`, :func:`export`, :func:`demo`. Images and arrays: :func:`read_raw_image`
(a file as stored), :func:`model_input` (what a network sees of it), :func:`read_image` (for
display), :func:`fit_dilution`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .core.errors import BeadsegError, BeadsegWarning  # noqa: E402
from .core.lazy import lazy_names  # noqa: E402

# public name -> module (the one place the package root names higher layers: by string, lazily)
_API = {
    "load_model": "inference",
    "segment": "inference",
    "segment_image": "inference",
    "bead_table": "core.labels",
    "load_config": "core.config",
    "fit_dilution": "core.dilution",
    "read_image": "core.images",
    "read_raw_image": "core.images",
    "model_input": "core.normalization",
    **{
        name: "workflows"
        for name in (
            "synth",
            "analyze",
            "fix_masks",
            "train",
            "lr_find",
            "compare",
            "cv",
            "sweep",
            "predict",
            "merge",
            "evaluate",
            "dilution",
            "export",
            "demo",
        )  # fmt: skip
    },
}

__all__ = ["BeadsegError", "BeadsegWarning", "__version__", *sorted(_API)]


__getattr__, __dir__ = lazy_names(__name__, _API, extra=__all__)
