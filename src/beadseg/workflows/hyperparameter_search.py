"""`beadseg sweep`: hyperparameter search with Optuna over any config keys.

The search space is YAML::

    base_config: configs/default_model.yaml     # optional
    base:                                        # optional overrides of the base config
      data: {path: data/microbeads}
      train: {epochs: 8}
    metric: val_iou                              # any TrainConfig.monitor; val_loss minimised
    space:
      optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      model.name: {type: categorical, choices: [unet, attention_unet]}
      data.crop_size: {type: int, low: 128, high: 256, step: 64}

Trials run short trainings; poor ones are pruned from their per-epoch metric (median pruner).
The study lives in an Optuna storage (SQLite file by default, any RDB URL such as PostgreSQL so
workers on many nodes share one study); running the command again continues the study up to
``--trials`` finished trials.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.config import Config, load_config, save_config
from ..core.config_parsing import config_keys, read_yaml
from ..core.errors import ConfigError, InputError
from ..core.files import write_csv
from ..outputs.provenance import write_json


class Param(BaseModel):
    """One searched key."""

    model_config = ConfigDict(extra="forbid")
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: list | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in ("float", "int", "categorical"):
            raise ValueError(f"type {v!r} is not float, int or categorical")
        return v


class SearchSpace(BaseModel):
    """The sweep file."""

    model_config = ConfigDict(extra="forbid")
    base_config: str | None = None
    base: dict = Field(default_factory=dict)
    metric: str = "val_iou"
    study_name: str = "beadseg-sweep"
    seed: int = Field(0, ge=0)
    space: dict[str, Param]


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search-space file: known config keys, non-empty ranges."""
    path = Path(path)
    raw = read_yaml(path, "search space", "space:, base:, metric:, ...")
    try:
        space = SearchSpace.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    valid = set(config_keys(Config))
    if not space.space:
        raise ConfigError(f"{path}: the space is empty; name at least one key to search")
    for key, p in space.space.items():
        if key not in valid:
            import difflib

            close = difflib.get_close_matches(key, valid, n=1)
            raise ConfigError(
                f"{path}: unknown config key {key!r} in space"
                + (f"; did you mean {close[0]!r}?" if close else "")
            )
        if p.type == "categorical":
            if not p.choices:
                raise ConfigError(f"{path}: {key} has no choices")
        elif p.low is None or p.high is None or not p.low < p.high:
            raise ConfigError(f"{path}: {key} needs low < high (got low={p.low}, high={p.high})")
        elif p.log and p.low <= 0:
            raise ConfigError(f"{path}: {key} is log-scaled, so low must be > 0 (got {p.low})")
    if space.metric not in ("val_iou", "val_iou_pooled", "val_dice", "val_loss"):
        raise ConfigError(
            f"{path}: metric {space.metric!r} is not val_iou, val_iou_pooled, val_dice or val_loss"
        )
    return space


def _suggest(trial, key: str, p: Param):
    if p.type == "categorical":
        return trial.suggest_categorical(key, p.choices)
    if p.type == "int":
        return trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)


def _optuna():
    from ..core.extras import require

    require("beadseg sweep", "optuna", install='pip install "beadseg[hpc]"')
    import optuna

    return optuna


def _storage(url: str):
    optuna = _optuna()

    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:
        raise InputError(
            f"cannot open the Optuna storage {url}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]} (check the URL, the server and its "
            "driver)"
        ) from None


def _flatten(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            text = yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()
            out.append(f"{prefix}{k}={text}")
    return out


def run_study(
    space_file: str | Path,
    trials: int,
    out: str | Path = "beadseg-sweep",
    storage: str | None = None,
    log=print,
) -> dict:
    """Run (or continue) a study until it has ``trials`` finished trials.

    Finished means complete or pruned. Several workers may share one study (``storage``): each
    stops after its current trial once the study has ``trials`` finished, so the total
    overshoots by at most the trials still running elsewhere.

    Returns
    -------
    dict
        Best value, params and trial counts; writes trials.csv, best_config.yaml,
        history.png and importance.png into ``out``.
    """
    from ..training import train

    optuna = _optuna()
    space = load_space(space_file)
    out = Path(out)
    base_overrides = _flatten(space.base) + [f"train.monitor={space.metric}"]
    load_config(space.base_config, base_overrides)  # fail early on a bad base
    out.mkdir(parents=True, exist_ok=True)
    default_storage = storage is None
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(optuna, space, _storage(storage))
    _fail_stale_trials(optuna, study, out, every_running=default_storage, log=log)
    # a resumed study continues the sampler's sequence instead of replaying it from the start
    study.sampler = optuna.samplers.TPESampler(seed=space.seed + len(study.trials))

    def objective(trial):
        trial.set_user_attr("out", str(out.resolve()))
        params = {k: _suggest(trial, k, p) for k, p in space.space.items()}
        cfg = load_config(space.base_config, base_overrides + [f"{k}={v}" for k, v in params.items()])
        run = out / f"trial_{trial.number:04d}"

        def report(epoch: int, row: dict) -> None:
            trial.report(row[space.metric], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        res = train(cfg, run, progress=False, log=lambda s: None, on_epoch=report)
        trial.set_user_attr("run", str(run))
        if res["status"] == "collapsed":
            raise optuna.TrialPruned()
        best = res.get("best_monitor")
        return best if best is not None else float("nan")

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    todo = max(0, trials - len([t for t in study.trials if t.state in finished]))
    if todo:
        # other workers of the same study count too: stop once the study has `trials` finished
        enough = optuna.study.MaxTrialsCallback(trials, states=finished)
        # a failing trial re-raises its error (one line from the CLI); Optuna's own warning
        # with the traceback would come first, so only its errors are shown meanwhile
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            study.optimize(objective, n_trials=todo, catch=(), callbacks=[enough])
        finally:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
    return _report(study, out, space, log)


def _open_study(optuna, space: SearchSpace, store):
    return optuna.create_study(
        study_name=space.study_name,
        storage=store,
        direction="minimize" if space.metric == "val_loss" else "maximize",
        load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=2),
    )


def _fail_stale_trials(optuna, study, out: Path, every_running: bool, log) -> None:
    """Mark FAIL the RUNNING trials of a killed worker of this folder.

    The caller holds ``out`` (its lock), so no live process runs a trial for it: a RUNNING trial
    recorded for ``out`` (or any RUNNING trial when the study lives in ``out``'s own SQLite file)
    was left by a killed run and would stay RUNNING forever.
    """
    mine = str(out.resolve())
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if every_running or t.user_attrs.get("out") == mine:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            log(f"trial {t.number} was left running by a killed sweep; marked failed")


def _report(study, out: Path, space: SearchSpace, log) -> dict:
    optuna = _optuna()

    rows = []
    for t in study.trials:
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                **{f"param:{k}": v for k, v in t.params.items()},
                "run": t.user_attrs.get("run", ""),
            }
        )
    fields = sorted({k for r in rows for k in r}, key=lambda k: (not k == "number", k))
    write_csv(out / "trials.csv", rows, fields)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    result = {
        "n_trials": len(study.trials),
        "n_complete": len(complete),
        "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
    }
    if complete:
        best = study.best_trial
        result.update(best_value=best.value, best_params=best.params, best_run=best.user_attrs.get("run"))
        cfg = load_config(Path(best.user_attrs["run"]) / "config.yaml")
        save_config(cfg, out / "best_config.yaml")
        from ..outputs.figures import plot_sweep

        importance = {}
        if len(complete) >= 2 and len(space.space) >= 1:
            try:
                importance = optuna.importance.get_param_importances(study)
            except (RuntimeError, ValueError, ZeroDivisionError):
                importance = {}
        result["importance"] = importance
        plot_sweep(
            [(t.number, t.value) for t in complete],
            importance,
            out,
            maximize=study.direction == optuna.study.StudyDirection.MAXIMIZE,
        )
        log(f"best {space.metric} {best.value:.4f} with {best.params}; config: {out / 'best_config.yaml'}")
    write_json(out / "sweep.json", result)
    return result


SWEEP_OUTPUTS = (
    "trial_*",
    "study.db",
    "trials.csv",
    "best_config.yaml",
    "sweep.json",
    "history.png",
    "importance.png",
    "provenance.json",
)


@dataclass(frozen=True)
class SweepResult:
    """A study's state after :func:`sweep`: trial counts, and the best trial's value, parameters
    and run folder (None before any trial completed)."""

    out: Path
    n_trials: int
    n_complete: int
    n_pruned: int
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    best_run: str | None = None
    importance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        from ._common import plain

        return plain(asdict(self))


def sweep(
    space: str | Path,
    out: str | Path | None = None,
    *,
    trials: int = 20,
    storage: str | None = None,
    overwrite: bool = False,
    log=None,
) -> SweepResult:
    """Optuna search over config keys (`beadseg sweep`) until the study has ``trials`` finished
    trials; resumable (trials left running by a killed run are marked failed) and shareable
    across workers through ``storage``. Another search space into the same folder is refused
    (or ``overwrite``)."""
    from ..core.extras import require
    from ..outputs.folder import OutputFolder, default_output
    from ._common import quiet

    require("beadseg sweep", "torch", "optuna", install='pip install "beadseg[hpc]"')
    out = Path(out) if out is not None else default_output("sweep", space)
    settings = {"space": load_space(space).model_dump(), "storage": storage}
    with OutputFolder.claim(
        out, "sweep", settings, outputs=SWEEP_OUTPUTS, overwrite=overwrite, inputs=[space]
    ):
        r = run_study(space, trials, out, storage, log=quiet(log))
    known = {k: r[k] for k in ("best_value", "best_params", "best_run", "importance") if k in r}
    return SweepResult(out, r["n_trials"], r["n_complete"], r["n_pruned"], **known)
