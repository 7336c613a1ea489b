"""Checkpoints: the file format, saving and loading, and the network a checkpoint holds.

A beadseg checkpoint is a ``dict`` saved with ``torch.save`` and loaded with
``weights_only=True`` (no pickled code runs). Keys:

``format``          ``"beadseg-checkpoint-1"``
``model_state``     the network's ``state_dict``
``ema_state``       the EMA weights' ``state_dict`` or None (used for inference when present)
``meta``            what inference needs: ``model`` (architecture settings), ``in_channels``,
                    ``threshold``, ``instances`` (instance settings), ``bead_area_px``,
                    ``parameters``, ``trained_on``
``config``          the resolved training config (a plain dict)
``epoch``, ``history``, ``best``, ``status``, ``finished``, ``result``
                    the training record; ``last.pt`` also holds the optimizer, scaler and loop
                    state needed for an exact resume (see :mod:`beadseg.training`).

``default`` names the model shipped in ``beadseg/models/weights``. torch is imported only by the
functions that need it, so finding a model (:func:`resolve_model_path`) costs no torch import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import InputError
from ..core.files import atomic_path
from ..core.portable import strip_machine_paths

if TYPE_CHECKING:
    from torch import nn

CHECKPOINT_FORMAT = "beadseg-checkpoint-1"
#: the ``beadseg.format`` metadata of ONNX exports (see :mod:`beadseg.models.onnx`)
ONNX_FORMAT = "beadseg-onnx-1"
#: ``beadseg.precision`` of ONNX files: float32 (every export; files without the entry) or int8
#: (:mod:`beadseg.integrations.export.int8`)
FLOAT32, INT8 = "float32", "int8"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "default.pt"
REQUIRED_KEYS = ("model_state", "meta")
REQUIRED_META = ("model", "in_channels")


def resolve_model_path(model: str | Path) -> Path:
    """``default`` -> the shipped model; a run folder -> its best.pt (else last.pt); else the file.

    Raises
    ------
    InputError
        Nothing usable at that path.
    """
    if str(model) == "default":
        if not DEFAULT_MODEL.is_file():
            raise InputError(
                "the shipped default model is missing from this installation "
                f"({DEFAULT_MODEL}); reinstall beadseg or give a checkpoint"
            )
        return DEFAULT_MODEL
    path = Path(model)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise InputError(f"{path} holds no best.pt or last.pt; give a run folder of `beadseg train`")
    if not path.exists():
        raise InputError(f"model {path} does not exist; give a run folder, a checkpoint or default")
    return path


def onnx_path(checkpoint: str | Path) -> Path:
    """Where the ONNX export of a checkpoint lives: ``best.pt`` -> ``best.onnx`` beside it
    (written by ``beadseg train`` and ``beadseg export``, see :mod:`beadseg.models.onnx`)."""
    return Path(checkpoint).with_suffix(".onnx")


def int8_path(checkpoint: str | Path) -> Path:
    """Where the int8 ONNX file of a checkpoint lives: ``best.pt`` -> ``best.int8.onnx`` beside
    it (written by ``beadseg export --format int8``, see :mod:`beadseg.integrations.export.int8`)."""
    return Path(checkpoint).with_suffix(".int8.onnx")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes: an ONNX file records the one of its checkpoint."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_shipped(path: str | Path) -> bool:
    """True for files of the installed ``beadseg/models/weights`` folder (read-only for users)."""
    return Path(path).resolve().parent == WEIGHTS_DIR.resolve()


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a checkpoint atomically (a temporary file renamed into place)."""
    path = Path(path)
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as exc:  # torch's writer reports a full disk as a RuntimeError
            import errno
            import shutil

            if "writ" not in str(exc) or shutil.disk_usage(path.parent).free > 64 << 20:
                raise
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load a beadseg checkpoint with ``weights_only=True``.

    Raises
    ------
    InputError
        The file is missing, is not a torch file, lacks the format marker or a required key.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist; give a run folder, a .pt file or default")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"{path} is not a beadseg checkpoint ({type(exc).__name__}); give a run folder, a "
            "best.pt/last.pt written by `beadseg train`, or `default`"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(
            f"{path} is not a beadseg checkpoint (no '{CHECKPOINT_FORMAT}' marker); give a best.pt or "
            "last.pt written by `beadseg train`, or default"
        )
    missing = [k for k in REQUIRED_KEYS if k not in state]
    meta = state.get("meta")
    if not missing and isinstance(meta, dict):
        missing = [f"meta.{k}" for k in REQUIRED_META if k not in meta]
    elif not missing:
        missing = ["meta"]
    if missing:
        raise InputError(
            f"{path} is an incomplete beadseg checkpoint (missing {', '.join(missing)}); "
            "train again or give another checkpoint"
        )
    check_meta(meta, path)
    return state


#: what to do about a checkpoint whose record cannot be used
RETRAIN = "train again or give another checkpoint (e.g. the run's best.pt)"


def _is_real(value) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value, least: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _normalization_problem(record) -> str | None:
    """Why a ``meta["normalization"]`` record cannot scale images, or None when it can."""
    from ..core.normalization import DEFAULTS, normalization_record

    if not isinstance(record, dict):
        return f"meta.normalization is {record!r}, not a record like {normalization_record()}"
    try:
        normalization_record(**record)
    except (TypeError, ValueError) as exc:
        return f"meta.normalization {record!r}: {exc}"
    method = record["method"]
    absent = sorted(set(DEFAULTS[method]) - set(record))
    if absent:
        return f"meta.normalization {record!r} lacks {', '.join(absent)}"
    if "bins" in record and not _is_count(record["bins"], 32):
        # the background is looked for within 1/32 of the intensity range around the histogram's
        # mode: with fewer bins that window can miss every pixel (a NaN background; 98 of 300
        # random 8-bit tiles at 2 bins, none at 16 or more)
        return f"meta.normalization.bins is {record['bins']!r}, not a whole number >= 32"
    if "sample_px" in record and not _is_count(record["sample_px"]):
        return f"meta.normalization.sample_px is {record['sample_px']!r}, not a positive whole number"
    for key in ("level", "gain", "low", "high"):
        if key in record and not _is_real(record[key]):
            return f"meta.normalization.{key} is {record[key]!r}, not a finite number"
    if method == "background" and record["gain"] <= 0:
        return f"meta.normalization.gain is {record['gain']!r}, not positive"
    if method == "percentile" and not 0 <= record["low"] < record["high"] <= 100:
        low, high = record["low"], record["high"]
        return f"meta.normalization low, high = {low!r}, {high!r}: not percentiles with low < high"
    return None


def meta_problem(meta: dict) -> str | None:
    """Why a checkpoint's (or ONNX file's) ``meta`` record would give wrong beads, or None.

    Checked: ``in_channels`` a positive whole number; ``model.depth`` a positive whole number;
    ``threshold`` (0.5 when absent) a probability strictly between 0 and 1; ``normalization``
    (absent: the legacy dtype-max scaling) a complete record of a known method with sane
    numbers; ``instances`` settings :class:`~beadseg.core.config.InstanceConfig` accepts.
    """
    from pydantic import ValidationError

    from ..core.config import InstanceConfig

    if not _is_count(meta.get("in_channels")):
        return (
            f"meta.in_channels is {meta.get('in_channels')!r}, not a positive whole number of image channels"
        )
    model = meta.get("model")
    if not isinstance(model, dict) or not _is_count(model.get("depth")):
        return f"meta.model {model!r} has no depth (a positive whole number)"
    threshold = meta.get("threshold", 0.5)
    if not _is_real(threshold) or not 0 < threshold < 1:
        return f"meta.threshold is {threshold!r}, not a probability between 0 and 1 (exclusive)"
    if meta.get("normalization") is not None:
        problem = _normalization_problem(meta["normalization"])
        if problem:
            return problem
    instances = meta.get("instances", {})
    if not isinstance(instances, dict):
        return f"meta.instances is {instances!r}, not a record of instance settings"
    try:
        InstanceConfig(**instances)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"]))
        return f"meta.instances.{where} is {err.get('input')!r}: {err['msg']}"
    return None


def check_meta(meta: dict, path: str | Path, fix: str = RETRAIN) -> None:
    """Raise :class:`InputError` naming ``path``, the bad entry and ``fix`` when
    :func:`meta_problem` finds one: such a record predicts wrong beads (a threshold of 5 marks
    none) or fails image by image."""
    problem = meta_problem(meta)
    if problem:
        raise InputError(f"{path}: {problem}; {fix}")


def inference_weights(state: dict) -> dict:
    """The weights used for inference: the EMA weights when the run kept them."""
    return state.get("ema_state") or state["model_state"]


def _check_weight_types(model: nn.Module, weights, path: str | Path) -> None:
    """Refuse integer weights where the network has floating-point ones (loading would cast
    them silently: a network of rounded weights that finds no bead)."""
    import torch

    expected = model.state_dict()
    for k, v in weights.items() if isinstance(weights, dict) else ():
        if not (torch.is_tensor(v) and k in expected and expected[k].is_floating_point()):
            continue
        if not v.is_floating_point():
            got, want = (str(t.dtype).replace("torch.", "") for t in (v, expected[k]))
            raise InputError(
                f"{path}: weight {k} is {got}, not floating point (the network needs {want}); "
                f"the file was converted or damaged: {RETRAIN}"
            )


def model_from_checkpoint(state: dict, path: str | Path = "checkpoint") -> nn.Module:
    """Rebuild the network stored in a checkpoint, with its inference weights, in eval mode.

    Raises
    ------
    InputError
        The stored weights do not fit the stored architecture.
    """
    from ..core.errors import BeadsegError
    from . import build_model

    meta = state["meta"]
    try:
        model = build_model(meta["model"], meta["in_channels"])
    except BeadsegError as exc:
        raise InputError(
            f"{path}: its stored architecture is not valid ({exc}); train the model again"
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # pydantic errors are ValueErrors
        first = str(exc).strip().splitlines()[0][:160]
        raise InputError(
            f"{path}: its stored architecture is not valid ({first}); train the model again"
        ) from None
    import torch

    weights = inference_weights(state)
    _check_weight_types(model, weights, path)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise InputError(
            f"{path}: the weights do not fit the stored architecture ({first}); the file was edited or "
            "damaged: use the run's other checkpoint or train again"
        ) from None
    bad = [
        k
        for k, v in weights.items()
        if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        raise InputError(
            f"{path}: the weights hold NaN or inf values ({bad[0]}{' and more' if len(bad) > 1 else ''}); "
            "the run diverged: use an earlier checkpoint or train again with a lower optim.lr"
        )
    return model.eval()


def slim_checkpoint(state: dict, **meta_updates) -> dict:
    """An inference-only copy of a checkpoint: weights (EMA if kept), meta, config and the
    training record; no optimizer or loop state (a third of the size). A copy is made to be
    shared, so absolute paths in its record become folder names
    (:func:`beadseg.core.files.strip_machine_paths`: ``/data/ana/beads/real`` -> ``real``)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_state": inference_weights(state),
        "ema_state": None,
        "epoch": state.get("epoch"),
        "config": strip_machine_paths(state.get("config")),
        "history": strip_machine_paths(state.get("history", [])),
        "best": strip_machine_paths(state.get("best")),
        "meta": strip_machine_paths({**state["meta"], **meta_updates}),
    }


def export_checkpoint(
    model: str | Path, out: str | Path, threshold: float | None = None, instances: dict | None = None
) -> Path:
    """Write a slim inference checkpoint of a model (run folder, checkpoint or ``default``).

    With ``threshold`` the copy carries that probability threshold (marked calibrated), with
    ``instances`` those instance settings over the model's; the source is never modified.
    """
    src = resolve_model_path(model)
    updates = {} if threshold is None else {"threshold": float(threshold), "threshold_calibrated": True}
    out = Path(out)
    if out.resolve() == src.resolve():
        raise InputError(f"{out} is the model being exported; write the copy to another file")
    state = load_checkpoint(src)
    if instances:
        updates["instances"] = {**(state["meta"].get("instances") or {}), **instances}
    return save_checkpoint(out, slim_checkpoint(state, **updates))
