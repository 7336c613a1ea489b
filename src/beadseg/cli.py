"""The ``beadseg`` command line: each command parses, calls one library function, prints."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .errors import BeadsegError, BeadsegWarning
from .experiments.hpc import JobSpec
from .naming import DILUTION_RULE


class _PlaceholderHelp:
    """--help that shows placeholders (DATA, N, FOLDER), never Python types.

    typer 0.2x prints the type of an argument (``<path>``) even when it has a metavar, and
    ``<bool>`` after every flag; those cells are left empty here (older typer: no effect).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.param_type_name == "argument" or getattr(param, "is_flag", False):
                param.display_type_rich = lambda ctx: None

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.display_type_rich = lambda ctx: None
        return option


class _Command(_PlaceholderHelp, TyperCommand):
    """A beadseg command (see :class:`_PlaceholderHelp`)."""


class _Group(_PlaceholderHelp, TyperGroup):
    """The ``beadseg`` group (see :class:`_PlaceholderHelp`)."""


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Microbead segmentation: analyze data, train, predict, evaluate, count, dilution curves. "
    "A command that writes takes --out/-o FOLDER; without it, it writes ./<input folder>-<command> "
    "in the current folder (./beadseg-<command> when it reads no input), and a folder holds the "
    "output of one command and one set of settings (--overwrite replaces it).",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"beadseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """beadseg: microbead segmentation toolkit."""


def _examples(*lines: str) -> str:
    """The epilog of a command's --help: its example command lines, one per line."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _command(name: str | None = None, *, examples: tuple[str, ...], **kwargs):
    """``@app.command`` with the examples shown under the command's --help."""
    return app.command(name, cls=_Command, epilog=_examples(*examples), **kwargs)


def _out_option(command_name: str, input_name: str | None, help_text: str = "Output folder."):
    """``--out/-o FOLDER``, optional: the default (shown) is ``./<input folder name>-<command>``,
    :func:`beadseg.output_folder.default_output`."""
    where = f"./<{input_name} folder>-{command_name}" if input_name else f"./beadseg-{command_name}"
    return typer.Option(None, "--out", "-o", metavar="FOLDER", show_default=where, help=help_text)


def _out(out: Path | None, command_name: str, source=None) -> Path:
    """The output folder: --out, else the command's default folder."""
    from .output_folder import default_output

    return out if out is not None else default_output(command_name, source)


OVERWRITE_HELP = "Replace what --out holds (output of another command or other settings)."
OVERWRITE = typer.Option(False, "--overwrite", help=OVERWRITE_HELP)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress output.")
DEVICE_HELP = "auto, cpu, cuda, cuda:N, mps"


def _claim(out: Path, command: str, settings, overwrite: bool = False, inputs=(), **options):
    """Hold ``out`` for this command (:func:`beadseg.output_folder.claim_output`): one command
    and one set of settings per folder, a lock against a second writer, checked before any
    computation, and nothing left behind on bad input."""
    from .output_folder import claim_output

    return claim_output(out, command, settings, overwrite=overwrite, inputs=inputs, **options)


def _abs(path) -> str | None:
    """A path as an absolute string for the settings of an output folder (None stays None)."""
    return None if path is None else str(Path(path).resolve())


# the options of `synth --from` (exact truth from real appearances)
_FROM_DATA = typer.Option(
    None,
    "--from",
    metavar="DATA",
    help="Exact truth from real appearances: cut isolated beads and "
    "bead-free backgrounds out of the sparse labelled tiles of this folder (images/, masks/).",
)
_LEVELS = typer.Option(
    None,
    metavar="LEVELS",
    help="With --from: density levels, comma-separated, of sparse, medium, dense, "
    "clumped, crowded (default: the first four).",
)
_COUNTS = typer.Option(
    None,
    metavar="N,N,...",
    help="With --from: explicit bead counts per 512x512, comma-separated (levels n<COUNT>).",
)
_CLUMP_FRACTION = typer.Option(
    0.3, min=0.0, max=1.0, metavar="F", help="With --counts: fraction of beads in touching groups."
)
_FRAMES = typer.Option(
    None, metavar="NAMES", help="With --from: only these tiles or source frames, comma-separated."
)
_TOUCH = typer.Option(
    "0.9,1.0",
    metavar="LOW,HIGH",
    help="With --from: centre distance of touching beads, LOW,HIGH diameters.",
)


@_command(
    examples=(
        "beadseg synth --out toy --n 8 --size 256",
        "beadseg synth --dilution-series --out series",
        "beadseg synth --from ../data/microbeads --levels sparse,dense --out truth",
    )
)
def synth(
    folder: Path | None = typer.Argument(
        None, metavar="FOLDER", show_default=False, help="Same as --out (the older form)."
    ),
    out: Path | None = _out_option(
        "synth",
        None,
        "Output folder (images/, masks/, labels/); with --from DATA the default is ./<DATA folder>-synth.",
    ),
    n: int | None = typer.Option(
        None,
        "--n",
        min=1,
        metavar="N",
        help="Number of images (default 8); with --from, per level (default 3).",
    ),
    size: int = typer.Option(512, "--size", min=16, max=4096, metavar="PX", help="Image side in px."),
    seed: int = typer.Option(0, "--seed", min=0, metavar="N", help="Random seed."),
    min_beads: int = typer.Option(3, min=0, metavar="N", help="Fewest beads per 512x512 image."),
    max_beads: int = typer.Option(750, min=0, metavar="N", help="Most beads per 512x512 image."),
    dilution_series: bool = typer.Option(
        False, help="Write a synthetic dilution series (true slope -1) instead."
    ),
    from_data: Path | None = _FROM_DATA,
    levels: str | None = _LEVELS,
    counts: str | None = _COUNTS,
    clump_fraction: float = _CLUMP_FRACTION,
    max_group: int = typer.Option(7, min=2, metavar="N", help="With --counts: largest touching group."),
    frames: str | None = _FRAMES,
    prefix: str = typer.Option("truth", metavar="PREFIX", help="With --from: names are PREFIX_<level>_NNN."),
    touch: str = _TOUCH,
    overwrite: bool = OVERWRITE,
) -> None:
    """Write synthetic bead images with exact masks and instance labels (--from: real appearances
    pasted at known centres, with centres/NAME.csv)."""
    from .errors import ConfigError
    from .provenance import write_provenance
    from .synth import synth_dataset, synth_dilution_series

    _check_synth_options(from_data, dilution_series, min_beads, max_beads, levels or counts or frames)
    if folder is not None and out is not None and folder != out:
        raise ConfigError(f"FOLDER {folder} and --out {out} differ; give one of them")
    out = _out(folder or out, "synth", from_data)
    settings = {
        "n": n,
        "size": size,
        "seed": seed,
        "min_beads": min_beads,
        "max_beads": max_beads,
        "dilution_series": dilution_series,
        "from": _abs(from_data),
        "levels": levels,
        "counts": counts,
        "clump_fraction": clump_fraction,
        "max_group": max_group,
        "frames": frames,
        "prefix": prefix,
        "touch": touch,
    }
    with _claim(out, "synth", settings, overwrite, inputs=[from_data]):
        if from_data is not None:
            _write_composites(out, from_data, settings)
            return
        if dilution_series:
            names = synth_dilution_series(out, size=size, seed=seed)
        else:
            names = synth_dataset(
                out, n=n or 8, size=size, seed=seed, min_beads=min_beads, max_beads=max_beads
            )
        write_provenance(out, "synth", seed=seed)
    typer.echo(f"wrote {len(names)} synthetic pairs to {out}")


def _check_synth_options(from_data, dilution_series, min_beads, max_beads, from_only) -> None:
    """Refuse synth options that do not go together (before --out is touched)."""
    from .errors import ConfigError

    if from_data is None and from_only:
        raise ConfigError("--levels, --counts and --frames need --from DATA (real sparse tiles)")
    if from_data is not None and dilution_series:
        raise ConfigError("--dilution-series and --from do not go together; give one")
    if min_beads > max_beads:
        raise ConfigError(f"--min-beads {min_beads} is above --max-beads {max_beads}; give min <= max")


def _write_composites(out: Path, from_data: Path, o: dict) -> None:
    """``synth --from``: exact-truth composites, with the options ``o`` of the command."""
    from .composite import parse_levels, parse_touch, write_composites

    lv = parse_levels(o["levels"], o["counts"], o["clump_fraction"], o["max_group"])
    names = o["frames"].split(",") if o["frames"] else None
    r = write_composites(
        out,
        from_data,
        lv,
        o["n"] or 3,
        o["size"],
        o["seed"],
        names,
        o["prefix"],
        touch=parse_touch(o["touch"]),
    )
    typer.echo(
        f"wrote {len(r.names)} exact-truth images to {out} from {r.n_sprites} "
        f"sprites ({len(r.sprite_tiles)} tiles) and {r.n_backgrounds} backgrounds "
        f"in {r.seconds:.1f} s"
    )


_DILUTION_HELP = f"Dilution: {DILUTION_RULE}."


@_command(
    examples=(
        "beadseg analyze ../data/microbeads",
        "beadseg analyze ../data/microbeads --out analysis --no-plots -q",
    ),
    help=(
        "Dataset doctor: headlines per domain (real tiles / synthetic_* tiles, never pooled), a grade "
        "per label (good / fixable / unusable), masks filed under the wrong image, missing labels, "
        "misregistered masks, leakage, overlap agreement, dilution fit over source frames, "
        "recommendations. " + _DILUTION_HELP
    ),
)
def analyze(
    data: Path = typer.Argument(..., metavar="DATA", help="Folder with images/ and masks/."),
    out: Path | None = _out_option("analyze", "DATA"),
    reference: Path | None = typer.Option(
        None, metavar="DATA", help="Another data folder or summary.json to compare with."
    ),
    workers: int | None = typer.Option(None, min=1, metavar="N", help="Threads (default: CPUs, max 4)."),
    config: Path | None = typer.Option(None, metavar="FILE", help="YAML with analyze settings."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG figures."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary lines."),
    overwrite: bool = OVERWRITE,
) -> None:
    from .analysis import analyze_dataset
    from .analysis.outputs import console_lines
    from .config import AnalyzeConfig, load_config

    out = _out(out, "analyze", data)
    cfg = load_config(config, model=AnalyzeConfig)
    settings = {
        "data": _abs(data),
        "reference": _abs(reference),
        "config": cfg.model_dump(),
        "plots": not no_plots,
    }
    with _claim(out, "analyze", settings, overwrite, inputs=[data, reference]):
        s = analyze_dataset(
            data, out, reference=reference, workers=workers, cfg=cfg, plots=not no_plots, progress=not quiet
        )
    if not quiet:
        for line in console_lines(s, out, plots=not no_plots):
            typer.echo(line)


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


def _config(config: Path | None, sets: list[str] | None, flags: dict | None = None):
    """The Config of a command: defaults, then ``--config``, then ``--set``, then the command's
    own flags (only those given: a flag left out keeps the config's value)."""
    from .config import load_config, parse_overrides

    overrides = parse_overrides(sets)
    for key, value in (flags or {}).items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = overrides
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = str(value) if isinstance(value, Path) else value
    return load_config(config, overrides)


SET_HELP = "Override a config key, e.g. --set optim.lr=1e-3 (repeatable)."
DATA_HELP = "Folder with images/ and masks/ (config: data.path)."


RESUME_HELP = (
    "Continue the run in this folder with its own config.yaml (killed before its first epoch "
    "ended: start it). DATA, --config, --set, --model, --epochs, --folds, --fold and another "
    "--out are refused with it (they would change the run); --device is applied."
)


def _resume_conflicts(resume: Path, out: Path | None, given: dict) -> None:
    """``--resume`` continues a run exactly: options that would change it are an error."""
    from .errors import ConfigError

    named = [flag for flag, value in given.items() if value]
    if out is not None and out.resolve() != resume.resolve():
        named.append("--out")
    if named:
        raise ConfigError(
            f"--resume {resume} continues that run with its own config.yaml; {', '.join(named)} "
            "would change it: leave them out, or start a new run with --out NEW_DIR"
        )


@_command(
    examples=(
        "beadseg train ../data/microbeads --out runs/unet --epochs 40",
        "beadseg train ../data/microbeads --config configs/default_model.yaml --set optim.lr=1e-3",
        "beadseg train --resume runs/unet --device cuda",
    )
)
def train(
    data: Path | None = typer.Argument(None, metavar="DATA", show_default=False, help=DATA_HELP),
    out: Path | None = _out_option("train", "DATA", "Run folder (new, or --overwrite)."),
    config: Path | None = typer.Option(None, metavar="FILE", help="YAML config (see --print-config)."),
    sets: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP),
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
    from .config import config_to_yaml
    from .training import train as run_train

    if resume is not None:
        _resume_conflicts(
            resume,
            out,
            {
                "DATA": data,
                "--config": config,
                "--set": sets,
                "--model": model,
                "--epochs": epochs,
                "--folds": folds,
                "--fold": fold,
                "--overwrite": overwrite,
            },
        )
    if nproc > 1:
        _relaunch_with_torchrun(nproc)
    cfg = _config(
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
    if resume is None:
        out = _out(out, "train", cfg.data.path)
    with _train_claim(resume, out, cfg, overwrite):
        res = run_train(cfg, out, resume=resume, progress=not quiet, log=typer.echo, device=device)
    _end_train(res, resume or out)


def _train_claim(resume: Path | None, out: Path, cfg, overwrite: bool):
    """The run folder's claim: the folder being resumed, or a new run's with its settings."""
    if resume is not None:
        return _claim(resume, "train", None)
    return _claim(
        out,
        "train",
        cfg.model_dump(mode="json"),
        overwrite,
        inputs=[cfg.data.path],
        continue_hint=f"{out} holds this run already: continue it with --resume {out}",
    )


def _end_train(res: dict, run_dir: Path) -> None:
    """The result line (rank 0) and the exit: 3 for a collapsed run; torchrun workers leave."""
    code = 3 if res["status"] == "collapsed" else 0
    if res["rank"] == 0:
        typer.echo(
            f"{res['status']}: best val IoU {res['best_val_iou'] or 0:.3f} at epoch "
            f"{res['best_epoch']}; run folder {run_dir}"
        )
    if res["world_size"] > 1:
        _exit_torchrun_worker(code)
    if code:
        raise typer.Exit(code)


@_command(
    examples=(
        "beadseg cv ../data/microbeads --folds 4 --out runs/cv",
        "beadseg cv ../data/microbeads --folds 4 --fold 2 --out runs/cv --device cuda",
    )
)
def cv(
    data: Path | None = typer.Argument(None, metavar="DATA", show_default=False, help=DATA_HELP),
    out: Path | None = _out_option("cv", "DATA", "Folder of the fold runs."),
    folds: int | None = typer.Option(
        None, min=2, metavar="K", help="K (config: split.folds, else 1 / split.val_fraction)."
    ),
    fold: int | None = typer.Option(None, min=0, metavar="I", help="Run only this fold (job arrays)."),
    report_only: bool = typer.Option(False, help="Only summarise finished folds."),
    config: Path | None = typer.Option(None, metavar="FILE", help="YAML config."),
    sets: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (config: train.device)."),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """K-fold cross-validation over source frames: mean +/- SD of every metric.

    Folds left unfinished by a killed job are continued; a folder of folds trained with other
    settings is refused (or --overwrite). Fold jobs of one array may share --out.
    """
    from .experiments.cv import cross_validate

    cfg = _config(config, sets, {"data.path": data, "split.folds": folds, "train.device": device})
    out = _out(out, "cv", cfg.data.path)
    settings = {"config": cfg.model_dump(mode="json"), "folds": folds}
    log = (lambda line: None) if quiet else typer.echo
    with _claim(out, "cv", settings, overwrite, inputs=[cfg.data.path], exclusive=False):
        s = cross_validate(cfg, out=out, only_fold=fold, report_only=report_only, log=log)
    typer.echo(s["markdown"])


@_command(
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
    out: Path | None = _out_option("sweep", "SPACE"),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """Optuna hyperparameter search over config keys, resumable, shareable across workers.

    Running it again into the same --out continues the study (trials left running by a killed
    run are marked failed); another search space into that folder is refused (or --overwrite).
    """
    from .experiments.sweep import load_space
    from .experiments.sweep import sweep as run_sweep

    out = _out(out, "sweep", space)
    settings = {"space": load_space(space).model_dump(), "storage": storage}
    log = (lambda line: None) if quiet else typer.echo
    with _claim(out, "sweep", settings, overwrite, inputs=[space]):
        r = run_sweep(space, trials, out, storage, log=log)
    typer.echo(
        f"{r['n_trials']} trials ({r['n_complete']} complete, {r['n_pruned']} pruned); results in {out}"
    )


_JOB = JobSpec()


@_command(
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
        None, metavar="FOLDER", help=f"Output folder on the cluster (default: {_JOB.out_dir!r})."
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

    from .experiments.hpc import render_job

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


@_command(
    examples=(
        "beadseg compare runs/unet runs/att",
        "beadseg compare runs/* --out runs/compare",
    )
)
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
    """Table of runs: best/final val IoU, epochs, status, time, parameters."""
    from contextlib import nullcontext

    from .experiments.compare import compare_runs, markdown_table

    settings = {"runs": [_abs(r) for r in runs]}
    with _claim(out, "compare", settings, overwrite, inputs=runs) if out else nullcontext():
        rows = compare_runs(runs, out)
    typer.echo(markdown_table(rows), nl=False)


@_command(
    "lr-find",
    examples=(
        "beadseg lr-find ../data/microbeads --out lr",
        "beadseg lr-find ../data/microbeads --model attention_unet --steps 100 --device cuda",
    ),
)
def lr_find_cmd(
    data: Path | None = typer.Argument(None, metavar="DATA", show_default=False, help=DATA_HELP),
    out: Path | None = _out_option("lr-find", "DATA"),
    config: Path | None = typer.Option(None, metavar="FILE", help="YAML config."),
    sets: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP),
    model: str | None = typer.Option(None, metavar="NAME", help="Model name (config: model.name)."),
    steps: int | None = typer.Option(None, min=10, metavar="N", help="Most sweep steps (default: 200)."),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (config: train.device)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Learning-rate range test: plot and suggested learning rate."""
    from .training import lr_find

    cfg = _config(config, sets, {"data.path": data, "model.name": model, "train.device": device})
    out = _out(out, "lr-find", cfg.data.path)
    settings = {"config": cfg.model_dump(mode="json"), "steps": steps}
    with _claim(out, "lr-find", settings, overwrite, inputs=[cfg.data.path]):
        res = lr_find(cfg, out, **({"steps": steps} if steps else {}))
    lr = res["suggested_lr"]
    typer.echo(
        f"suggested learning rate: {lr:.3g} (use --set optim.lr={lr:.3g}); plot: {out / 'lr_find.png'}"
        if lr
        else "no clear minimum; see the plot"
    )


@_command(examples=("beadseg models", "beadseg models --base-channels 16 --depth 3"))
def models(
    base_channels: int | None = typer.Option(
        None, min=1, metavar="N", help="Width of the first level (config: model.base_channels)."
    ),
    depth: int | None = typer.Option(
        None, min=1, max=6, metavar="N", help="Down-sampling steps (config: model.depth)."
    ),
) -> None:
    """Table of the model registry: parameters and GFLOPs per megapixel."""
    from .config import ModelConfig, load_config
    from .models import model_table

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


def _predict_config(config: Path | None, sets: list[str] | None, **given):
    """PredictConfig from a YAML file, ``--set key=value`` and the options given (not None)."""
    from .config import PredictConfig, load_config, parse_overrides

    overrides = {**parse_overrides(sets), **{k: v for k, v in given.items() if v is not None}}
    return load_config(config, overrides, model=PredictConfig)


PREDICT_CONFIG_HELP = "YAML with predict settings (PredictConfig keys: mode, tile_size, ...)."
PREDICT_SET_HELP = "Override a predict setting, e.g. --set overlap=128 (repeatable)."


@_command(
    examples=(
        "beadseg predict default frames/*.png --out predictions",
        "beadseg predict runs/unet frames/ --set overlap=128 --device cuda -q",
        "beadseg predict default frames/ --shard 0/4 --out preds-0",
    )
)
def predict(
    model: str = typer.Argument(..., metavar="MODEL", help="Run folder, checkpoint, or 'default'."),
    inputs: list[Path] = typer.Argument(..., metavar="INPUTS", help="Image files, folders or globs."),
    out: Path | None = _out_option("predict", "INPUTS"),
    config: Path | None = typer.Option(None, metavar="FILE", help=PREDICT_CONFIG_HELP),
    sets: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE", help=PREDICT_SET_HELP),
    mode: str | None = typer.Option(
        None, metavar="MODE", help="auto, tiled or full (whole frame in one call; default: auto)."
    ),
    tile_size: int | None = typer.Option(
        None, min=32, metavar="PX", help="Tile side in px (default: 1024 with ONNX Runtime, 512 with torch)."
    ),
    overlap: int | None = typer.Option(None, min=0, metavar="PX", help="Tile overlap in px (default: 128)."),
    batch_size: int | None = typer.Option(
        None,
        min=1,
        metavar="N",
        help="Tiles per call (default: 1 with ONNX Runtime; torch: about 0.26 MP on CPU, 8 on GPU).",
    ),
    threshold: float | None = typer.Option(
        None, metavar="P", help="Probability threshold (default: the model's)."
    ),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (default: auto)."),
    save_probabilities: bool | None = typer.Option(
        None, "--save-probabilities/--no-save-probabilities", help="Also write probability TIFFs."
    ),
    shard: str | None = typer.Option(None, metavar="I/N", help="i/N: process every N-th input from i."),
    pixel_size_um: float | None = typer.Option(
        None, metavar="UM", help="Pixel size in µm (default: each TIFF's resolution tags)."
    ),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """Segment images: masks, instance labels, overlays, per-bead CSV and counts.csv.

    Settings not given take the values of --config, else the PredictConfig defaults. Running
    again into the same --out with the same model, settings and inputs resumes (frames already
    done are not predicted again); another model, threshold, setting or inputs is refused,
    naming the difference (or --overwrite to start again).
    """
    from .inference import parse_shard, predict_images
    from .inference.pipeline import check_threshold, predict_settings

    out = _out(out, "predict", inputs)
    check_threshold(threshold)
    cfg = _predict_config(
        config,
        sets,
        mode=mode,
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        save_probabilities=save_probabilities,
        pixel_size_um=pixel_size_um,
    )
    shards = parse_shard(shard)
    settings = predict_settings(model, cfg, threshold, [str(i) for i in inputs], shards)
    with _claim(out, "predict", settings, overwrite, inputs=[*inputs, None if model == "default" else model]):
        s = predict_images(
            model,
            [str(i) for i in inputs],
            out,
            cfg,
            threshold,
            progress=not quiet,
            log=typer.echo,
            shard=shards,
        )
    images = f"{s.n_images} image{'s' * (s.n_images != 1)}"
    typer.echo(f"{images}, {s.total_count} beads ({s.n_errors} skipped); counts: {out / 'counts.csv'}")


@_command(
    examples=(
        "beadseg merge preds-0 preds-1 preds-2 preds-3 --out predictions",
        "beadseg merge preds-* --out predictions --incomplete",
    )
)
def merge(
    runs: list[Path] = typer.Argument(..., metavar="RUN", help="Prediction folders (e.g. shards)."),
    out: Path | None = _out_option("merge", "RUN", "Merged folder (not one of the inputs)."),
    incomplete: bool = typer.Option(
        False, "--incomplete", help="Merge although shards are missing (marked in settings.json)."
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Join the counts.csv/errors.csv of prediction runs made with the same model and settings.

    Shards of a job array must all be given (each records i/N), unless --incomplete.
    """
    from .inference import merge_runs

    out = _out(out, "merge", runs)
    settings = {"runs": [_abs(r) for r in runs], "incomplete": incomplete}
    with _claim(out, "merge", settings, overwrite, inputs=runs):
        r = merge_runs(runs, out, incomplete=incomplete)
    if r.missing_shards:
        typer.echo(f"warning: incomplete: shards {', '.join(r.missing_shards)} missing", err=True)
    typer.echo(f"merged {r.n_images} images ({r.n_errors} errors) into {out / 'counts.csv'}")


@_command(
    examples=(
        "beadseg evaluate predictions ../data/microbeads --out evaluation",
        "beadseg evaluate runs/unet held_out_data --calibrate --device cuda",
    )
)
def evaluate(
    source: str = typer.Argument(
        ..., metavar="SOURCE", help="Prediction folder, run folder, checkpoint or default."
    ),
    data: Path = typer.Argument(..., metavar="DATA", help="Labelled data: images/ and masks/."),
    out: Path | None = _out_option("evaluate", "SOURCE"),
    config: Path | None = typer.Option(None, metavar="FILE", help=PREDICT_CONFIG_HELP),
    sets: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE", help=PREDICT_SET_HELP),
    threshold: float | None = typer.Option(
        None, metavar="P", help="Probability threshold (default: the model's)."
    ),
    shift_radius: int | None = typer.Option(
        None, min=0, metavar="PX", help="Shift-tolerant IoU search radius (px; default: 3)."
    ),
    centroid_px: float | None = typer.Option(
        None, min=0.5, metavar="PX", help="Centroid matching distance (px; default: 3)."
    ),
    calibrate: bool = typer.Option(
        False, help="Pick the F1-best threshold; write a copy of the model with it to OUT/calibrated.pt."
    ),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (default: auto)."),
    all_labels: bool = typer.Option(
        False, "--all-labels", help="Score against every label, also those graded unusable."
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Pixel, object and count metrics per image, source frame, dilution and overall.

    Labels graded unusable (see `beadseg analyze`) are left out and listed, unless --all-labels;
    a prediction folder covering part of the data is scored on the images it holds.
    """
    from .evaluate import evaluate as run_eval

    out = _out(out, "evaluate", source)
    cfg = _predict_config(config, sets, device=device)
    given = {"shift_radius_px": shift_radius, "centroid_px": centroid_px}
    settings = {
        "source": source if source == "default" else _abs(source),
        "data": _abs(data),
        "predict": cfg.model_dump(exclude={"device"}),
        "threshold": threshold,
        **given,
        "calibrate": calibrate,
        "all_labels": all_labels,
    }
    with _claim(out, "evaluate", settings, overwrite, inputs=[data, None if source == "default" else source]):
        r = run_eval(
            source,
            data,
            out,
            cfg,
            threshold,
            calibrate=calibrate,
            use_all_labels=all_labels,
            **{k: v for k, v in given.items() if v is not None},
        )
    for name, reasons in sorted(r.labels.left_out.items()):
        typer.echo(f"left out {name} (label unusable: {reasons[0]})")
    if r.no_prediction:
        typer.echo(
            f"{len(r.no_prediction)} of {len(r.no_prediction) + len(r.images)} labelled images "
            f"have no prediction in {source} (e.g. {r.no_prediction[0]}); scored the others"
        )
    for line in r.headlines():
        typer.echo(line)
    typer.echo(f"metrics: {out / 'metrics.json'}; read {out / 'report.html'}")
    if r.calibration is not None:
        typer.echo(
            f"calibrated threshold {r.calibration.best_threshold}; the model with it: "
            f"{r.calibration.checkpoint} (use it as the model; {r.calibration.model} is "
            "unchanged)"
        )


@_command(
    examples=(
        "beadseg export runs/unet",
        "beadseg export runs/unet --format bioimageio --out unet.zip",
    )
)
def export(
    model: str = typer.Argument(..., metavar="MODEL", help="Run folder, checkpoint, or 'default'."),
    fmt: str = typer.Option("onnx", "--format", metavar="FORMAT", help="onnx or bioimageio."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FILE",
        show_default="<checkpoint name>.onnx beside the checkpoint",
        help="File to write (the shipped model: ./default.onnx; bioimageio: "
        "./<checkpoint name>.bioimageio.zip).",
    ),
) -> None:
    """Export a model: ONNX (settings in its metadata; predict runs it without torch) or a
    bioimage.io package (deepImageJ, ilastik, BiaPy)."""
    from .export import export_model

    typer.echo(f"wrote {export_model(model, fmt, out)}")


@_command(
    examples=(
        "beadseg dilution predictions/counts.csv",
        "beadseg dilution predictions/counts.csv --out dilution --pixel-size-um 0.345 --depth-um 100",
    ),
    help=(
        "Density vs dilution on log-log axes, fitted over source frames (tiles of one frame are not "
        "independent): slope with its 95 % CI, stock concentration with its 95 % interval, frames whose "
        "implied stock is an outlier. " + _DILUTION_HELP + " Or give --samples SHEET.csv: a "
        "dilution column and one of image / source_frame / prefix / sample."
    ),
)
def dilution(
    counts_csv: Path = typer.Argument(
        ..., metavar="COUNTS", help="counts.csv from beadseg predict, or the predict output folder."
    ),
    out: Path | None = _out_option("dilution", "COUNTS"),
    samples: Path | None = typer.Option(
        None,
        "--samples",
        metavar="FILE",
        help="CSV mapping image / source_frame / prefix / sample to dilution.",
    ),
    pixel_size_um: float | None = typer.Option(
        None, metavar="UM", help="Pixel size in micrometres (needs --depth-um)."
    ),
    depth_um: float | None = typer.Option(
        None, metavar="UM", help="Chamber depth in micrometres (needs --pixel-size-um)."
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    from .dilution import console_lines, counts_file, dilution_report, microlitre_per_mp

    microlitre_per_mp(pixel_size_um, depth_um)  # bad sizes fail before --out is touched
    counts_csv = counts_file(counts_csv)  # a predict folder means its counts.csv
    out = _out(out, "dilution", counts_csv)
    settings = {
        "counts": _abs(counts_csv),
        "samples": _abs(samples),
        "pixel_size_um": pixel_size_um,
        "depth_um": depth_um,
    }
    with _claim(out, "dilution", settings, overwrite, inputs=[counts_csv, samples]):
        r = dilution_report(counts_csv, out, pixel_size_um, depth_um, samples=samples)
    for line in console_lines(r, out):
        typer.echo(line)


@_command(
    "fix-masks",
    examples=(
        "beadseg fix-masks ../data/microbeads --out fixed",
        "beadseg fix-masks ../data/microbeads --radius 8",
    ),
)
def fix_masks_cmd(
    data: Path = typer.Argument(..., metavar="DATA", help="Folder with images/ and masks/."),
    out: Path | None = _out_option("fix-masks", "DATA", "Output folder (never the input)."),
    radius: int | None = typer.Option(
        None,
        min=1,
        metavar="PX",
        help="Largest shift searched (px; default: the config's data.align_radius_px).",
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Write re-registered masks for masks that sit off their beads, plus shifts.csv."""
    from .config import DataConfig
    from .registration import fix_masks

    radius = DataConfig().align_radius_px if radius is None else radius
    out = _out(out, "fix-masks", data)
    with _claim(out, "fix-masks", {"data": _abs(data), "radius": radius}, overwrite, inputs=[data]):
        rows = fix_masks(data, out, radius)
    n = sum(r["fixed"] for r in rows)
    typer.echo(f"{n} of {len(rows)} masks shifted onto their beads; see {out / 'shifts.csv'}")


@_command(examples=("beadseg demo", "beadseg demo --quick --out demo --device cpu -q"))
def demo(
    out: Path | None = _out_option("demo", None),
    quick: bool = typer.Option(False, "--quick", help="Smaller data, fewer epochs (< 60 s)."),
    seed: int = typer.Option(0, min=0, metavar="N", help="Random seed."),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (default: auto)."),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """The whole pipeline on generated data with the shipped model; writes report.html."""
    from .demo import run_demo

    out = _out(out, "demo")
    log = (lambda line: None) if quiet else typer.echo
    with _claim(out, "demo", {"quick": quick, "seed": seed}, overwrite):
        run_demo(out, quick=quick, seed=seed, log=log, device=device)


def _warning_printer(fallback):
    """A ``warnings.showwarning`` that prints beadseg's warnings as one plain line and hands
    every other warning to ``fallback`` (the function it replaces)."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, BeadsegWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def _usage_line(exc) -> str:
    """A command-line usage error (bad option value, missing argument) as one line."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"error: {text}{where}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2 (no traceback);
    so do command-line usage errors (typer's own multi-line panel is not used)."""
    from typer.exceptions import TyperException

    previous = warnings.showwarning
    warnings.showwarning = _warning_printer(previous)  # for this call only; restored below
    try:
        code = app(args=argv, prog_name="beadseg", standalone_mode=False)  # --help: 0
    except BeadsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except MemoryError:
        print(
            "error: out of memory; give smaller images or settings (e.g. --set batch_size=1)", file=sys.stderr
        )
        sys.exit(1)
    except OSError as exc:
        import errno

        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise
        print(f"error: cannot write {exc.filename or 'the output'}: {exc.strerror}", file=sys.stderr)
        sys.exit(2)
    except TyperException as exc:  # usage errors; Abort (Ctrl-D at a prompt) has no message
        if type(exc).__name__ == "NoArgsIsHelpError":  # `beadseg` alone: the help
            print(exc.format_message())
            sys.exit(0)
        print(_usage_line(exc) if hasattr(exc, "format_message") else "aborted", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 1))
    finally:
        warnings.showwarning = previous
    sys.exit(code if isinstance(code, int) else 0)  # as typer's standalone mode does
