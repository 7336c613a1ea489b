"""Workflows on data: ``synth``, ``analyze``, ``fix-masks``.

Each function holds its output folder by the output-folder rule
(:class:`~beadseg.outputs.folder.OutputFolder`: one command and one set of settings per folder,
resumed, refused or overwritten), runs the library and returns a frozen result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..analysis.outputs import OUTPUT_FILES
from ..core.config import AnalyzeConfig, Config
from ..core.errors import ConfigError
from ..outputs.folder import OutputFolder, default_output
from ._common import absolute, plain

#: what each command writes into its folder (what ``overwrite`` may remove)
SYNTH_OUTPUTS = (
    "images",
    "masks",
    "labels",
    "centres",
    "composites.csv",
    "sprites.csv",
    "sources.csv",
    "synthetic.json",
    "provenance.json",
)
ANALYZE_OUTPUTS = (*OUTPUT_FILES, "config.yaml")
FIX_MASKS_OUTPUTS = ("images", "masks", "shifts.csv", "provenance.json")


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synth` wrote: the image names, and for exact truth (``from_data``) the
    sprites and backgrounds they were made of."""

    out: Path
    kind: str  # "tiles", "dilution_series" or "exact_truth"
    names: tuple[str, ...]
    n_sprites: int = 0
    n_backgrounds: int = 0
    sprite_tiles: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return plain(asdict(self))


def synth(
    out: str | Path | None = None,
    *,
    n: int | None = None,
    size: int = 512,
    seed: int = 0,
    min_beads: int = 3,
    max_beads: int = 750,
    dilution_series: bool = False,
    from_data: str | Path | None = None,
    levels: str | None = None,
    counts: str | None = None,
    clump_fraction: float = 0.3,
    max_group: int = 7,
    frames: str | None = None,
    prefix: str = "truth",
    touch: str = "0.9,1.0",
    family: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> SynthResult:
    """Write synthetic bead images with exact masks and instance labels (`beadseg synth`).

    Three kinds: ``n`` tiles spanning ``min_beads``..``max_beads`` per 512x512 (default); a
    dilution series named like real data (``dilution_series``); or exact truth made of real bead
    appearances pasted at known centres (``from_data``: a folder of labelled tiles; ``levels``,
    ``counts``, ``clump_fraction``, ``max_group``, ``frames``, ``prefix``, ``touch`` apply).
    ``family`` (``train`` or ``heldout``, :mod:`beadseg.data.composite.family`) randomises
    spacing, group shapes, bead size, contrast and focus, sprites of every frame, gradients,
    noise, JPEG and smudges, beads cut by the border, up to a monolayer (``touch`` then does not
    apply; default levels sparse to monolayer).

    Raises
    ------
    ConfigError
        Options that do not go together.
    InputError
        The output folder holds other output (see :class:`~beadseg.outputs.folder.OutputFolder`).
    """
    _check_synth_options(from_data, levels, counts, frames, family, dilution_series, min_beads, max_beads)
    out = Path(out) if out is not None else default_output("synth", from_data)
    settings = {
        "n": n,
        "size": size,
        "seed": seed,
        "min_beads": min_beads,
        "max_beads": max_beads,
        "dilution_series": dilution_series,
        "from": absolute(from_data),
        "levels": levels,
        "counts": counts,
        "clump_fraction": clump_fraction,
        "max_group": max_group,
        "frames": frames,
        "prefix": prefix,
        "touch": touch,
        **({"family": family} if family is not None else {}),
    }
    with OutputFolder.claim(
        out, "synth", settings, outputs=SYNTH_OUTPUTS, overwrite=overwrite, inputs=[from_data]
    ):
        if from_data is not None:
            return _exact_truth(out, Path(from_data), settings)
        from ..outputs.provenance import write_provenance

        names = _generate(out, n, size, seed, min_beads, max_beads, dilution_series, progress)
        write_provenance(out, "synth", seed=seed)
    return SynthResult(out, "dilution_series" if dilution_series else "tiles", tuple(names))


def _check_synth_options(from_data, levels, counts, frames, family, dilution_series, min_beads, max_beads):
    """Options of :func:`synth` that do not go together, refused before any folder is touched."""
    if from_data is None and (levels or counts or frames or family):
        raise ConfigError(
            "levels, counts, frames and family need from_data (--from DATA: real labelled tiles)"
        )
    if family is not None:
        from ..data.composite.family import family as known_family

        known_family(family)  # an unknown name fails here
    if from_data is not None and dilution_series:
        raise ConfigError("dilution_series and from_data (--from) do not go together; give one")
    if min_beads > max_beads:
        raise ConfigError(
            f"min_beads {min_beads} (--min-beads) is above max_beads {max_beads} (--max-beads); "
            "give min <= max"
        )


def _generate(out: Path, n, size, seed, min_beads, max_beads, dilution_series, progress) -> list[str]:
    """Synthetic tiles or a dilution series into ``out``, with a progress bar."""
    from ..data.synth import SERIES_IMAGES, synth_dataset, synth_dilution_series
    from ..outputs.progress import progress_bar

    total = SERIES_IMAGES if dilution_series else n or 8
    with progress_bar(progress, total, "writing synthetic images") as advance:
        if dilution_series:
            return synth_dilution_series(out, size=size, seed=seed, progress=advance)
        return synth_dataset(
            out, n=n or 8, size=size, seed=seed, min_beads=min_beads, max_beads=max_beads, progress=advance
        )


def _exact_truth(out: Path, from_data: Path, o: dict) -> SynthResult:
    from ..data.composite.compose import write_composites
    from ..data.composite.family import family
    from ..data.composite.layout import FAMILY_LEVELS, parse_levels, parse_touch

    fam = family(o["family"]) if o.get("family") else None
    levels = o["levels"] if o["levels"] or o["counts"] or fam is None else ",".join(FAMILY_LEVELS)
    lv = parse_levels(levels, o["counts"], o["clump_fraction"], o["max_group"])
    names = o["frames"].split(",") if o["frames"] else None
    layout = {} if fam is not None else {"touch": parse_touch(o["touch"])}
    r = write_composites(
        out, from_data, lv, o["n"] or 3, o["size"], o["seed"], names, o["prefix"], family=fam, **layout
    )
    return SynthResult(
        out, "exact_truth", tuple(r.names), r.n_sprites, r.n_backgrounds, tuple(r.sprite_tiles), r.seconds
    )


@dataclass(frozen=True)
class AnalyzeResult:
    """What :func:`analyze` found: the summary (the content of ``summary.json``,
    docs/summary_schema.md) and where it was written."""

    out: Path
    summary: dict = field(repr=False)
    plots: bool = True

    def lines(self) -> list[str]:
        """What `beadseg analyze` prints: headlines per domain, findings, recommendations."""
        from ..analysis.outputs import console_lines

        return console_lines(self.summary, self.out, plots=self.plots)

    def to_dict(self) -> dict:
        return self.summary


def analyze(
    data: str | Path,
    out: str | Path | None = None,
    *,
    config: AnalyzeConfig | None = None,
    reference: str | Path | None = None,
    plots: bool = True,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> AnalyzeResult:
    """The dataset doctor (`beadseg analyze`): fingerprint the image/mask pairs of ``data``,
    check and grade its labels, recommend how to train on it; write summary.json,
    per_image.csv, report.md / report.html and the figures into ``out``.

    Parameters
    ----------
    data : path
        Folder with ``images/`` and ``masks/``.
    out : path, optional
        Output folder; default ``./<data folder>-analyze``.
    config : AnalyzeConfig, optional
        Detector, registration, mask-fit and overlap settings (a config file's ``analyze:``).
    reference : path, optional
        Another data folder or a summary.json to compare with, domain by domain.
    plots : bool
        Draw the PNG figures.
    workers : int, optional
        Threads of the per-image pass (default: CPU count, capped at 4).
    """
    from ..analysis import analyze_dataset
    from ..core.config import save_config

    cfg = config or AnalyzeConfig()
    out = Path(out) if out is not None else default_output("analyze", data)
    settings = {
        "data": absolute(data),
        "reference": absolute(reference),
        "config": cfg.model_dump(),
        "plots": plots,
    }
    with OutputFolder.claim(
        out, "analyze", settings, outputs=ANALYZE_OUTPUTS, overwrite=overwrite, inputs=[data, reference]
    ):
        summary = analyze_dataset(
            data, out, reference=reference, workers=workers, cfg=cfg, plots=plots, progress=progress
        )
        save_config(Config(analyze=cfg), out / "config.yaml")  # the one schema of every command
    return AnalyzeResult(out, summary, plots)


@dataclass(frozen=True)
class FixMasksResult:
    """What :func:`fix_masks` did: one row per image (name, dy, dx, fit_zero, fit_best, gain,
    fixed)."""

    out: Path
    rows: tuple[dict, ...]

    @property
    def n_fixed(self) -> int:
        return sum(bool(r["fixed"]) for r in self.rows)

    def to_dict(self) -> dict:
        return plain({"out": self.out, "rows": list(self.rows)})


def fix_masks(
    data: str | Path, out: str | Path | None = None, *, radius_px: int | None = None, overwrite: bool = False
) -> FixMasksResult:
    """Write re-registered masks for the masks that sit off their beads, copies of the others,
    and ``shifts.csv`` (`beadseg fix-masks`); ``data`` is never written.

    ``radius_px``: the largest shift searched (default: the registration radius of
    :class:`~beadseg.core.config.DataConfig`).
    """
    from ..core.config import DataConfig
    from ..core.registration import fix_masks as fix

    radius = DataConfig().align_radius_px if radius_px is None else radius_px
    out = Path(out) if out is not None else default_output("fix-masks", data)
    settings = {"data": absolute(data), "radius": radius}
    with OutputFolder.claim(
        out, "fix-masks", settings, outputs=FIX_MASKS_OUTPUTS, overwrite=overwrite, inputs=[data]
    ):
        rows = fix(data, out, radius)
    return FixMasksResult(out, tuple(rows))
