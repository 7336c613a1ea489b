"""Resume records of a prediction run: what decides a frame's outputs (model bytes, threshold,
settings) hashed into each frame's ``records/NAME.json``, and which records can be reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.config import InstanceConfig, PredictConfig
from .counts import COUNT_FIELDS, CountRow


def model_identity(source: str | Path) -> str:
    """The SHA-256 of a model file's bytes (a model is its content, not its path); a model
    that is not a file (built in memory) is identified by its name."""
    from ..models.checkpoint import file_sha256

    return file_sha256(source) if Path(source).is_file() else f"name:{source}"


def predict_settings(
    model: str | Path,
    cfg: PredictConfig,
    threshold: float | None = None,
    inputs: list[str | Path] | None = None,
    shard: tuple[int, int] | None = None,
) -> dict:
    """What decides a prediction folder's content: the model's bytes, the threshold, the
    predict settings that change outputs (not the device, engine, threads or batch size), the inputs and the
    shard. ``beadseg predict`` records it for its output folder; each frame's record carries
    the hash of the part that concerns one frame (:func:`record_hash`)."""
    from ..models.checkpoint import resolve_model_path

    return {
        "model": str(model),
        "model_sha256": model_identity(resolve_model_path(model)),
        "threshold": threshold,
        "predict": cfg.model_dump(exclude=_NOT_COMPARED | {"batch_size"}),
        "inputs": [os.path.abspath(str(i)) for i in inputs or []],  # globs too, as given
        "shard": list(shard) if shard else None,
    }


def record_hash(settings: dict) -> str:
    """The hash stored in every frame's record: model bytes, threshold, predict settings and
    instance settings when not the model's (a record made otherwise is predicted again, never
    reused)."""
    import hashlib

    key = {k: settings[k] for k in ("model_sha256", "threshold", "predict", "instances") if k in settings}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _record_path(out: Path, stem: str) -> Path:
    return out / "records" / f"{stem}.json"


#: settings that may differ between runs whose results are merged (same model, same numbers)
_NOT_COMPARED = {"device", "runtime", "num_threads"}


def _frame_digest(m, cfg: PredictConfig, threshold: float | None, instances: InstanceConfig | None) -> str:
    """The :func:`record_hash` every frame record of this run carries."""
    return record_hash(
        {
            "model_sha256": model_identity(m.source),
            "threshold": threshold,
            "predict": cfg.model_dump(exclude=_NOT_COMPARED | {"batch_size"}),
            # instance settings other than the model's are part of what a record holds
            **({"instances": instances.model_dump()} if instances else {}),
        }
    )


def _next_to_predict(files: list[Path], out: Path, digest: str) -> Path | None:
    """The first of ``files`` whose record cannot be reused (None: all are done)."""
    return next((g for g in files if _reusable_record(_record_path(out, g.stem), g, digest) is None), None)


def _reusable_record(record: Path, source: Path, digest: str) -> CountRow | None:
    """The counts of a frame already predicted from this very file with these settings (None:
    predict it). Records of older versions (no hash), of another file with the same name or of
    other settings are never reused."""
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except ValueError:
        return None  # damaged: predict again
    if data.get("settings_hash") != digest or data.get("source") != str(source.resolve()):
        return None
    try:
        return CountRow(**{k: data[k] for k in COUNT_FIELDS if k in data})
    except TypeError:
        return None  # fields missing: predict again
