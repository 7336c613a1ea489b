"""Shared helpers of the benchmark scripts: where the dev set is, real/synthetic subsets."""

from __future__ import annotations

import os
import platform
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BEADSEG_DATA", ROOT.parent / "shared" / "data" / "microbeads"))
OUT = ROOT / "bench-out"


def subset(name: str, keep) -> Path:
    """A folder of symlinks holding the pairs of DATA whose stem satisfies ``keep``."""
    if not (DATA / "images").is_dir():
        raise SystemExit(f"the dev set is not at {DATA}; set BEADSEG_DATA")
    out = OUT / "data" / name
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for p in sorted((DATA / sub).iterdir()):
            link = out / sub / p.name
            if keep(p.stem) and not link.exists():
                try:
                    link.symlink_to(p)
                except FileExistsError:  # another benchmark process made it just now
                    pass
    return out


def real_subset() -> Path:
    """The real tiles (names with a dilution, not synthetic_*)."""
    return subset("real", lambda s: not s.startswith("synthetic"))


def synthetic_subset() -> Path:
    return subset("synthetic80x", lambda s: s.startswith("synthetic"))


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, {date.today().isoformat()}"
    )
