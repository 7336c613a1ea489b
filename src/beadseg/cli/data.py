"""Commands to start with and commands on data: ``demo``, ``synth``, ``analyze``, ``fix-masks``.

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


@command(examples=("beadseg demo", "beadseg demo --quick --out demo --device cpu -q"))
def demo(
    out: Path | None = out_option("demo", None),
    quick: bool = typer.Option(False, "--quick", help="Smaller data, fewer epochs (< 60 s)."),
    seed: int = typer.Option(0, min=0, metavar="N", help="Random seed."),
    device: str | None = typer.Option(None, metavar="DEVICE", help=f"{DEVICE_HELP} (default: auto)."),
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """Start here: the whole pipeline on generated data with the shipped model; writes report.html."""
    from ..workflows import demo as run

    run(out, quick=quick, seed=seed, device=device, overwrite=overwrite, log=None if quiet else typer.echo)


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
    "clumped, crowded, packed, monolayer (default: the first four).",
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
_FAMILY = typer.Option(
    None,
    metavar="NAME",
    help="With --from: randomise spacing, group shapes (pairs, chains, packs), bead size, "
    "contrast, focus, gradients, noise, JPEG and smudges, beads cut by the border, up to a "
    "monolayer: train (what the shipped model trains on) or heldout (the counting benchmark's). "
    "Default levels then: sparse,medium,dense,clumped,packed,monolayer.",
)
_TOUCH = typer.Option(
    "0.9,1.0", metavar="LOW,HIGH", help="With --from: centre distance of touching beads, LOW,HIGH diameters."
)


@command(
    examples=(
        "beadseg synth --out toy --n 8 --size 256",
        "beadseg synth --dilution-series --out series",
        "beadseg synth --from ../data/microbeads --levels sparse,dense --out truth",
        "beadseg synth --from ../data/microbeads --family heldout --n 5 --out truth",
    )
)
def synth(
    folder: Path | None = typer.Argument(None, metavar="FOLDER", show_default=False, help="Same as --out."),
    out: Path | None = out_option(
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
    family: str | None = _FAMILY,
    quiet: bool = QUIET,
    overwrite: bool = OVERWRITE,
) -> None:
    """Write synthetic bead images with exact masks and instance labels (--from: real appearances
    pasted at known centres, with centres/NAME.csv)."""
    from ..core.errors import ConfigError
    from ..workflows import synth as run

    if folder is not None and out is not None and folder != out:
        raise ConfigError(f"FOLDER {folder} and --out {out} differ; give one of them")
    r = run(
        folder or out,
        n=n,
        size=size,
        seed=seed,
        min_beads=min_beads,
        max_beads=max_beads,
        dilution_series=dilution_series,
        from_data=from_data,
        levels=levels,
        counts=counts,
        clump_fraction=clump_fraction,
        max_group=max_group,
        frames=frames,
        prefix=prefix,
        touch=touch,
        family=family,
        overwrite=overwrite,
        progress=not quiet,
    )
    if r.kind == "exact_truth":
        typer.echo(
            f"wrote {len(r.names)} exact-truth images to {r.out} from {r.n_sprites} sprites "
            f"({len(r.sprite_tiles)} tiles) and {r.n_backgrounds} backgrounds in {r.seconds:.1f} s"
        )
    else:
        typer.echo(f"wrote {len(r.names)} synthetic pairs to {r.out}")


@command(
    examples=(
        "beadseg analyze ../data/microbeads",
        "beadseg analyze ../data/microbeads --out analysis --no-plots -q",
        "beadseg analyze ../data/microbeads --set analyze.min_distance_px=2",
    ),
    help=(
        "Dataset doctor: headlines per domain (real tiles / synthetic tiles, never pooled), a grade "
        "per label (good / fixable / unusable), masks filed under the wrong image, missing labels, "
        "misregistered masks, leakage, overlap agreement, dilution fit over source frames, "
        "recommendations. " + DILUTION_HELP
    ),
)
def analyze(
    data: Path = typer.Argument(..., metavar="DATA", help="Folder with images/ and masks/."),
    out: Path | None = out_option("analyze", "DATA"),
    reference: Path | None = typer.Option(
        None, metavar="DATA", help="Another data folder or summary.json to compare with."
    ),
    workers: int | None = typer.Option(None, min=1, metavar="N", help="Threads (default: CPUs, max 4)."),
    config: Path | None = config_option(),
    sets: list[str] | None = set_option(),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG figures."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary lines."),
    overwrite: bool = OVERWRITE,
) -> None:
    from ..workflows import analyze as run
    from .process import tune_for_analysis

    cfg = resolve_config(config, sets)
    tune_for_analysis()
    r = run(
        data,
        out,
        config=cfg.analyze,
        reference=reference,
        plots=not no_plots,
        workers=workers,
        overwrite=overwrite,
        progress=not quiet,
    )
    if not quiet:
        echo_lines(r.lines())


@command(
    "fix-masks",
    examples=(
        "beadseg fix-masks ../data/microbeads --out fixed",
        "beadseg fix-masks ../data/microbeads --radius 8",
    ),
)
def fix_masks(
    data: Path = typer.Argument(..., metavar="DATA", help="Folder with images/ and masks/."),
    out: Path | None = out_option("fix-masks", "DATA", "Output folder (never the input)."),
    radius: int | None = typer.Option(
        None,
        min=1,
        metavar="PX",
        help="Largest shift searched (px; default: the config's data.align_radius_px).",
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Write re-registered masks for masks that sit off their beads, plus shifts.csv."""
    from ..workflows import fix_masks as run

    r = run(data, out, radius_px=radius, overwrite=overwrite)
    typer.echo(f"{r.n_fixed} of {len(r.rows)} masks shifted onto their beads; see {r.out / 'shifts.csv'}")
