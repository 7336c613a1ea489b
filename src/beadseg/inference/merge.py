"""`beadseg merge`: the counts, errors and bead tables of prediction runs made with one model and
one set of settings (the shards of a job array) joined into one folder.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..core.config import InstanceConfig, PredictConfig
from ..core.errors import InputError
from ..core.files import read_csv_rows, write_csv
from ..outputs.provenance import write_json
from .bead_tables import BEADS_CSV, merge_bead_tables
from .counts import _NEWER_COUNT_FIELDS, COUNT_FIELDS, ERROR_FIELDS
from .records import NOT_COMPARED


@dataclass(frozen=True)
class MergeSummary:
    """What :func:`merge_runs` joined (``missing_shards``: shards left out with ``incomplete``)."""

    out: Path
    n_images: int
    n_errors: int
    missing_shards: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"out": str(self.out), "n_images": self.n_images, "n_errors": self.n_errors,
                "missing_shards": list(self.missing_shards)}  # fmt: skip


def _comparable_settings(settings: dict) -> dict:
    """Settings minus what may differ between shards, in today's form (old runs wrote
    ``blend: gaussian`` and ``instances.threshold``; both read as today's settings)."""
    # instance_method follows from model and instances (older runs did not write it)
    drop = ("shard", "device", "runtime", "instance_method")
    key = {k: v for k, v in settings.items() if k not in drop}
    if isinstance(key.get("predict"), dict):
        key["predict"] = PredictConfig(**key["predict"]).model_dump(exclude=NOT_COMPARED)
    if isinstance(key.get("instances"), dict):
        key["instances"] = InstanceConfig(**key["instances"]).model_dump()
    key.setdefault("precision", "float32")  # runs before int8 networks ran float32
    return key


def _read_run(run: Path) -> tuple[dict, list[dict], list[dict]]:
    """settings.json, counts.csv and errors.csv of a finished prediction folder."""
    sfile = run / "settings.json"
    if not sfile.is_file() or not (run / "counts.csv").is_file():
        raise InputError(f"{run} is not a finished `beadseg predict` folder (no settings.json or counts.csv)")
    try:
        settings = json.loads(sfile.read_text())
        if not isinstance(settings, dict):
            raise ValueError("not a mapping")
    except (ValueError, UnicodeDecodeError):
        raise InputError(
            f"{sfile} is damaged (not the JSON `beadseg predict` writes); predict that shard again"
        ) from None
    tables = []
    for name, columns in (("counts.csv", COUNT_FIELDS), ("errors.csv", ERROR_FIELDS)):
        path = run / name
        if name == "errors.csv" and not path.is_file():
            tables.append([])
            continue
        required = [c for c in columns if c not in _NEWER_COUNT_FIELDS]
        tables.append(read_csv_rows(path, required, "table", "it is damaged: predict that shard again"))
    return settings, tables[0], tables[1]


def _is_shard(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)


def _missing_shards(settings: list[dict]) -> tuple[int, list[int]] | None:
    """(N, the shard indices missing) when the runs are shards i/N and not all N are given."""
    shards = [tuple(s["shard"]) for s in settings if _is_shard(s.get("shard"))]
    if not shards:
        return None
    n = shards[0][1]
    missing = sorted(set(range(n)) - {i for i, _ in shards})
    return (n, missing) if missing else None


def merge_runs(runs: list[str | Path], out: str | Path, incomplete: bool = False) -> MergeSummary:
    """Join the counts.csv / errors.csv of prediction runs (e.g. the shards of a job array),
    and their beads.csv (sorted by image) when every run has one.

    Parameters
    ----------
    runs : paths
        Finished prediction folders of one model and one set of settings.
    out : path
        The merged folder (not one of ``runs``).
    incomplete : bool
        Merge although shards of the array are missing; the merged settings.json then lists
        them (``missing_shards``) and the run is marked incomplete.

    Raises
    ------
    InputError
        A folder is not a finished prediction run or is damaged, runs were made with different
        models, settings or shard counts, an image was predicted in more than one run, shards
        are missing (without ``incomplete``), or ``out`` is one of ``runs``.
    """
    if not runs:
        raise InputError("give the prediction folders to merge")
    out = Path(out)
    if any(out.resolve() == Path(r).resolve() for r in runs):
        raise InputError(f"--out {out} is one of the folders being merged; give a new folder")
    ref_key, ref_run = None, None
    rows, errors, all_settings = [], [], []
    for run in map(Path, runs):
        settings, counts, errs = _read_run(run)
        all_settings.append(settings)
        try:
            key = _comparable_settings(settings)
        except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
            raise InputError(
                f"{run / 'settings.json'} is damaged (settings beadseg cannot read); predict that shard again"
            ) from None
        if ref_key is None:
            ref_key, ref_run = key, run
        elif key != ref_key:
            diff = sorted(k for k in key.keys() | ref_key.keys() if key.get(k) != ref_key.get(k))
            raise InputError(
                f"{run} was made with other settings than {ref_run} ({', '.join(diff)}"
                "); merge only runs of one model and one set of settings"
            )
        rows += counts
        errors += errs
    dup = sorted(n for n, k in Counter(r["image"] for r in rows).items() if k > 1)
    if dup:
        raise InputError(
            f"images predicted in more than one run: {', '.join(dup[:5])}; merge runs of disjoint inputs "
            "(the shards i/N of one array)"
        )
    counts_by_n = {s["shard"][1] for s in all_settings if _is_shard(s.get("shard"))}
    if len(counts_by_n) > 1:
        raise InputError(
            f"the runs are shards of arrays of different sizes ({sorted(counts_by_n)}); merge one array"
        )
    gap = _missing_shards(all_settings)
    if gap and not incomplete:
        n, missing = gap
        raise InputError(
            f"shards {', '.join(f'{i}/{n}' for i in missing)} are missing ({len(runs)} of {n} "
            "given); give every shard's folder, or --incomplete to merge what is there"
        )
    rows.sort(key=lambda r: r["image"])
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "counts.csv", rows, COUNT_FIELDS)
    write_csv(out / "errors.csv", errors, ERROR_FIELDS)
    tables = [Path(r) / BEADS_CSV for r in runs]
    if all(t.is_file() for t in tables):  # runs of older versions have none
        merge_bead_tables(out / BEADS_CSV, tables)
    record = {**ref_key, "merged_from": [str(r) for r in runs], "complete": not gap}
    if gap:
        record["missing_shards"] = [f"{i}/{gap[0]}" for i in gap[1]]
    write_json(out / "settings.json", record)
    return MergeSummary(out, len(rows), len(errors), tuple(f"{i}/{gap[0]}" for i in gap[1]) if gap else ())
