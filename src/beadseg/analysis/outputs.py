"""Writing the dataset doctor's output folder: summary.json, per_image.csv, report.md and
report.html, figures."""

from __future__ import annotations

from pathlib import Path

from ..core.files import write_csv
from ..outputs.provenance import write_json, write_provenance
from .report import fmt

OUTPUT_FILES = (
    "summary.json",
    "per_image.csv",
    "report.md",
    "report.html",
    "distribution_analysis.png",
    "sample_images.png",
    "registration.png",
    "provenance.json",
)


def write_outputs(out: Path, summary: dict, ms, pairs, plots: bool = True) -> list[Path]:
    """Write every output (the PNG figures with ``plots``). Returns the files written."""
    from ..outputs.document import write_report
    from ..outputs.terms import ANALYSIS_NAMES, named_terms
    from .report import render_report

    out.mkdir(parents=True, exist_ok=True)
    written = []
    if plots:
        from .plots import distributions_payload, draw_registration, draw_samples, plot_distributions

        draw_samples(summary, ms, pairs, out / "sample_images.png")
        draw_registration(summary, pairs, out / "registration.png")
        plot_distributions(distributions_payload(summary, ms), out / "distribution_analysis.png")
        written += [out / f for f in ("distribution_analysis.png", "sample_images.png", "registration.png")]
    written.append(write_json(out / "summary.json", summary))
    written.append(write_csv(out / "per_image.csv", summary["per_image"]))
    written.append(write_provenance(out, "analyze"))
    # after the figures: report.html embeds them
    terms = named_terms(summary["definitions"], ANALYSIS_NAMES, ["source frame", "dilution", "beads per MP"])
    written += write_report(out, render_report(summary, plots), terms)
    return written


def console_lines(s: dict, out, plots: bool = True) -> list[str]:
    """What `beadseg analyze` prints: headlines per domain, findings, recommendations, outputs."""
    lines = [
        f"{s['dataset_size']} image/mask pairs: "
        + ", ".join(
            f"{h['n_images']} {d} ({h['n_source_frames']} source frames)" for d, h in s["domains"].items()
        )
    ]
    for d, h in s["domains"].items():
        g = h["grade_counts"]
        lines.append(
            f"{d}: {fmt(h['mean_beads_per_image'], 0)} beads/image, foreground "
            f"{fmt(h['mean_foreground_fraction'], 3)}, median bead area "
            f"{fmt(h['median_object_area_px'], 0)} px; labels {g['good']} good, "
            f"{g['fixable']} fixable, {g['unusable']} unusable"
        )
    train = s["training_domain"]
    fit = s["domains"].get(train, {}).get("dilution_fit")
    if fit:
        lines.append(
            f"{train} dilution slope {fmt(fit['slope'])} (95 % CI {fmt(fit['slope_ci95'][0])} "
            f"to {fmt(fit['slope_ci95'][1])}) over {fit['n_frames']} source frames"
        )
    for f in s["checks"]["mask_fit"]["not_fitting"]:
        where = f"belongs to {f['belongs_to']}" if f["belongs_to"] else "no image of the set matches it"
        lines.append(
            f"mask does not fit its image: {f['name']} (correlation {f['fit']:.2f} vs "
            f"{f['reference']:.2f}); {where}"
        )
    for m in s["checks"]["domains"]["mismatches"]:
        lines.append(f"named {m['named']} but looks {m['looks_like']}: {m['name']}")
    lines += [f"- {r['text']} [{r['measurement']}]" for r in s["recommendations"]]
    files = [f for f in OUTPUT_FILES if plots or not f.endswith(".png")]
    lines.append(f"wrote {', '.join(files)} to {Path(out)}; read {Path(out) / 'report.html'}")
    return lines
