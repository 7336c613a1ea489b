"""Resume records of a prediction run.

Each predicted frame gets ``records/NAME.json``, written last, holding its counts, the hash of
what decides its outputs (model bytes, threshold, predict and instance settings) and the
identity of the file it was read from: path, size, modification time and SHA-256 of its bytes.
A rerun into the same folder reuses a record only when all of these match, so a frame replaced
under the same name (another focus, a corrected export) is predicted again, never reported with
its old count.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..core.config import InstanceConfig, PredictConfig
from .counts import COUNT_FIELDS, CountRow

#: settings that may differ between runs whose results are merged (same model, same numbers):
#: where and how fast the network runs, not what it computes. The precision asked (auto) is one
#: of them; the precision that ran is compared instead (``precision`` in settings.json and in
#: every frame's record)
NOT_COMPARED = {"device", "runtime", "num_threads", "batch_size", "precision"}


def model_identity(source) -> str:
    """The SHA-256 of a model file's bytes (a model is its content, not its path). A model
    loaded in memory is identified by its name and the settings it carries (threshold, instance
    settings, normalisation, channels): its weights are not hashed."""
    from ..models.checkpoint import file_sha256

    if isinstance(source, (str, Path)):
        return file_sha256(source) if Path(source).is_file() else f"name:{source}"
    if isinstance(getattr(source, "source", None), str) and Path(source.source).is_file():
        return file_sha256(source.source)
    carried = {
        "threshold": getattr(source, "threshold", None),
        "instances": getattr(getattr(source, "instances", None), "model_dump", dict)(),
        "normalization": getattr(source, "normalization", None),
        "in_channels": getattr(source, "in_channels", None),
    }
    digest = hashlib.sha256(json.dumps(carried, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"name:{getattr(source, 'source', '?')}:{digest}"


def predict_settings(
    model,
    cfg: PredictConfig,
    threshold: float | None = None,
    inputs: list[str | Path] | None = None,
    shard: tuple[int, int] | None = None,
    instances: dict | None = None,
) -> dict:
    """What decides a prediction folder's content: the model's bytes, the threshold, the
    predict settings that change outputs (not the device, engine, threads or batch size), the
    inputs, the shard and the instance settings changed from the model's. ``model``: a path,
    ``default`` or a loaded model."""
    from ..models.checkpoint import resolve_model_path

    if isinstance(model, (str, Path)):
        name, identity = str(model), model_identity(resolve_model_path(model))
    else:
        name, identity = f"loaded:{getattr(model, 'source', '?')}", model_identity(model)
    return {
        "model": name,
        "model_sha256": identity,
        "threshold": threshold,
        "predict": cfg.model_dump(exclude=NOT_COMPARED),
        "inputs": [os.path.abspath(str(i)) for i in inputs or []],  # globs too, as given
        "shard": list(shard) if shard else None,
        **({"instances": dict(instances)} if instances else {}),
    }


def record_hash(settings: dict) -> str:
    """The hash stored in every frame's record: model bytes, threshold, predict settings and
    instance settings when not the model's (a record made otherwise is predicted again, never
    reused)."""
    key = {k: settings[k] for k in ("model_sha256", "threshold", "predict", "instances") if k in settings}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def record_path(out: Path, stem: str) -> Path:
    return out / "records" / f"{stem}.json"


def frame_digest(m, cfg: PredictConfig, threshold: float | None, instances: InstanceConfig | None) -> str:
    """The :func:`record_hash` every frame record of this run carries (``m``: the loaded model;
    an int8 network's records are not a float one's)."""
    precision = getattr(m, "precision", "float32")
    predict = cfg.model_dump(exclude=NOT_COMPARED)
    return record_hash(
        {
            "model_sha256": model_identity(m),
            "threshold": threshold,
            "predict": predict if precision == "float32" else {**predict, "precision": precision},
            # instance settings other than the model's are part of what a record holds
            **({"instances": instances.model_dump()} if instances else {}),
        }
    )


def file_identity(path: Path) -> dict:
    """What a record keeps of its source file: absolute path, size, modification time (ns) and
    the SHA-256 of its bytes (~20 ms for a 15 MB 4K PNG)."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {
        "source": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": h.hexdigest(),
    }


def reusable_record(record: Path, source: Path, digest: str) -> CountRow | None:
    """The counts of a frame already predicted from this very file, unchanged since, with these
    settings (None: predict it). Records of older versions, of another file with the same name,
    of a file changed since (size, time or bytes) or of other settings are never reused."""
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except (ValueError, UnicodeDecodeError):
        return None  # damaged: predict again
    if data.get("settings_hash") != digest or data.get("source") != str(source.resolve()):
        return None
    try:
        st = source.stat()
    except OSError:
        return None
    if data.get("size") != st.st_size or data.get("mtime_ns") != st.st_mtime_ns:
        return None
    if data.get("sha256") != file_identity(source)["sha256"]:
        return None
    try:
        return CountRow(**{k: data[k] for k in COUNT_FIELDS if k in data})
    except TypeError:
        return None  # fields missing: predict again


def next_to_predict(files: list[Path], out: Path, digest: str) -> Path | None:
    """The first of ``files`` whose record cannot be reused (None: all are done)."""
    return next((g for g in files if reusable_record(record_path(out, g.stem), g, digest) is None), None)
