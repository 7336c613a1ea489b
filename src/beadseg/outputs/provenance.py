"""What produced an output folder: version, command, seed, time, machine."""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.files import write_text


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and paths inside ``obj`` to plain JSON types (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (numpy types converted, NaN written as null)."""
    return write_text(path, json.dumps(to_jsonable(data), indent=2) + "\n")


def write_provenance(out_dir: str | Path, command: str, seed: int | None = None, **extra) -> Path:
    """Write ``provenance.json`` into ``out_dir``."""
    info = {
        "beadseg_version": __version__,
        "command": command,
        "argv": sys.argv,
        "seed": seed,
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **extra,
    }
    return write_json(Path(out_dir) / "provenance.json", info)
