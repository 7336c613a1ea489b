"""Commands that train: ``train``, ``cv``, ``sweep``, ``lr-find``, ``compare``, ``models``, ``hpc``.

Each maps its flags onto one workflow function (:mod:`beadseg.workflows`) and prints what it
returned; the workflow holds the output folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..integrations.hpc import JobSpec
from .app import (
    DATA_HELP,
    DEVICE_HELP,
    OVERWRITE,
    QUIET,
    command,
    config_option,
    out_option,
    resolve_config,
    set_option,
)


def _relaunch_with_torchrun(nproc: int) -> None:
    """Run this same command under torchrun with ``nproc`` processes (DDP), minus --nproc."""
    import os
    import subprocess

    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "beadseg",
        *args,
    ]
    raise typer.Exit(subprocess.call(cmd, env=os.environ.copy()))


def _exit_torchrun_worker(code: int) -> None:
    """Leave a torchrun worker without interpreter shutdown (every file is already written).

    With DDP on gloo, torch keeps the process group's worker threads alive after
    ``destroy_process_group``; one of them still releasing a finished collective when Python
    shuts down aborts the process ("terminate called without an active exception", exit -6,
    2 of 16 runs on a loaded 2-core machine). Skipping the shutdown avoids the race.
    """
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


RESUME_HELP = (
    "Continue the run in this folder with the settings it started with (killed before its first "
    "epoch ended: start it). Give DATA only when the run's data has moved. --config, --set, "
    "--model, --epochs, --folds, --fold and another --out are refused with it (they would change "
    "the run); --device is applied."
)


def _resume_conflicts(resume: Path, out: Path | None, given: dict) -> None:
    """``--resume`` continues a run exactly: options that would change it are an error."""
    from ..core.errors import ConfigError

    named = [flag for flag, value in given.items() if value]
    if out is not None and out.resolve() != resume.resolve():
        named.append("--out")
    if named:
        raise ConfigError(
            f"--resume {resume} continues that run with the settings it started with; {', '.join(named)} "
            "would change it: leave them out, or start a new run with --out NEW_DIR"
        )


@command(
    examples=(
        "beadseg train ../data/microbeads --out runs/unet --epochs 40",
        "beadseg train ../data/microbeads --config configs/default_model.yaml --set optim.lr=1e-3",
        "beadseg train --resume runs/unet --device cuda",
    )
)
def train(
    data: Path | None = typer.Argument(None, metavar="DATA", show_default=False, help=DATA_HELP),
    out: Path | None = out_option("train", "DATA", "Run folder (new, or --overwrite)."),
    config: Path | None = config_option(),
    sets: list[str] | None = set_option(),
    model: str | None = typer.Option(
        None, metavar="NAME", help="unet, attention_unet, attention_resunet (config: model.name)."
    ),
    epochs: int | None = typer.Option(None, min=1, metavar="N", help="Epochs (config: train.epochs)."),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (config: train.device)."),
    folds: int | None = typer.Option(
        None, min=2, metavar="K", help="K-fold cross-validation: K (config: split.folds)."
    ),
    fold: int | None = typer.Option(
        None, min=0, metavar="I", help="Which fold is validation (config: split.fold)."
    ),
    resume: Path | None = typer.Option(None, metavar="RUN", help=RESUME_HELP),
    print_config: bool = typer.Option(False, "--print-config", help="Print the config, exit."),
    nproc: int = typer.Option(1, min=1, metavar="N", help="Processes: > 1 launches torchrun (DDP)."),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """Train a bead segmentation model (grouped split, early stopping, collapse guard).

    A run folder holds one run: training into a folder that holds one is refused (continue it
    with --resume, or --overwrite to start again).
    """
    from ..core.config import config_to_yaml
    from ..workflows import train as run

    if resume is not None:
        flags = {
            "--config": config,
            "--set": sets,
            "--model": model,
            "--epochs": epochs,
            "--folds": folds,
            "--fold": fold,
            "--overwrite": overwrite,
        }
        _resume_conflicts(resume, out, flags)
    if nproc > 1:
        _relaunch_with_torchrun(nproc)
    log = typer.echo  # one line per epoch; --quiet hides the progress bar
    if resume is not None:
        res = run(resume=resume, data=data, device=device, progress=not quiet, log=log)
        _end_train(res)
        return
    cfg = resolve_config(
        config,
        sets,
        {
            "data.path": data,
            "model.name": model,
            "train.epochs": epochs,
            "train.device": device,
            "split.folds": folds,
            "split.fold": fold,
        },
    )
    if print_config:
        typer.echo(config_to_yaml(cfg), nl=False)
        return
    res = run(cfg, out, overwrite=overwrite, device=device, progress=not quiet, log=log)
    _end_train(res)


def _end_train(res) -> None:
    """The result line (rank 0) and the exit: 3 for a collapsed run; torchrun workers leave."""
    code = 3 if res.collapsed else 0
    if res.rank == 0:
        typer.echo(
            f"{res.status}: best val IoU {res.best_val_iou or 0:.3f} at epoch {res.best_epoch}; "
            f"run folder {res.run_dir}"
        )
    if res.world_size > 1:
        _exit_torchrun_worker(code)
    if code:
        raise typer.Exit(code)


@command(
    examples=(
        "beadseg cv ../data/microbeads --folds 4 --out runs/cv",
        "beadseg cv ../data/microbeads --folds 4 --fold 2 --out runs/cv --device cuda",
    )
)
def cv(
    data: Path | None = typer.Argument(None, metavar="DATA", show_default=False, help=DATA_HELP),
    out: Path | None = out_option("cv", "DATA", "Folder of the fold runs."),
    folds: int | None = typer.Option(
        None, min=2, metavar="K", help="K (config: split.folds, else 1 / split.val_fraction)."
    ),
    fold: int | None = typer.Option(None, min=0, metavar="I", help="Run only this fold (job arrays)."),
    report_only: bool = typer.Option(False, help="Only summarise finished folds."),
    config: Path | None = config_option(),
    sets: list[str] | None = set_option(),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (config: train.device)."),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """K-fold cross-validation over source frames: mean +/- SD of every metric.

    Folds left unfinished by a killed job are continued; a folder of folds trained with other
    settings is refused (or --overwrite). Fold jobs of one array may share --out.
    """
    from ..workflows import cv as run

    cfg = resolve_config(config, sets, {"data.path": data, "split.folds": folds, "train.device": device})
    r = run(
        cfg,
        out,
        folds=folds,
        fold=fold,
        report_only=report_only,
        overwrite=overwrite,
        progress=False,
        log=None if quiet else typer.echo,
    )
    typer.echo(r.markdown)


@command(
    examples=(
        "beadseg sweep configs/sweep_example.yaml --trials 30 --out runs/sweep",
        "beadseg sweep space.yaml --storage postgresql://host/db --out /scratch/sweep -q",
    )
)
def sweep(
    space: Path = typer.Argument(..., metavar="SPACE", help="Search-space YAML."),
    trials: int = typer.Option(20, min=1, metavar="N", help="Finished trials wanted in the study."),
    storage: str | None = typer.Option(
        None, metavar="URL", help="Optuna storage URL (default: SQLite in --out)."
    ),
    out: Path | None = out_option("sweep", "SPACE"),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """Optuna hyperparameter search over config keys, resumable, shareable across workers.

    Running it again into the same --out continues the study (trials left running by a killed
    run are marked failed); another search space into that folder is refused (or --overwrite).
    """
    from ..workflows import sweep as run

    r = run(
        space, out, trials=trials, storage=storage, overwrite=overwrite, log=None if quiet else typer.echo
    )
    typer.echo(f"{r.n_trials} trials ({r.n_complete} complete, {r.n_pruned} pruned); results in {r.out}")


_JOB = JobSpec()


@command(
    examples=(
        "beadseg hpc slurm --job train --config configs/default_model.yaml --gpus 4 > train.sbatch",
        "beadseg hpc pbs --job predict --array 8 --inputs 'frames/*.png' --model runs/unet > predict.pbs",
    )
)
def hpc(
    scheduler: str = typer.Argument(..., metavar="SCHEDULER", help="pbs or slurm."),
    config: str | None = typer.Option(
        None, metavar="FILE", help=f"Training config or sweep space (default: {_JOB.config!r})."
    ),
    job: str | None = typer.Option(
        None, metavar="JOB", help=f"train, predict or sweep (default: {_JOB.job!r})."
    ),
    gpus: int | None = typer.Option(None, min=0, metavar="N", help=f"GPUs per node (default: {_JOB.gpus})."),
    nodes: int | None = typer.Option(None, min=1, metavar="N", help=f"Nodes (default: {_JOB.nodes})."),
    hours: float | None = typer.Option(
        None, min=0.1, metavar="HOURS", help=f"Wall time in hours (default: {_JOB.hours})."
    ),
    array: int | None = typer.Option(
        None,
        min=1,
        metavar="N",
        help="Job-array size: predict shards (default: 1), sweep workers (default: none).",
    ),
    cpus: int | None = typer.Option(None, min=1, metavar="N", help=f"CPUs per node (default: {_JOB.cpus})."),
    mem_gb: int | None = typer.Option(
        None, min=1, metavar="GB", help=f"Memory per node, GB (default: {_JOB.mem_gb})."
    ),
    queue: str | None = typer.Option(None, metavar="NAME", help="Queue / partition."),
    account: str | None = typer.Option(None, metavar="NAME", help="Project / account."),
    venv: str | None = typer.Option(None, metavar="FOLDER", help="Virtual environment to activate."),
    module: list[str] | None = typer.Option(None, metavar="NAME", help="Module to load (repeatable)."),
    out_dir: str | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FOLDER",
        help=f"Folder the job writes (default: {_JOB.out_dir!r}).",
    ),
    inputs: str | None = typer.Option(
        None, metavar="INPUTS", help=f"Predict: input folder or glob (default: {_JOB.inputs!r})."
    ),
    model: str | None = typer.Option(
        None, metavar="MODEL", help=f"Predict: model (default: {_JOB.model!r})."
    ),
    storage: str | None = typer.Option(
        None, metavar="URL", help="Sweep: shared Optuna storage URL (default: SQLite in --out-dir)."
    ),
    trials: int | None = typer.Option(
        None,
        min=1,
        metavar="N",
        help="Sweep: finished trials wanted in the shared study; every worker "
        f"takes new trials until it has that many (default: {_JOB.trials}).",
    ),
) -> None:
    """Print a PBS or SLURM job script (torchrun training, sweep workers, predict arrays)."""
    from dataclasses import replace

    from ..integrations.hpc import render_job

    given = {
        "scheduler": scheduler,
        "config": config,
        "job": job,
        "gpus": gpus,
        "nodes": nodes,
        "hours": hours,
        "array": array,
        "cpus": cpus,
        "mem_gb": mem_gb,
        "queue": queue,
        "account": account,
        "venv": venv,
        "modules": tuple(module) if module else None,
        "out_dir": out_dir,
        "inputs": inputs,
        "model": model,
        "storage": storage,
        "trials": trials,
    }
    spec = replace(_JOB, **{k: v for k, v in given.items() if v is not None})
    typer.echo(render_job(spec), nl=False)


@command(examples=("beadseg compare runs/unet runs/att", "beadseg compare runs/* --out runs/compare"))
def compare(
    runs: list[Path] = typer.Argument(..., metavar="RUN", help="Run folders."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FOLDER",
        show_default="print the table only",
        help="Also write compare.csv/.md/.png here.",
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Table of runs: model, loss, learning rate, data, best/final val IoU, epochs, status, time."""
    from ..workflows import compare as run

    typer.echo(run(runs, out, overwrite=overwrite).markdown(), nl=False)


@command(
    "lr-find",
    examples=(
        "beadseg lr-find ../data/microbeads --out lr",
        "beadseg lr-find ../data/microbeads --model attention_unet --steps 100 --device cuda",
    ),
)
def lr_find(
    data: Path | None = typer.Argument(None, metavar="DATA", show_default=False, help=DATA_HELP),
    out: Path | None = out_option("lr-find", "DATA"),
    config: Path | None = config_option(),
    sets: list[str] | None = set_option(),
    model: str | None = typer.Option(None, metavar="NAME", help="Model name (config: model.name)."),
    steps: int | None = typer.Option(None, min=10, metavar="N", help="Most sweep steps (default: 200)."),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (config: train.device)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Learning-rate range test: plot and suggested learning rate."""
    from ..workflows import lr_find as run

    cfg = resolve_config(config, sets, {"data.path": data, "model.name": model, "train.device": device})
    r = run(cfg, out, steps=steps or 200, overwrite=overwrite)
    if r.suggested_lr:
        lr = r.suggested_lr
        typer.echo(
            f"suggested learning rate: {lr:.3g} (use --set optim.lr={lr:.3g}); plot: {r.out / 'lr_find.png'}"
        )
    else:
        typer.echo(
            f"warning: {r.warning or 'no clear minimum'}; see the plot {r.out / 'lr_find.png'}", err=True
        )


@command(examples=("beadseg models", "beadseg models --base-channels 16 --depth 3"))
def models(
    base_channels: int | None = typer.Option(
        None, min=1, metavar="N", help="Width of the first level (config: model.base_channels)."
    ),
    depth: int | None = typer.Option(
        None, min=1, max=6, metavar="N", help="Down-sampling steps (config: model.depth)."
    ),
) -> None:
    """Table of the model registry: parameters and GFLOPs per megapixel."""
    from ..core.config import ModelConfig, load_config
    from ..core.extras import require

    require("beadseg models (it builds each network)")
    from ..models import model_table

    m = load_config(
        None,
        {k: v for k, v in {"base_channels": base_channels, "depth": depth}.items() if v is not None},
        model=ModelConfig,
    )
    typer.echo("| model | base | depth | parameters | GFLOP/MP | description |\n|---|---|---|---|---|---|")
    for r in model_table(m.base_channels, m.depth):
        typer.echo(
            f"| {r['model']} | {r['base_channels']} | {r['depth']} | {r['parameters']:,} | "
            f"{r['gflops_per_mp']:.1f} | {r['description']} |"
        )
