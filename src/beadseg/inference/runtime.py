"""Which engine runs a model: ONNX Runtime on the CPU when the model has a matching ONNX file,
torch otherwise (GPUs, checkpoints without an ONNX file, or when asked for).

``runtime="auto"`` (the default) takes ONNX Runtime when all of these hold:

- the device is ``cpu``, or ``auto`` on a machine without a GPU torch could use;
- the model is an ``.onnx`` file, or its checkpoint has one beside it (``best.pt`` ->
  ``best.onnx``, written by ``beadseg train`` / ``beadseg export``) that was made from the
  checkpoint as it is now (same SHA-256), so an edited checkpoint never runs stale weights;
- onnxruntime is installed.

On that path torch is never imported (1-3 s saved per process). ``runtime="torch"`` and
``runtime="onnx"`` force one engine.
"""

from __future__ import annotations

import platform
import sys
import warnings
from pathlib import Path

from ..core.errors import BeadsegWarning, ConfigError, InputError

RUNTIMES = ("auto", "onnx", "torch")


def accelerator_possible() -> bool:
    """True when this machine may have a GPU torch could use (an NVIDIA driver, or Apple
    silicon); checked without importing torch. False means ``--device auto`` is the CPU."""
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))
    import shutil

    return shutil.which("nvidia-smi") is not None


def _device_name(device) -> str:
    return "auto" if device is None else str(device).strip().lower()


def _wants_cpu(device: str) -> bool:
    """The device is the CPU for sure, or ``auto`` where torch would pick the CPU."""
    if device == "cpu":
        return True
    if device != "auto":
        return False
    if not accelerator_possible():
        return True
    from ..core.extras import installed

    if not installed("torch"):  # a GPU, but nothing here could use it
        return True
    from ..models.devices import resolve_device  # a GPU may be there: ask torch, as auto always did

    return resolve_device("auto").type == "cpu"


def _onnx_beside(checkpoint: Path, threads: int | None, warn: bool = True):
    """The OnnxModel of ``checkpoint``'s ONNX file when it exists, matches the checkpoint and
    onnxruntime is installed; else None (a stale or broken file is reported with ``warn``)."""
    from ..models.checkpoint import file_sha256, onnx_path

    path = onnx_path(checkpoint)
    if not path.is_file():
        return None
    from .onnx_model import load_onnx_model

    try:
        m = load_onnx_model(path, threads, source=str(checkpoint))
    except ImportError:  # onnxruntime not installed
        return None
    except InputError as exc:
        why = str(exc)
    else:
        if m.source_sha256 == file_sha256(checkpoint):
            return m
        why = f"{path} was not made from {checkpoint} as it is now"
    if warn:
        warnings.warn(
            f"{why}; running the checkpoint with torch (refresh the ONNX file: beadseg export "
            f"{checkpoint} --format onnx)",
            BeadsegWarning,
            stacklevel=3,
        )
    return None


def _require_torch(path: Path, model, device: str) -> None:
    """One line when the torch engine is needed and torch is not installed."""
    from ..core.extras import require

    if device not in ("auto", "cpu"):
        why = f"running a model on --device {device}"
    else:
        why = (
            f"running {path}, which has no up-to-date ONNX file beside it (a plain install runs "
            f"ONNX files; `beadseg export {model} --format onnx` writes one where torch is installed),"
        )
    require(why)


def load_model(model: str | Path, device=None, runtime: str = "auto", threads: int | None = None):
    """Load a model for inference with the engine that suits it (see the module docstring).

    Parameters
    ----------
    model : path or "default"
        A run folder, a checkpoint, an exported ``.onnx`` file or ``default``.
    device : str or torch.device, optional
        ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    runtime : {"auto", "onnx", "torch"}
    threads : int, optional
        CPU threads of ONNX Runtime (default: the cores this process may use).

    Returns
    -------
    OnnxModel or LoadedModel
        Both callable as tiling predictors, with ``threshold``, ``instances``, ``meta``,
        ``source``, ``align``, ``device_type`` and ``runtime``.

    Raises
    ------
    ConfigError
        Unknown runtime, or an ONNX model asked to run on a GPU.
    InputError
        Not a usable model; ``runtime="onnx"`` for a checkpoint without a matching ONNX file.
    """
    from ..models.checkpoint import resolve_model_path

    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    path = resolve_model_path(model)
    dev = _device_name(device)
    if path.suffix.lower() == ".onnx":
        if runtime == "torch" or dev not in ("auto", "cpu"):
            raise ConfigError(
                f"{path} is an ONNX model: it runs on the CPU with ONNX Runtime; for --device {dev} "
                "or runtime torch give the checkpoint it was exported from"
            )
        from .onnx_model import load_onnx_model

        return load_onnx_model(path, threads)
    if runtime == "onnx":
        if dev not in ("auto", "cpu"):
            raise ConfigError(f"runtime onnx runs on the CPU; drop --device {dev} or use runtime torch")
        m = _onnx_beside(path, threads, warn=False)
        if m is None:
            raise InputError(
                f"{path} has no up-to-date ONNX file beside it; write one with "
                f"`beadseg export {model} --format onnx`, or use runtime torch"
            )
        return m
    if runtime == "auto" and _wants_cpu(dev):
        m = _onnx_beside(path, threads)
        if m is not None:
            return m
    _require_torch(path, model, dev)
    from .torch_model import load_torch_model

    return load_torch_model(path, device)
