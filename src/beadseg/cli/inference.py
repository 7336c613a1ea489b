"""Commands that use a model: ``predict``, ``merge``, ``evaluate``, ``export``, ``dilution``."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import (
    _DILUTION_HELP,
    DEVICE_HELP,
    OVERWRITE,
    PREDICT_CONFIG_HELP,
    PREDICT_SET_HELP,
    QUIET,
    _abs,
    _claim,
    _command,
    _out,
    _out_option,
    _predict_config,
)
from .process import tune_for_streaming


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
    from ..inference import parse_shard, predict_images
    from ..inference.records import predict_settings
    from ..inference.runner import check_threshold

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
        tune_for_streaming()  # before the engine's and the lookahead's threads exist
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
    from ..inference import merge_runs

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
    from ..evaluation.evaluate import evaluate as run_eval

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
    from ..integrations.export import export_model

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
    from ..core.dilution import microlitre_per_mp
    from ..evaluation.dilution_report import console_lines, dilution_report
    from ..evaluation.samples import counts_file

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
