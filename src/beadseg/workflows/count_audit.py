"""``beadseg audit``: check the model's counts on one's own frames with a few clicks.

Without ``points``: crops of a predict run across its densities, for a person to click beads in
(:func:`beadseg.evaluation.audit.sample_crops`, :func:`~beadseg.evaluation.audit.write_sheet`).
With ``points`` (the clicks saved from napari, or a crop, x, y table): the same crops (drawn
again with the same settings), the model's bias and a count interval per density, the run's
counts corrected by them and, for a dilution series, the fit before and after the correction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..outputs.folder import OutputFolder, default_output
from ._common import absolute, plain

AUDIT_OUTPUTS = (
    "crops",
    "crops.tif",
    "crops.csv",
    "points.csv",
    "predicted_points.csv",
    "instructions.txt",
    "audit.json",
    "audit.csv",
    "counts_corrected.csv",
    "provenance.json",
)


@dataclass(frozen=True)
class AuditResult:
    """What :func:`audit` wrote: the crops (the sheet), and with clicks the bias per density
    bin (``bins``: n_crops, clicked, predicted, bias, correction and its 95 % interval) and the
    dilution slope before and after the correction (``dilution``; None without a series)."""

    out: Path
    n_crops: int
    scored: bool
    bins: tuple[dict, ...] = ()
    dilution: dict | None = field(default=None, repr=False)

    def lines(self) -> list[str]:
        if not self.scored:
            return [
                f"wrote {self.n_crops} crops to {self.out} (crops.tif, crops.csv, points.csv): click "
                "the beads in them (instructions.txt), then run beadseg audit RUN --points FILE"
            ]
        lines = []
        for b in self.bins:
            bias = "-" if b["bias"] is None else f"{100 * b['bias']:+.1f} %"
            lo, hi = b["correction_ci95"]
            lines.append(
                f"density bin {b['density_bin']} (foreground up to {b['foreground_fraction_max']:.3f}): "
                f"{b['n_crops']} crops, {b['clicked']} clicked, {b['predicted']} counted, bias {bias}, "
                f"correction x{b['correction']:.3f} (95 % CI {lo:.3f}-{hi:.3f})"
            )
        d = self.dilution
        if d:
            lines.append(
                f"dilution slope {d['slope']:.3f} as counted, {d['slope_corrected']:.3f} corrected "
                f"(95 % CI {d['slope_corrected_ci95'][0]:.3f} to {d['slope_corrected_ci95'][1]:.3f})"
            )
        lines.append(f"wrote audit.json, audit.csv, counts_corrected.csv to {self.out}")
        return lines

    def to_dict(self) -> dict:
        return plain(asdict(self))


def audit(
    run: str | Path,
    out: str | Path | None = None,
    *,
    points: str | Path | None = None,
    size: int = 64,
    per_bin: int = 6,
    bins: int = 4,
    seed: int = 0,
    overwrite: bool = False,
) -> AuditResult:
    """Crops of a predict run to click beads in, or (``points``) what the clicks say about its
    counts (`beadseg audit`).

    Parameters
    ----------
    run : path
        The output folder of `beadseg predict`.
    out : path, optional
        Default ``./<run folder>-audit`` (with ``points``: ``./<run folder>-audit-scored``).
    points : path, optional
        The clicks: napari's Points-layer CSV of the crop stack, or a CSV with crop, x, y.
    size, per_bin, bins, seed : int
        Crop side (px), crops per density bin, number of bins, random seed; give the same
        values with ``points`` as when the sheet was written (they draw the same crops).

    Raises
    ------
    InputError
        Not a predict folder, no crop holding a bead, or clicks that do not fit the sheet.
    """
    from ..evaluation.audit import sample_crops, write_sheet

    run = Path(run)
    settings = {"run": absolute(run), "size": size, "per_bin": per_bin, "bins": bins, "seed": seed}
    if points is not None:
        settings["points"] = absolute(points)
    if out is None:
        out = default_output("audit", run)
        out = out.with_name(out.name + "-scored") if points is not None else out
    out = Path(out)
    with OutputFolder.claim(
        out, "audit", settings, outputs=AUDIT_OUTPUTS, overwrite=overwrite, inputs=[run, points]
    ):
        crops = sample_crops(run, size, per_bin, bins, seed)
        if points is None:
            write_sheet(out, run, crops)
            result = AuditResult(out, len(crops), False)
        else:
            result = _score(out, run, Path(points), crops)
        from ..outputs.provenance import write_provenance

        write_provenance(out, "audit", seed=seed)
    return result


def _score(out: Path, run: Path, points: Path, crops) -> AuditResult:
    """audit.json, audit.csv and counts_corrected.csv from the clicks."""
    from ..core.files import read_csv_rows, write_csv
    from ..evaluation.audit import corrected_counts, read_clicks, score_clicks
    from ..outputs.provenance import write_json

    scores = score_clicks(crops, read_clicks(points, crops))
    rows = read_csv_rows(run / "counts.csv", ("image", "count", "foreground_fraction"), "counts table")
    fixed = corrected_counts(rows, scores.calibration)
    dilution = _dilution_before_after(run, fixed)
    write_json(out / "audit.json", {**scores.to_dict(), "dilution": dilution})
    write_csv(out / "audit.csv", list(scores.crops))
    write_csv(out / "counts_corrected.csv", fixed)
    return AuditResult(out, len(crops), True, scores.bins, dilution)


def _dilution_before_after(run: Path, fixed: list[dict]) -> dict | None:
    """The dilution fit over source frames of the run's counts and of the corrected ones
    (weighted by the audit's intervals); None without two dilutions."""
    from ..core.dilution import fit_dilution_frames, frame_densities
    from ..evaluation.samples import read_counts

    points = [p for p in read_counts(run / "counts.csv") if p["dilution"] is not None]
    if len({p["dilution"] for p in points}) < 2:
        return None
    by_image = {r["image"]: r for r in fixed}
    corrected = [
        {
            **p,
            "count": by_image[p["image"]]["count_corrected"],
            "count_low": float(by_image[p["image"]]["count_low"]),
            "count_high": float(by_image[p["image"]]["count_high"]),
        }
        for p in points
    ]
    before = fit_dilution_frames(frame_densities(points))  # as `beadseg dilution` fits the run
    after = fit_dilution_frames(frame_densities(corrected))
    if before is None or after is None:
        return None
    return {
        "slope": before.slope,
        "slope_ci95": list(before.slope_ci95),
        "slope_corrected": after.slope,
        "slope_corrected_ci95": list(after.slope_ci95),
        "weighted": after.weighted,
    }
