"""Commands on data: ``synth``, ``analyze``, ``fix-masks``, ``demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import _DILUTION_HELP, DEVICE_HELP, OVERWRITE, QUIET, _abs, _claim, _command, _out, _out_option
from .process import tune_for_analysis

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
    from ..core.errors import ConfigError
    from ..data.synth import synth_dataset, synth_dilution_series
    from ..outputs.provenance import write_provenance

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
    from ..core.errors import ConfigError

    if from_data is None and from_only:
        raise ConfigError("--levels, --counts and --frames need --from DATA (real sparse tiles)")
    if from_data is not None and dilution_series:
        raise ConfigError("--dilution-series and --from do not go together; give one")
    if min_beads > max_beads:
        raise ConfigError(f"--min-beads {min_beads} is above --max-beads {max_beads}; give min <= max")


def _write_composites(out: Path, from_data: Path, o: dict) -> None:
    """``synth --from``: exact-truth composites, with the options ``o`` of the command."""
    from ..data.composite.compose import write_composites
    from ..data.composite.layout import parse_levels, parse_touch

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
    from ..analysis import analyze_dataset
    from ..analysis.outputs import console_lines
    from ..core.config import AnalyzeConfig, load_config

    out = _out(out, "analyze", data)
    cfg = load_config(config, model=AnalyzeConfig)
    settings = {
        "data": _abs(data),
        "reference": _abs(reference),
        "config": cfg.model_dump(),
        "plots": not no_plots,
    }
    with _claim(out, "analyze", settings, overwrite, inputs=[data, reference]):
        tune_for_analysis()
        s = analyze_dataset(
            data, out, reference=reference, workers=workers, cfg=cfg, plots=not no_plots, progress=not quiet
        )
    if not quiet:
        for line in console_lines(s, out, plots=not no_plots):
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
    from ..core.config import DataConfig
    from ..core.registration import fix_masks

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
    from ..workflows.demo import run_demo

    out = _out(out, "demo")
    log = (lambda line: None) if quiet else typer.echo
    with _claim(out, "demo", {"quick": quick, "seed": seed}, overwrite):
        run_demo(out, quick=quick, seed=seed, log=log, device=device)
