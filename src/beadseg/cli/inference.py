"""Commands that use a model or its counts: ``predict``, ``merge``, ``evaluate``, ``export``,
``dilution``.

Each maps its flags onto one workflow function (:mod:`beadseg.workflows`) and prints what it
returned; the workflow holds the output folder.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .app import (
    DEVICE_HELP,
    DILUTION_HELP,
    OVERWRITE,
    QUIET,
    command,
    config_option,
    echo_lines,
    out_option,
    resolve_config,
    set_option,
)

THRESHOLD = typer.Option(None, metavar="P", help="Probability threshold (default: the model's).")


@command(
    examples=(
        "beadseg predict default frames/*.png --out predictions",
        "beadseg predict runs/unet frames/ --set predict.overlap=128 --device cuda -q",
        "beadseg predict default frames/ --shard 0/4 --out preds-0",
    )
)
def predict(
    model: str = typer.Argument(..., metavar="MODEL", help="Run folder, checkpoint, or 'default'."),
    inputs: list[Path] = typer.Argument(..., metavar="INPUTS", help="Image files, folders or globs."),
    out: Path | None = out_option("predict", "INPUTS"),
    config: Path | None = config_option(),
    sets: list[str] | None = set_option(),
    mode: str | None = typer.Option(
        None, metavar="MODE", help="auto, tiled or full (whole frame in one call; config: predict.mode)."
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
    threshold: float | None = THRESHOLD,
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (default: auto)."),
    precision: str | None = typer.Option(
        None,
        metavar="P",
        help="auto, float32 or int8 (auto: the model's int8 file on CPUs when it has an up-to-date one).",
    ),
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

    Settings not given take the values of --config, else the defaults; beads are separated by
    the model's instance settings, but for the keys --set names (e.g. --set
    instances.split_area_ratio=0). Running again into the
    same --out with the same model, settings and inputs resumes (frames already done, and
    unchanged since, are not predicted again); another model, threshold, setting or inputs is
    refused, naming the difference (or --overwrite to start again).
    """
    from ..core.config import parse_overrides
    from ..inference.runner import parse_shard
    from ..workflows import predict as run
    from .process import tune_for_streaming

    flags = {
        "mode": mode,
        "tile_size": tile_size,
        "overlap": overlap,
        "batch_size": batch_size,
        "device": device,
        "precision": precision,
        "save_probabilities": save_probabilities,
        "pixel_size_um": pixel_size_um,
    }
    cfg = resolve_config(config, sets, {f"predict.{k}": v for k, v in flags.items()})
    # the model's instance settings, but for the keys --set names (instances.min_centre=0.5 or
    # instances={min_centre: 0.5}), with the values resolve_config validated
    named = parse_overrides(sets).get("instances") or {}
    instances = {k: getattr(cfg.instances, k) for k in sorted(named)}
    tune_for_streaming()  # before the engine's and the lookahead's threads exist
    s = run(
        model,
        inputs,
        out,
        config=cfg.predict,
        threshold=threshold,
        shard=parse_shard(shard),
        instances=instances or None,
        overwrite=overwrite,
        progress=not quiet,
        log=typer.echo,
    )
    images = f"{s.n_images} image{'s' * (s.n_images != 1)}"
    typer.echo(f"{images}, {s.total_count} beads ({s.n_errors} skipped); counts: {s.out / 'counts.csv'}")


@command(
    examples=(
        "beadseg merge preds-0 preds-1 preds-2 preds-3 --out predictions",
        "beadseg merge preds-* --out predictions --incomplete",
    )
)
def merge(
    runs: list[Path] = typer.Argument(..., metavar="RUN", help="Prediction folders (e.g. shards)."),
    out: Path | None = out_option("merge", "RUN", "Merged folder (not one of the inputs)."),
    incomplete: bool = typer.Option(
        False, "--incomplete", help="Merge although shards are missing (marked in settings.json)."
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Join the counts.csv/errors.csv of prediction runs made with the same model and settings.

    Shards of a job array must all be given (each records i/N), unless --incomplete.
    """
    from ..workflows import merge as run

    r = run(runs, out, incomplete=incomplete, overwrite=overwrite)
    if r.missing_shards:
        typer.echo(f"warning: incomplete: shards {', '.join(r.missing_shards)} missing", err=True)
    typer.echo(f"merged {r.n_images} images ({r.n_errors} errors) into {r.out / 'counts.csv'}")


@command(
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
    out: Path | None = out_option("evaluate", "SOURCE"),
    config: Path | None = config_option(),
    sets: list[str] | None = set_option(),
    threshold: float | None = THRESHOLD,
    shift_radius: int | None = typer.Option(
        None, min=0, metavar="PX", help="Shift-tolerant IoU search radius (px; default: 3)."
    ),
    centroid_px: float | None = typer.Option(
        None, min=0.5, metavar="PX", help="Centroid matching distance (px; default: 3)."
    ),
    calibrate: bool = typer.Option(
        False,
        help="Pick the F1-best threshold (and, for a centre-head model against exact truth with "
        "centres/, the split-by-size ratio); write a copy of the model with it to OUT/calibrated.pt.",
    ),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (default: auto)."),
    all_labels: bool = typer.Option(
        False, "--all-labels", help="Score against every label, also those graded unusable."
    ),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """Pixel, object and count metrics per image, source frame, dilution and overall.

    Labels graded unusable (see `beadseg analyze`) are left out and listed, unless --all-labels;
    a prediction folder covering part of the data is scored on the images it holds.
    """
    from ..outputs.folder import default_output
    from ..workflows import evaluate as run

    cfg = resolve_config(config, sets, {"predict.device": device})
    out = out if out is not None else default_output("evaluate", source)
    r = run(
        source,
        data,
        out,
        config=cfg.predict,
        threshold=threshold,
        shift_radius_px=shift_radius,
        centroid_px=centroid_px,
        calibrate=calibrate,
        all_labels=all_labels,
        overwrite=overwrite,
        progress=not quiet,
    )
    for name, reasons in sorted(r.labels.left_out.items()):
        typer.echo(f"left out {name} (label unusable: {reasons[0]})")
    if r.no_prediction:
        typer.echo(
            f"{len(r.no_prediction)} of {len(r.no_prediction) + len(r.images)} labelled images "
            f"have no prediction in {source} (e.g. {r.no_prediction[0]}); scored the others"
        )
    echo_lines(r.headlines())
    typer.echo(f"metrics: {out / 'metrics.json'}; read {out / 'report.html'}")
    if r.calibration is not None:
        typer.echo(
            f"calibrated threshold {r.calibration.best_threshold}"
            + (
                ""
                if r.calibration.split_area_ratio is None
                else f", split_area_ratio {r.calibration.split_area_ratio:g}"
            )
            + "; the model with it: "
            f"{r.calibration.checkpoint} (use it as the model; {r.calibration.model} is unchanged)"
        )


@command(
    examples=(
        "beadseg export runs/unet",
        "beadseg export runs/unet --format int8 --calibration data/images",
        "beadseg export runs/unet --format bioimageio --out unet.zip",
    )
)
def export(
    model: str = typer.Argument(..., metavar="MODEL", help="Run folder, checkpoint, or 'default'."),
    fmt: str = typer.Option("onnx", "--format", metavar="FORMAT", help="onnx, int8 or bioimageio."),
    calibration: list[Path] | None = typer.Option(
        None,
        "--calibration",
        metavar="IMAGES",
        help="int8: real images of the model's domain (files, folders or globs) to calibrate on.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FILE",
        show_default="<checkpoint name>.onnx beside the checkpoint",
        help="File to write (the shipped model: ./default.onnx; bioimageio: "
        "./<checkpoint name>.bioimageio.zip).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the file --out names."),
    quiet: bool = QUIET,
) -> None:
    """Export a model: ONNX (settings in its metadata; predict runs it without torch), its int8
    ONNX file (predict runs it on CPUs; check its counts first: benchmarks/cheaper_network.py) or
    a bioimage.io package (deepImageJ, ilastik, BiaPy)."""
    from ..outputs.progress import status
    from ..workflows import export as run

    # a bioimage.io package traces the network twice and runs it: ~10-20 s on a CPU; int8
    # calibrates on up to 64 crops
    with status(not quiet and fmt in ("bioimageio", "int8"), f"writing the {fmt} model"):
        r = run(model, fmt, out, overwrite=overwrite, calibration=calibration)
    if r.int8 is None:
        typer.echo(f"wrote {r.path}")
        return
    q = r.int8
    typer.echo(
        f"wrote {r.path} (calibrated on {q['crops']} crops of {q['images']} images; on them the "
        f"foreground mask agrees with float32 on {100 * q['mask_agreement']:.2f} % of pixels, "
        f"probabilities within {q['max_abs_diff']:.3f}); check its counts before relying on it"
    )


@command(
    examples=(
        "beadseg dilution predictions/counts.csv",
        "beadseg dilution predictions --out dilution --pixel-size-um 0.345 --depth-um 100",
    ),
    help=(
        "Density vs dilution on log-log axes, fitted over source frames (tiles of one frame are not "
        "independent): slope with its 95 % CI, stock concentration with its 95 % interval, frames whose "
        "implied stock is an outlier. " + DILUTION_HELP + " Or give --samples SHEET.csv: a "
        "dilution column and one of image / source_frame / prefix / sample."
    ),
)
def dilution(
    counts_csv: Path = typer.Argument(
        ..., metavar="COUNTS", help="counts.csv from beadseg predict, or the predict output folder."
    ),
    out: Path | None = out_option("dilution", "COUNTS"),
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
    from ..workflows import dilution as run

    r = run(
        counts_csv, out, samples=samples, pixel_size_um=pixel_size_um, depth_um=depth_um, overwrite=overwrite
    )
    echo_lines(r.lines())


@command(
    examples=(
        "beadseg audit predictions",
        "beadseg audit predictions --points clicks.csv",
        "beadseg audit predictions --size 48 --per-bin 8 --out my-audit",
    ),
    help=(
        "Check the model's counts on your own frames. Without --points: crops of a predict run "
        "across its densities to click beads in (crops.tif for napari, crops.csv, an empty napari "
        "points.csv, instructions.txt). With --points (napari's saved Points layer, or a CSV of "
        "crop, x, y): the model's bias and a count interval per density from your clicks, the "
        "run's counts corrected by them (counts_corrected.csv) and, for a dilution series, the "
        "slope before and after the correction. Give the same --size/--per-bin/--bins/--seed both "
        "times."
    ),
)
def audit(
    run_folder: Path = typer.Argument(..., metavar="RUN", help="The output folder of beadseg predict."),
    out: Path | None = out_option("audit", "RUN"),
    points: Path | None = typer.Option(
        None, "--points", metavar="FILE", help="Your clicks: napari Points CSV, or crop,x,y."
    ),
    size: int = typer.Option(64, "--size", min=16, max=2048, metavar="PX", help="Crop side in px."),
    per_bin: int = typer.Option(6, "--per-bin", min=1, max=1000, metavar="N", help="Crops per density bin."),
    bins: int = typer.Option(4, "--bins", min=1, max=20, metavar="N", help="Density bins."),
    seed: int = typer.Option(0, "--seed", min=0, metavar="N", help="Random seed of the crops."),
    overwrite: bool = OVERWRITE,
) -> None:
    from ..workflows import audit as run

    r = run(
        run_folder, out, points=points, size=size, per_bin=per_bin, bins=bins, seed=seed, overwrite=overwrite
    )
    echo_lines(r.lines())
