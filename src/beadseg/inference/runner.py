"""`beadseg predict` over many images: inputs collected and sharded, one frame in memory at a
time (the next one inferred while the current one is finished), resume records, and the
run-level tables (counts.csv, beads.csv, errors.csv, settings.json, summary.json).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.config import Config, InstanceConfig, PredictConfig, save_config
from ..core.errors import BeadsegError, BeadsegWarning, InputError
from ..core.files import find_images, write_csv
from ..core.limits import check_threshold
from ..outputs.provenance import write_json, write_provenance
from .bead_tables import BEADS_CSV, concat_bead_tables
from .counts import COUNT_FIELDS, ERROR_FIELDS, CountRow, PredictSummary, Tally
from .frames import FirstRead, Lookahead, predict_file, start_finishing_imports
from .predictor import Predictor
from .records import NOT_COMPARED, file_identity, frame_digest, next_to_predict, record_path, reusable_record
from .runtime import load_model


def collect_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files, folders (or their images/ subfolder) and globs, sorted and de-duplicated.

    Raises
    ------
    InputError
        No input, or two different files with the same stem (their outputs, named by the
        stem, would overwrite each other).
    """
    if not inputs:
        raise InputError("no input given; name image files, folders or globs")
    files: list[Path] = []
    for item in inputs:
        files += find_images(item)
    seen, out, by_stem = set(), [], {}
    for f in sorted(files):
        if f.resolve() in seen:
            continue
        if f.stem in by_stem:
            raise InputError(
                f"{by_stem[f.stem]} and {f} have the same name {f.stem!r}; outputs are named by "
                "it: rename one, or predict them into separate --out folders"
            )
        seen.add(f.resolve())
        by_stem[f.stem] = f
        out.append(f)
    return out


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` -> (i, N) with 0 <= i < N; None stays None."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r} is not i/N (e.g. --shard 0/8)") from None
    if not (n >= 1 and 0 <= i < n):
        raise InputError(f"--shard {text}: need N >= 1 and 0 <= i < N (e.g. 0/4, 1/4, 2/4, 3/4)")
    return i, n


def _run_settings(
    m: Predictor,
    cfg: PredictConfig,
    threshold: float | None,
    shard: tuple[int, int] | None,
    instances: InstanceConfig | None = None,
) -> dict:
    """What makes two runs comparable (``settings.json``; :func:`merge_runs` checks it)."""
    from ..core.beads import resolve_method

    inst = instances or m.instances
    return {
        "model": m.source,
        "model_meta": {k: v for k, v in m.meta.items() if k not in ("instances", "fingerprint")},
        "threshold": m.threshold if threshold is None else threshold,
        "instances": inst.model_dump(),
        "instance_method": resolve_method(inst, m.centre_head),
        "precision": getattr(m, "precision", "float32"),  # what ran: int8 counts are not float32's
        "predict": cfg.model_dump(exclude=NOT_COMPARED),
        "shard": list(shard) if shard else None,
    }


def _instances_of(m: Predictor, instances: InstanceConfig | dict | None) -> InstanceConfig | None:
    """The instance settings of a run: given, the model's (None), or the model's with the keys
    of a dict changed (validated: a bad value is one line naming the key)."""
    if not isinstance(instances, dict):
        return instances
    from ..core.config_parsing import validate

    return validate(InstanceConfig, m.instances.model_dump(), instances, "model", "instances")


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar (or nothing); yields the function that advances it."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("predicting", total=total)
    with bar:
        yield lambda: bar.update(task, advance=1)


def predict_images(
    model,
    inputs: list[str | Path],
    out: str | Path,
    cfg: PredictConfig | None = None,
    threshold: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    shard: tuple[int, int] | None = None,
    instances: InstanceConfig | dict | None = None,
) -> PredictSummary:
    """Predict every input image, one in memory at a time, and write run-level tables.

    ``model``: a path, ``default``, or a loaded model. Frames that cannot be read are skipped
    and listed in ``errors.csv``. With ``shard=(i, N)`` only every N-th of the sorted inputs,
    from the i-th, is processed (N cluster jobs, no coordination). A frame whose record exists
    and whose file has not changed since (:mod:`~beadseg.inference.records`) is not predicted
    again: a killed job resumes. Writes ``counts.csv``, ``beads.csv``, ``errors.csv``,
    ``settings.json``, ``summary.json``, ``config.yaml`` and the per-image outputs of
    :func:`predict_file`. ``cfg.pixel_size_um`` (else each TIFF's resolution tags) adds the µm
    columns; ``instances`` (default: the model's; a dict changes only the keys it names)
    picks how beads are separated.

    Raises
    ------
    InputError
        No input, or no input could be predicted.
    """
    cfg = cfg or PredictConfig()
    check_threshold(threshold)
    files = collect_inputs(inputs)
    if shard is not None:
        files = files[shard[0] :: shard[1]]
    first_read = FirstRead.of(files, Path(out))  # decoded while the model loads
    m = (
        load_model(model, cfg.device, cfg.runtime, cfg.num_threads, cfg.precision)
        if isinstance(model, (str, Path))
        else model
    )
    instances = _instances_of(m, instances)
    digest = frame_digest(m, cfg, threshold, instances)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = _run_settings(m, cfg, threshold, shard, instances)
    tally = Tally()
    importing = start_finishing_imports()
    with _progress(progress, len(files)) as advance, Lookahead(m, cfg, first_read) as ahead:
        for i, f in enumerate(files):
            record = record_path(out, f.stem)
            try:
                done = reusable_record(record, f, digest)
                if done is not None:
                    tally.add(done, None)
                    continue
                inferred = ahead.take(f)
                following = next_to_predict(files[i + 1 :], out, digest)
                if following is not None:
                    ahead.start(following)  # its network runs while this frame is finished
                importing.join()  # the finishing modules, imported in one thread only
                r = predict_file(m, f, out, cfg, threshold, inferred=inferred, instances=instances)
            except BeadsegError as exc:
                tally.errors.append({"image": str(f), "error": str(exc)})
                if log:
                    log(f"skipped {f}: {exc}")
                continue
            finally:
                advance()
            row = CountRow.of(r)
            # last: its presence marks the frame complete, for this file as it is now and these settings
            write_json(record, {**row.as_dict(), **file_identity(f), "settings_hash": digest})
            tally.add(row, r)
    summary = tally.freeze(out)
    _warn_out_of_domain(summary.counts, m)
    run = {**settings, "device": m.device_type, "runtime": m.runtime}
    _write_run_tables(out, summary, run, Config(predict=cfg, instances=instances or m.instances))
    if not summary.counts and summary.errors:
        first = summary.errors[0]["error"]
        more = f" (and {len(summary.errors) - 1} more)" if len(summary.errors) > 1 else ""
        raise InputError(f"no image could be predicted ({first}{more}); fix that input and run again")
    return summary


def _write_run_tables(out: Path, summary: PredictSummary, settings: dict, cfg: Config) -> None:
    """The run-level files: counts.csv, beads.csv (every bead, sorted by image; resumed frames'
    from their beads/NAME.csv), errors.csv, settings.json, summary.json, config.yaml,
    provenance.json."""
    write_csv(out / "counts.csv", [r.as_dict() for r in summary.counts], COUNT_FIELDS)
    images = sorted(r.image for r in summary.counts)
    concat_bead_tables(out / BEADS_CSV, [(name, out / "beads" / f"{name}.csv") for name in images])
    write_csv(out / "errors.csv", summary.errors, ERROR_FIELDS)
    write_json(out / "settings.json", settings)
    write_json(out / "summary.json", summary.to_dict())
    save_config(cfg, out / "config.yaml")  # the one schema of every command
    write_provenance(out, "predict")


def _warn_out_of_domain(rows, m: Predictor) -> None:
    """One warning line per run naming the images unlike the model's training data."""
    import warnings

    odd = [r.image for r in rows if r.out_of_domain]
    if odd:
        shown = ", ".join(odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        warnings.warn(
            f"{len(odd)} of {len(rows)} images look unlike the training data of {m.source} "
            f"({shown}); their counts may be wrong (counts.csv: out_of_domain, domain_reason)",
            BeadsegWarning,
            stacklevel=3,
        )
