"""The ``beadseg`` command line: each command parses, calls one library function, prints."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

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
    reference: Optional[Path] = typer.Option(
        None, help="Another data folder or summary.json to compare with."
    ),
    workers: Optional[int] = typer.Option(None, min=1, help="Processes (default: CPUs, max 4)."),
    config: Optional[Path] = typer.Option(None, help="YAML with analyze settings."),
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


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, BeadsegWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        warnings._showwarnmsg_impl(  # type: ignore[attr-defined]
            warnings.WarningMessage(message, category, filename, lineno, file, line)
        )


def main(argv: Optional[list[str]] = None) -> None:
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
