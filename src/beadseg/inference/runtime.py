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

``precision="auto"`` (the default) runs, on that ONNX Runtime path, the checkpoint's int8 file
(``best.int8.onnx``, :mod:`beadseg.integrations.export.int8`) instead of its float one when it
is there and was made from the checkpoint as it is now; a stale one is reported and skipped.
``precision="float32"`` never takes it; ``precision="int8"`` requires it. GPUs and torch always
run the float weights.
"""

from __future__ import annotations

import platform
import sys
import warnings
from pathlib import Path

from ..core.errors import BeadsegWarning, ConfigError, InputError

RUNTIMES = ("auto", "onnx", "torch")
PRECISIONS = ("auto", "float32", "int8")


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


def _onnx_beside(checkpoint: Path, threads: int | None, warn: bool = True, int8: bool = False):
    """The OnnxModel of ``checkpoint``'s ONNX file (``int8``: its int8 file) when it exists,
    matches the checkpoint and onnxruntime is installed; else None (a stale or broken file is
    reported with ``warn``)."""
    from ..models.checkpoint import file_sha256, int8_path, onnx_path

    path = int8_path(checkpoint) if int8 else onnx_path(checkpoint)
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
    if warn and int8:
        warnings.warn(
            f"{why}; running the float weights (refresh the int8 file: beadseg export {checkpoint} "
            "--format int8 --calibration IMAGES, and check it with benchmarks/cheaper_network.py)",
            BeadsegWarning,
            stacklevel=4,
        )
    elif warn:
        warnings.warn(
            f"{why}; running the checkpoint with torch (refresh the ONNX file: beadseg export "
            f"{checkpoint} --format onnx)",
            BeadsegWarning,
            stacklevel=4,
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


def load_model(
    model: str | Path,
    device=None,
    runtime: str = "auto",
    threads: int | None = None,
    precision: str = "auto",
):
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
    precision : {"auto", "float32", "int8"}
        auto: the checkpoint's up-to-date int8 file on the ONNX Runtime path, else float32.

    Returns
    -------
    OnnxModel or LoadedModel
        Both callable as tiling predictors, with ``threshold``, ``instances``, ``meta``,
        ``source``, ``align``, ``device_type``, ``runtime`` and ``precision``.

    Raises
    ------
    ConfigError
        Unknown runtime or precision, an ONNX model or int8 asked to run on a GPU or with torch.
    InputError
        Not a usable model; ``runtime="onnx"`` for a checkpoint without a matching ONNX file,
        ``precision="int8"`` for one without a matching int8 file.
    """
    from ..models.checkpoint import resolve_model_path

    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    path = resolve_model_path(model)
    dev = _device_name(device)
    if path.suffix.lower() == ".onnx":
        return _onnx_file(path, runtime, dev, threads, precision)
    if dev not in ("auto", "cpu") and (runtime == "onnx" or precision == "int8"):
        what = "runtime onnx" if runtime == "onnx" else "precision int8"
        raise ConfigError(
            f"{what} runs on the CPU; drop --device {dev}, or use runtime torch and precision float32"
        )
    if runtime == "torch" and precision == "int8":
        raise ConfigError(
            "precision int8 runs with ONNX Runtime; use runtime auto or onnx, or precision float32"
        )
    if runtime == "onnx" or (runtime == "auto" and (precision == "int8" or _wants_cpu(dev))):
        m = _cpu_model(path, str(model), threads, precision, strict=runtime == "onnx")
        if m is not None:
            return m
    _require_torch(path, model, dev)
    from .torch_model import load_torch_model

    return load_torch_model(path, device)


def _onnx_file(path: Path, runtime: str, dev: str, threads: int | None, precision: str):
    """An ``.onnx`` file given as the model: ONNX Runtime on the CPU, at the file's precision."""
    if runtime == "torch" or dev not in ("auto", "cpu"):
        raise ConfigError(
            f"{path} is an ONNX model: it runs on the CPU with ONNX Runtime; for --device {dev} "
            "or runtime torch give the checkpoint it was exported from"
        )
    from .onnx_model import load_onnx_model

    m = load_onnx_model(path, threads)
    if precision != "auto" and m.precision != precision:
        raise ConfigError(f"{path} is a {m.precision} model; precision {precision} was asked (use auto)")
    return m


def _cpu_model(path: Path, model: str, threads: int | None, precision: str, strict: bool):
    """The checkpoint's ONNX Runtime model at ``precision`` (auto: int8 when its file is up to
    date); None when it has no usable float ONNX file and not ``strict``."""
    from ..models.checkpoint import int8_path

    if precision in ("auto", "int8"):
        m = _onnx_beside(path, threads, warn=precision == "auto", int8=True)
        if m is not None:
            return m
        if precision == "int8":
            raise InputError(
                f"{path} has no up-to-date int8 file beside it ({int8_path(path).name}); write one "
                f"with `beadseg export {model} --format int8 --calibration IMAGES`, or use precision "
                "float32"
            )
    m = _onnx_beside(path, threads, warn=not strict)
    if m is None and strict:
        raise InputError(
            f"{path} has no up-to-date ONNX file beside it; write one with "
            f"`beadseg export {model} --format onnx`, or use runtime torch"
        )
    return m
