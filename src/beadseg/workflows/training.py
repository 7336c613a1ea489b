"""Workflows that train: ``train`` (new or resumed), ``lr-find``, ``compare``.

Each holds its output folder by the output-folder rule
(:class:`~beadseg.outputs.folder.OutputFolder`) and returns a frozen result: the Python API
refuses exactly where the command line refuses (``beadseg.train(cfg, out)`` on a folder that
holds a run names ``resume=`` and ``overwrite``, and touches nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..core.config import Config, load_config
from ..core.errors import ConfigError, InputError
from ..core.extras import require
from ..outputs.folder import OutputFolder, default_output, settings_difference
from ._common import absolute, plain, quiet

TRAIN_OUTPUTS = (
    "config.yaml",
    "split.json",
    "history.csv",
    "curves.png",
    "best.pt",
    "last.pt",
    "best.onnx",
    "result.json",
    "provenance.json",
)
LR_FIND_OUTPUTS = ("lr_find.png", "lr_find.json", "config.yaml", "provenance.json")
COMPARE_OUTPUTS = ("compare.csv", "compare.md", "compare.png")


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended (the content of its ``result.json``).

    ``status`` is ``ok``, ``early-stopped``, ``time-limit`` or ``collapsed`` (the kept model
    predicts < 0.1x or > 10x the true foreground, or the loss became non-finite), with the
    ``reason``; under torchrun only ``rank`` 0 wrote files.
    """

    run_dir: Path
    status: str
    reason: str = ""
    model: str = ""
    epochs_run: int = 0
    best_epoch: int = 0
    best_val_iou: float | None = None
    best_val_iou_pooled: float | None = None
    final_val_iou: float | None = None
    seconds: float = 0.0
    device: str = ""
    rank: int = 0
    world_size: int = 1
    details: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, result: dict, run_dir: Path) -> TrainResult:
        names = {f.name for f in fields(cls)} - {"run_dir", "details"}
        known = {k: result[k] for k in names if result.get(k) is not None}
        return cls(Path(run_dir), details=dict(result), **known)

    @property
    def collapsed(self) -> bool:
        return self.status == "collapsed"

    def to_dict(self) -> dict:
        return plain({**self.details, **{k: v for k, v in asdict(self).items() if k != "details"}})


def _data_paths(cfg: Config) -> Config:
    """The config with its data folders absolute: a run folder (and its config.yaml) that moves,
    or a resume from another working folder, still finds its data."""

    def fix(p):
        if p is None:
            return None
        return [absolute(q) for q in p] if isinstance(p, list) else absolute(p)

    data = cfg.data.model_copy(update={"path": fix(cfg.data.path), "val_path": fix(cfg.data.val_path)})
    return cfg.model_copy(update={"data": data})


def train(
    cfg: Config | None = None,
    out: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    data: str | Path | None = None,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train a bead segmentation model into a run folder (`beadseg train`).

    Parameters
    ----------
    cfg : Config
        The resolved configuration (:func:`beadseg.load_config`); not given with ``resume``.
    out : path, optional
        The run folder; default ``./<data folder>-train``. A folder that holds a run is refused
        (continue it with ``resume=``, or ``overwrite=True`` to start again).
    resume : path, optional
        A run folder to continue exactly where its ``last.pt`` stopped, with the settings it
        started with (an edited ``config.yaml`` is refused, naming the edit).
    data : path, optional
        With ``resume``: where the run's data is now, when it has moved (it must hold the
        images of the run's split).
    overwrite : bool
        Replace the run (or other beadseg output) in ``out``; a user's files are never removed.
    device : str, optional
        ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``; default ``train.device``.

    Raises
    ------
    InputError, ConfigError
        The folder rule, bad data, or a resume that would change the run.
    """
    require("training (beadseg train)")
    from ..training import train as run

    log = quiet(log)
    if resume is not None:
        if cfg is not None or out is not None and Path(out).resolve() != Path(resume).resolve() or overwrite:
            raise ConfigError(
                f"resume={resume} continues that run with the settings it started with; a config, "
                "another out or overwrite would change it: leave them out, or start a new run"
            )
        return _resume(Path(resume), data, device=device, progress=progress, log=log, on_epoch=on_epoch)
    if cfg is None:
        raise ConfigError("give a training config (beadseg.load_config(...)) or resume= a run folder")
    if data is not None:
        raise ConfigError("data= goes with resume=; for a new run set the config's data.path")
    cfg = _data_paths(cfg)
    out = Path(out) if out is not None else default_output("train", _first(cfg.data.path))
    hint = (
        f"{out} holds this run already: continue it with resume={out} (`beadseg train --resume {out}`), or "
        "overwrite=True (--overwrite) to start it again"
    )
    with OutputFolder.claim(
        out,
        "train",
        cfg.model_dump(mode="json"),
        outputs=TRAIN_OUTPUTS,
        overwrite=overwrite,
        inputs=[cfg.data.path, cfg.data.val_path],
        continue_hint=hint,
    ):
        res = run(cfg, out, progress=progress, log=log, on_epoch=on_epoch, device=device)
    return TrainResult.of(res, out)


def _resume(run_dir: Path, data, **options) -> TrainResult:
    """Continue the run in ``run_dir`` (see :func:`train`)."""
    from ..training import train as run

    with OutputFolder.claim(run_dir, "train", None, outputs=TRAIN_OUTPUTS):
        data_path = _resume_checks(run_dir, data)
        res = run(None, run_dir, resume=run_dir, data_path=data_path, **options)
    return TrainResult.of(res, run_dir)


def _first(path):
    return path[0] if isinstance(path, list) else path


def _resume_checks(run: Path, data: str | Path | None) -> str | None:
    """Refuse a resume whose config.yaml was edited since the run started; find the data (the
    config's folder, or ``data`` when it moved). Returns the data folder to use (None: the
    config's own)."""
    from ..training.state import resume_point

    recorded, _ = resume_point(run, log=lambda line: None)
    if (run / "config.yaml").is_file():
        on_disk = load_config(run / "config.yaml")
        a, b = recorded.model_dump(mode="json"), on_disk.model_dump(mode="json")
        if a != b:
            raise ConfigError(
                f"{run / 'config.yaml'} was edited after the run started ({settings_difference(a, b)}); "
                "resume continues a run with the settings it started with: undo the edit, or start a "
                f"new run from it (beadseg train --config {run / 'config.yaml'} --out NEW_RUN)"
            )
    if data is None:
        missing = [p for p in _folders(recorded.data.path) if not Path(p).is_dir()]
        if missing:
            raise InputError(
                f"the data of {run} is gone from {missing[0]}; give its new place to resume "
                f"(`beadseg train --resume {run} NEW_DATA`, or data= in Python)"
            )
        return None
    _check_same_data(run, Path(data))
    return absolute(data)


def _folders(path) -> list[str]:
    return [] if path is None else ([path] if isinstance(path, str) else list(path))


def _check_same_data(run: Path, data: Path) -> None:
    """``data`` holds every image the run's split used (it is the run's data, moved)."""
    import json

    from ..core.files import find_pairs

    split = json.loads((run / "split.json").read_text()) if (run / "split.json").is_file() else None
    names = {p.name for p in find_pairs(data)}
    used = set(split.get("train", []) + split.get("val", [])) if split else set()
    missing = sorted(used - names)
    if missing:
        raise InputError(
            f"{data} is not the data of {run}: it lacks {len(missing)} of the run's images "
            f"(e.g. {missing[0]}); give the folder the run was trained on"
        )


@dataclass(frozen=True)
class LrFindResult:
    """A learning-rate range test: the smoothed loss at each learning rate, and the suggested
    learning rate (None, with ``warning`` saying why, when the curve has no clear minimum)."""

    out: Path
    suggested_lr: float | None
    warning: str
    steps_run: int
    lrs: tuple[float, ...] = field(repr=False)
    losses: tuple[float, ...] = field(repr=False)

    def to_dict(self) -> dict:
        return plain(asdict(self))


def lr_find(
    cfg: Config, out: str | Path | None = None, *, steps: int = 200, overwrite: bool = False
) -> LrFindResult:
    """Learning-rate range test (`beadseg lr-find`): ``lr_find.png`` and ``lr_find.json``."""
    from ..core.config import save_config

    require("the learning-rate range test (beadseg lr-find)")
    from ..training import lr_find as range_test

    cfg = _data_paths(cfg)
    out = Path(out) if out is not None else default_output("lr-find", _first(cfg.data.path))
    settings = {"config": cfg.model_dump(mode="json"), "steps": steps}
    with OutputFolder.claim(
        out, "lr-find", settings, outputs=LR_FIND_OUTPUTS, overwrite=overwrite, inputs=[cfg.data.path]
    ):
        r = range_test(cfg, out, steps=steps)
        save_config(cfg, out / "config.yaml")
    return LrFindResult(
        out, r["suggested_lr"], r.get("warning", ""), r["steps_run"], tuple(r["lrs"]), tuple(r["losses"])
    )


@dataclass(frozen=True)
class CompareResult:
    """The table of runs: one row per run folder."""

    rows: tuple[dict, ...]
    out: Path | None = None

    def markdown(self) -> str:
        from ..evaluation.compare import markdown_table

        return markdown_table(list(self.rows))

    def to_dict(self) -> dict:
        return plain({"rows": list(self.rows), "out": self.out})


def compare(
    runs: list[str | Path], out: str | Path | None = None, *, overwrite: bool = False
) -> CompareResult:
    """Tabulate training runs (`beadseg compare`); with ``out`` also write compare.csv, .md, .png."""
    from ..evaluation.compare import compare_runs

    if out is None:
        return CompareResult(tuple(compare_runs(runs)))
    settings = {"runs": [absolute(r) for r in runs]}
    with OutputFolder.claim(
        out, "compare", settings, outputs=COMPARE_OUTPUTS, overwrite=overwrite, inputs=runs
    ):
        rows = compare_runs(runs, out)
    return CompareResult(tuple(rows), Path(out))
