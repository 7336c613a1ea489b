"""The ``beadseg`` command line: each command parses, calls one library function, prints."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import typer

from . import __version__
from .errors import BeadsegError, BeadsegWarning

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Microbead segmentation: analyze data, train, predict, evaluate, count, dilution curves.",
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


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Output folder (images/, masks/, labels/)."),
    n: int = typer.Option(8, "--n", min=1, help="Number of images."),
    size: int = typer.Option(512, "--size", min=16, help="Image side in px."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    min_beads: int = typer.Option(3, help="Fewest beads per 512x512 image."),
    max_beads: int = typer.Option(750, help="Most beads per 512x512 image."),
    dilution_series: bool = typer.Option(
        False, help="Write a synthetic dilution series (true slope -1) instead."
    ),
) -> None:
    """Write synthetic brightfield bead images with exact masks and instance labels."""
    from .provenance import write_provenance
    from .synth import synth_dataset, synth_dilution_series

    if dilution_series:
        names = synth_dilution_series(out, size=size, seed=seed)
    else:
        names = synth_dataset(out, n=n, size=size, seed=seed, min_beads=min_beads,
                              max_beads=max_beads)
    write_provenance(out, "synth", seed=seed)
    typer.echo(f"wrote {len(names)} synthetic pairs to {out}")


@app.command()
def analyze(
    data: Path = typer.Argument(..., help="Folder with images/ and masks/."),
    out: Path = typer.Option(Path("beadseg-analysis"), "--out", help="Output folder."),
    reference: Path | None = typer.Option(
        None, help="Another data folder or summary.json to compare with."
    ),
    workers: int | None = typer.Option(None, min=1, help="Processes (default: CPUs, max 4)."),
    config: Path | None = typer.Option(None, help="YAML with analyze settings."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG figures."),
) -> None:
    """Dataset doctor: fingerprint, missing-label/leakage/registration checks, recommendations."""
    from .analysis import analyze_dataset
    from .config import AnalyzeConfig, load_config

    cfg = load_config(config, model=AnalyzeConfig)
    s = analyze_dataset(data, out, reference=reference, workers=workers, cfg=cfg,
                        plots=not no_plots)
    o = s["overall"]
    typer.echo(f"{o['n_images']} images, {o['mean_beads_per_image']:.1f} beads/image, "
               f"foreground {o['mean_foreground_fraction']:.4f}; report: {out / 'report.md'}")
    for r in s["recommendations"]:
        typer.echo(f"- {r['text']} [{r['measurement']}]")


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
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", "beadseg", *args]
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


def _train_config(data, config, sets, model, epochs, device):
    from .config import load_config

    overrides = list(sets or [])
    if data is not None:
        overrides.append(f"data.path={data}")
    if model:
        overrides.append(f"model.name={model}")
    if epochs:
        overrides.append(f"train.epochs={epochs}")
    if device:
        overrides.append(f"train.device={device}")
    return load_config(config, overrides)


SET_HELP = "Override a config key, e.g. --set optim.lr=1e-3 (repeatable)."


@app.command()
def train(
    data: Path | None = typer.Argument(None, help="Folder with images/ and masks/."),
    out: Path | None = typer.Option(None, "--out", help="Run folder."),
    config: Path | None = typer.Option(None, help="YAML config (see --print-config)."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    model: str | None = typer.Option(None, help="unet, attention_unet, attention_resunet."),
    epochs: int | None = typer.Option(None, min=1, help="Epochs."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, cuda:N, mps."),
    folds: int | None = typer.Option(None, min=2, help="K-fold cross-validation: K."),
    fold: int | None = typer.Option(None, min=0, help="Which fold is validation."),
    resume: Path | None = typer.Option(None, help="Continue the run in this folder."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the config, exit."),
    nproc: int = typer.Option(1, min=1, help="Processes: > 1 launches torchrun (DDP)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a bead segmentation model (grouped split, early stopping, collapse guard)."""
    from .config import config_to_yaml
    from .train import train as run_train

    if nproc > 1:
        _relaunch_with_torchrun(nproc)
    extra = list(sets or [])
    if folds is not None:
        extra.append(f"split.folds={folds}")
    if fold is not None:
        extra.append(f"split.fold={fold}")
    cfg = _train_config(data, config, extra, model, epochs, device)
    if print_config:
        typer.echo(config_to_yaml(cfg), nl=False)
        return
    if resume is None and out is None:
        from .errors import ConfigError

        raise ConfigError("give --out RUN_DIR (or --resume RUN_DIR)")
    res = run_train(cfg, out, resume=resume, progress=not quiet, log=typer.echo)
    code = 3 if res["status"] == "collapsed" else 0
    if res["rank"] == 0:
        typer.echo(f"{res['status']}: best val IoU {res['best_val_iou'] or 0:.3f} at epoch "
                   f"{res['best_epoch']}; run folder {resume or out}")
    if res["world_size"] > 1:
        _exit_torchrun_worker(code)
    if code:
        raise typer.Exit(code)


@app.command()
def cv(
    data: Path | None = typer.Argument(None, help="Folder with images/ and masks/."),
    out: Path = typer.Option(Path("beadseg-cv"), "--out", help="Folder of the fold runs."),
    folds: int = typer.Option(5, min=2, help="K."),
    fold: int | None = typer.Option(None, min=0, help="Run only this fold (job arrays)."),
    report_only: bool = typer.Option(False, help="Only summarise finished folds."),
    config: Path | None = typer.Option(None, help="YAML config."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """K-fold cross-validation over source frames: mean +/- SD of every metric."""
    from .cv import cross_validate

    cfg = _train_config(data, config, sets, None, None, None)
    s = cross_validate(cfg, folds, out, fold, report_only, log=typer.echo)
    typer.echo(s["markdown"])


@app.command()
def sweep(
    space: Path = typer.Argument(..., help="Search-space YAML."),
    trials: int = typer.Option(20, min=1, help="Finished trials wanted in the study."),
    storage: str | None = typer.Option(None, help="Optuna storage URL (default: SQLite in OUT)."),
    out: Path = typer.Option(Path("beadseg-sweep"), "--out", help="Output folder."),
) -> None:
    """Optuna hyperparameter search over config keys, resumable, shareable across workers."""
    from .sweep import sweep as run_sweep

    r = run_sweep(space, trials, out, storage, log=typer.echo)
    typer.echo(f"{r['n_trials']} trials ({r['n_complete']} complete, {r['n_pruned']} pruned); "
               f"results in {out}")


@app.command()
def hpc(
    scheduler: str = typer.Argument(..., help="pbs or slurm."),
    config: str = typer.Option("config.yaml", help="Training config or sweep space."),
    job: str = typer.Option("train", help="train, predict or sweep."),
    gpus: int = typer.Option(1, min=0, help="GPUs per node."),
    nodes: int = typer.Option(1, min=1, help="Nodes."),
    hours: float = typer.Option(4.0, min=0.1, help="Wall time in hours."),
    array: int | None = typer.Option(None, min=1, help="Job-array size (predict shards, sweep workers)."),
    cpus: int = typer.Option(8, min=1, help="CPUs per node."),
    mem_gb: int = typer.Option(32, min=1, help="Memory per node (GB)."),
    queue: str | None = typer.Option(None, help="Queue / partition."),
    account: str | None = typer.Option(None, help="Project / account."),
    venv: str | None = typer.Option(None, help="Virtual environment to activate."),
    module: list[str] | None = typer.Option(None, help="Module to load (repeatable)."),
    out_dir: str = typer.Option("runs", help="Output folder on the cluster."),
    inputs: str = typer.Option("frames/", help="Predict: input folder or glob."),
    model: str = typer.Option("default", help="Predict: model."),
    storage: str | None = typer.Option(None, help="Sweep: shared Optuna storage URL."),
    trials: int = typer.Option(10, min=1, help="Sweep: trials per worker."),
) -> None:
    """Print a PBS or SLURM job script (torchrun training, sweep workers, predict arrays)."""
    from .hpc import JobSpec, render_job

    typer.echo(render_job(JobSpec(
        scheduler=scheduler, job=job, config=config, gpus=gpus, nodes=nodes, hours=hours,
        array=array, cpus=cpus, mem_gb=mem_gb, queue=queue, account=account, venv=venv,
        modules=tuple(module or ()), out_dir=out_dir, inputs=inputs, model=model,
        storage=storage, trials=trials)), nl=False)


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="Run folders."),
    out: Path | None = typer.Option(None, "--out", help="Write compare.csv/.md/.png here."),
) -> None:
    """Table of runs: best/final val IoU, epochs, status, time, parameters."""
    from .compare import compare_runs, markdown_table

    rows = compare_runs(runs, out)
    typer.echo(markdown_table(rows), nl=False)


@app.command("lr-find")
def lr_find_cmd(
    data: Path | None = typer.Argument(None, help="Folder with images/ and masks/."),
    out: Path = typer.Option(Path("beadseg-lr-find"), "--out", help="Output folder."),
    config: Path | None = typer.Option(None, help="YAML config."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    model: str | None = typer.Option(None, help="Model name."),
    steps: int = typer.Option(200, min=10, help="Sweep steps."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, mps."),
) -> None:
    """Learning-rate range test: plot and suggested learning rate."""
    from .lr_find import lr_find

    cfg = _train_config(data, config, sets, model, None, device)
    res = lr_find(cfg, out, steps=steps)
    lr = res["suggested_lr"]
    typer.echo(f"suggested learning rate: {lr:.3g} (use --set optim.lr={lr:.3g}); plot: "
               f"{out / 'lr_find.png'}" if lr else "no clear minimum; see the plot")


@app.command()
def models(
    base_channels: int = typer.Option(8, min=1, help="Width of the first level."),
    depth: int = typer.Option(3, min=1, max=6, help="Down-sampling steps."),
) -> None:
    """Table of the model registry: parameters and GFLOPs per megapixel."""
    from .models import model_table

    typer.echo("| model | base | depth | parameters | GFLOP/MP | description |\n|---|---|---|---|---|---|")
    for r in model_table(base_channels, depth):
        typer.echo(f"| {r['model']} | {r['base_channels']} | {r['depth']} | {r['parameters']:,} | "
                   f"{r['gflops_per_mp']:.1f} | {r['description']} |")


def _predict_config(config: Path | None, sets: list[str] | None, **given):
    """PredictConfig from a YAML file, ``--set key=value`` and the options given (not None)."""
    from .config import PredictConfig, load_config, parse_overrides

    overrides = {**parse_overrides(sets), **{k: v for k, v in given.items() if v is not None}}
    return load_config(config, overrides, model=PredictConfig)


PREDICT_CONFIG_HELP = "YAML with predict settings (PredictConfig keys: mode, tile_size, ...)."
PREDICT_SET_HELP = "Override a predict setting, e.g. --set overlap=128 (repeatable)."


@app.command()
def predict(
    model: str = typer.Argument(..., help="Run folder, checkpoint, or 'default'."),
    inputs: list[Path] = typer.Argument(..., help="Image files, folders or globs."),
    out: Path = typer.Option(Path("beadseg-predictions"), "--out", help="Output folder."),
    config: Path | None = typer.Option(None, help=PREDICT_CONFIG_HELP),
    sets: list[str] | None = typer.Option(None, "--set", help=PREDICT_SET_HELP),
    mode: str | None = typer.Option(None, help="auto, tiled or full (whole frame in one call)."),
    tile_size: int | None = typer.Option(None, min=32, help="Tile side in px."),
    overlap: int | None = typer.Option(None, min=0, help="Tile overlap in px."),
    batch_size: int | None = typer.Option(None, min=1, help="Tiles per call."),
    threshold: float | None = typer.Option(None, help="Probability threshold (default: the model's)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, mps."),
    save_probabilities: bool | None = typer.Option(
        None, "--save-probabilities/--no-save-probabilities", help="Also write probability TIFFs."
    ),
    shard: str | None = typer.Option(None, help="i/N: process every N-th input from i."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Segment images: masks, instance labels, overlays, per-bead CSV and counts.csv.

    Settings not given take the values of --config, else the PredictConfig defaults.
    """
    from .inference import parse_shard, predict_images

    cfg = _predict_config(
        config,
        sets,
        mode=mode,
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        save_probabilities=save_probabilities,
    )
    s = predict_images(
        model,
        [str(i) for i in inputs],
        out,
        cfg,
        threshold,
        progress=not quiet,
        log=typer.echo,
        shard=parse_shard(shard),
    )
    typer.echo(
        f"{s.n_images} images, {s.total_count} beads ({s.n_errors} skipped); counts: {out / 'counts.csv'}"
    )


@app.command()
def merge(
    runs: list[Path] = typer.Argument(..., help="Prediction folders (e.g. shards)."),
    out: Path = typer.Option(..., "--out", help="Merged folder."),
) -> None:
    """Join the counts.csv/errors.csv of prediction runs made with the same model and settings."""
    from .inference import merge_runs

    r = merge_runs(runs, out)
    typer.echo(f"merged {r.n_images} images ({r.n_errors} errors) into {out / 'counts.csv'}")


@app.command()
def evaluate(
    source: str = typer.Argument(..., help="Prediction folder, run folder, checkpoint or default."),
    data: Path = typer.Argument(..., help="Labelled data: images/ and masks/."),
    out: Path = typer.Option(Path("beadseg-evaluation"), "--out", help="Output folder."),
    config: Path | None = typer.Option(None, help=PREDICT_CONFIG_HELP),
    sets: list[str] | None = typer.Option(None, "--set", help=PREDICT_SET_HELP),
    threshold: float | None = typer.Option(None, help="Probability threshold (default: the model's)."),
    shift_radius: int | None = typer.Option(None, min=0, help="Shift-tolerant IoU search radius (px)."),
    centroid_px: float | None = typer.Option(None, min=0.5, help="Centroid matching distance (px)."),
    calibrate: bool = typer.Option(
        False, help="Pick the F1-best threshold; write a copy of the model with it to OUT/calibrated.pt."
    ),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, mps."),
) -> None:
    """Pixel, object and count metrics per image, source frame, dilution and overall."""
    from .evaluate import evaluate as run_eval

    cfg = _predict_config(config, sets, device=device)
    given = {"shift_radius_px": shift_radius, "centroid_px": centroid_px}
    r = run_eval(
        source,
        data,
        out,
        cfg,
        threshold,
        calibrate=calibrate,
        **{k: v for k, v in given.items() if v is not None},
    )
    o = r.overall
    typer.echo(
        f"pixel IoU mean {o.iou_mean:.3f} / pooled {o.pixels.iou:.3f}, best-shift IoU "
        f"{o.iou_best_shift_mean:.3f}; object F1 (IoU 0.5) {o.objects.f1:.3f}, centroid "
        f"F1 {o.centroids.f1:.3f}; median |count error| {o.counts.median_abs_error:.3f}; "
        f"metrics: {out / 'metrics.json'}"
    )
    if r.calibration is not None:
        typer.echo(
            f"calibrated threshold {r.calibration.best_threshold}; the model with it: "
            f"{r.calibration.checkpoint} (use it as the model; {r.calibration.model} is "
            "unchanged)"
        )


@app.command()
def dilution(
    counts_csv: Path = typer.Argument(..., help="counts.csv from beadseg predict."),
    out: Path = typer.Option(Path("beadseg-dilution"), "--out", help="Output folder."),
    pixel_size_um: float | None = typer.Option(None, help="Pixel size in micrometres."),
    depth_um: float | None = typer.Option(None, help="Chamber depth in micrometres."),
) -> None:
    """Density vs dilution on log-log axes: slope, 95 % CI, R2, outliers, stock concentration."""
    from .dilution import dilution_report

    r = dilution_report(counts_csv, out, pixel_size_um, depth_um)
    f = r["fit"]
    typer.echo(f"slope {f['slope']:.3f} (95 % CI {f['slope_ci95'][0]:.3f} to "
               f"{f['slope_ci95'][1]:.3f}, ideal -1), R2 {f['r2']:.3f}, {r['n_images']} images; "
               f"outliers: {', '.join(r['outliers']) or 'none'}; plot: {out / 'dilution.png'}")


@app.command("fix-masks")
def fix_masks_cmd(
    data: Path = typer.Argument(..., help="Folder with images/ and masks/."),
    out: Path = typer.Option(..., "--out", help="Output folder (never the input)."),
    radius: int | None = typer.Option(
        None, min=1, help="Largest shift searched (px; default: the config's data.align_radius_px)."
    ),
) -> None:
    """Write re-registered masks for masks that sit off their beads, plus shifts.csv."""
    from .config import DataConfig
    from .registration import fix_masks

    rows = fix_masks(data, out, DataConfig().align_radius_px if radius is None else radius)
    n = sum(r["fixed"] for r in rows)
    typer.echo(f"{n} of {len(rows)} masks shifted onto their beads; see {out / 'shifts.csv'}")


@app.command()
def demo(
    out: Path = typer.Option(Path("beadseg-demo"), "--out", help="Output folder."),
    quick: bool = typer.Option(False, "--quick", help="Smaller data, fewer epochs (< 60 s)."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """The whole pipeline on generated data with the shipped model; writes index.html."""
    from .demo import run_demo

    run_demo(out, quick=quick, seed=seed, log=typer.echo)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, BeadsegWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        warnings._showwarnmsg_impl(  # type: ignore[attr-defined]
            warnings.WarningMessage(message, category, filename, lineno, file, line)
        )


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2 (no traceback)."""
    warnings.showwarning = _show_warning
    try:
        app(args=argv)  # standalone: usage errors exit 2, --help/--version exit 0
    except BeadsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
