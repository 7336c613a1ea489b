"""Optional packages and the extra of beadseg that installs each.

A plain ``pip install beadseg`` segments, counts, analyses and exports ONNX files with ONNX
Runtime; torch (training, fine-tuning, running a checkpoint without its ONNX file, TorchScript
and bioimage.io export), Optuna (sweeps) and bioimageio.spec come with extras. A command that
needs one of them says so in one line, before it writes anything (:func:`require`).
"""

from __future__ import annotations

import importlib.util

from .errors import MissingExtraError

#: import name -> (what it is called, the install command that brings it)
EXTRAS = {
    "torch": ("torch", 'pip install "beadseg[train]"'),
    "onnx": ("the onnx package", 'pip install "beadseg[train]"'),
    "optuna": ("Optuna", 'pip install "beadseg[hpc]"'),
    "bioimageio.spec": ("bioimageio.spec", 'pip install "beadseg[bioimageio]"'),
}


def installed(module: str) -> bool:
    """True when ``module`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def missing_message(module: str, purpose: str, install: str | None = None) -> str:
    """The one line for a missing optional package: what needs it and how to install it."""
    name, default = EXTRAS.get(module, (module, f"pip install {module}"))
    return f"{purpose} needs {name}, which this installation lacks: {install or default}"


def require(purpose: str, *modules: str, install: str | None = None) -> None:
    """Raise :class:`MissingExtraError` (one line) when one of ``modules`` (default: torch) is
    not installed; ``purpose`` says what needs it, e.g. ``"training"``; ``install`` replaces
    the module's own install command (an extra that brings several of them)."""
    for module in modules or ("torch",):
        if not installed(module):
            raise MissingExtraError(missing_message(module, purpose, install))
