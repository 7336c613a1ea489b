"""The content of `beadseg evaluate`'s report: overall scores, scores per dilution and source
frame, the worst images, the threshold scan; every term defined under Terms."""

from __future__ import annotations

from ..outputs.document import escape, markdown_table
from ..outputs.terms import EVALUATION_NAMES, named_terms

# The results are beadseg.evaluation.scores' Evaluation and SetSummary; not imported (not even for type
# checking), because evaluate imports this module to write its report.

#: rows of the worst-images table
N_WORST = 10

_GROUP_HEADER = [
    "images",
    "pixel IoU (mean)",
    "shift-tolerant IoU",
    "object F1 (IoU 0.5)",
    "centroid F1",
    "true beads",
    "predicted beads",
    "count error of the total",
]


def _overall(o) -> str:
    c = o.counts
    rows = [
        ["pixel IoU (mean / pooled)", f"{o.iou_mean:.3f} / {o.pixels.iou:.3f}"],
        ["Dice (mean / pooled)", f"{o.dice_mean:.3f} / {o.pixels.dice:.3f}"],
        ["shift-tolerant IoU (mean)", f"{o.iou_best_shift_mean:.3f}"],
    ]
    for name, m in (("object", o.objects), ("centroid", o.centroids)):
        rows.append(
            [
                f"{EVALUATION_NAMES[name]}: precision / recall / F1",
                f"{m.precision:.3f} / {m.recall:.3f} / {m.f1:.3f} (TP {m.tp}, FP {m.fp}, FN {m.fn})",
            ]
        )
    rows += [
        ["beads, true / predicted (all images)", f"{c.true_total:.0f} / {c.pred_total:.0f}"],
        ["count error of the total", f"{100 * c.total_relative_error:+.1f} %"],
        ["count error per image, median / mean of |error|",
         f"{100 * c.median_abs_error:.1f} % / {100 * c.mean_abs_error:.1f} %"],
    ]  # fmt: skip
    return markdown_table(["score", "value"], rows, align="ll")


def _natural(key: str) -> tuple:
    """Dilutions in numeric order (160 before 1280), other keys alphabetically."""
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def _group_rows(groups: dict) -> list[list]:
    return [
        [
            key,
            s.n_images,
            s.iou_mean,
            s.iou_best_shift_mean,
            s.objects.f1,
            s.centroids.f1,
            int(s.counts.true_total),
            int(s.counts.pred_total),
            f"{100 * s.counts.total_relative_error:+.1f} %",
        ]
        for key, s in sorted(groups.items(), key=lambda kv: _natural(kv[0]))
    ]


def _worst(result) -> list[str]:
    imperfect = [e for e in result.images if e.centroids.f1 < 1.0]
    if not imperfect:
        return ["Every image has centroid F1 1.000.\n"]
    worst = sorted(imperfect, key=lambda e: (e.centroids.f1, e.image))[:N_WORST]
    rows = [
        [
            e.image,
            e.centroids.f1,
            e.objects.f1,
            e.objects.n_true,
            e.objects.n_pred,
            f"{100 * e.count_error:+.1f} %",
            f"{e.best_shift[0]}, {e.best_shift[1]}",
        ]
        for e in worst
    ]
    header = ["image", "centroid F1", "object F1", "true beads", "predicted beads", "count error",
              "best shift dy, dx (px)"]  # fmt: skip
    return [
        ("The" if len(worst) == len(imperfect) else f"The {len(worst)} worst of the")
        + f" {len(imperfect)} images with centroid F1 below 1, worst first (every image is in "
        "metrics.csv):\n",
        markdown_table(header, rows),
        "",
    ]


def _calibration(result) -> list[str]:
    cal = result.calibration
    if cal is None:
        return []
    where = (
        f"A copy of the model carrying it: `{escape(cal.checkpoint)}`."
        if cal.checkpoint
        else "No copy of the model was written (no output folder)."
    )
    rows = [[f"{t:.2f}", f] for t, f in zip(cal.thresholds, cal.centroid_f1)]
    split = (
        ""
        if cal.split_area_ratio is None
        else f" Against this exact truth the split by size was scanned too (ratios 0-2.5, 0: off): the "
        f"best is **{cal.split_area_ratio:g}**, and the table is at that ratio."
    )
    return [
        "## Threshold calibration\n",
        f"Centroid F1 over all images at each probability threshold; the best is "
        f"**{cal.best_threshold}**.{split} {where} The model itself is unchanged.\n",
        markdown_table(["threshold", "centroid F1"], rows, digits=3),
        "",
    ]


def _headline_sections(result) -> list[str]:
    """One overall table, or one per domain when the set holds real and synthetic images (their
    densities and masks differ too much for pooled scores to describe either)."""
    domains = result.per_domain
    if len(domains) < 2:
        return ["## Overall\n", *_caveat(result.caveat()), _overall(result.overall), ""]
    out = [
        "The set holds real and synthetic images; they are scored apart (the scores of all images "
        "pooled are in metrics.json under `overall`).\n"
    ]
    for name, s in sorted(domains.items()):
        out += [
            f"## {name.capitalize()} images ({s.n_images})\n",
            *_caveat(result.caveat(name)),
            _overall(s),
            "",
        ]
    return out


def _caveat(warning: str) -> list[str]:
    """The soft-mask warning as a paragraph (nothing when there is none)."""
    return [f"**Read with care:** {warning}.\n"] if warning else []


def render_evaluation(result, figure: str | None = None) -> str:
    """The report body (Markdown) of an evaluation.

    Parameters
    ----------
    result : beadseg.evaluation.scores.Evaluation
    figure : str, optional
        Path (relative to the report) of the worst-cases figure, when one was drawn.
    """
    o = result.overall
    out = [
        f"# Evaluation of {escape(result.source)}\n",
        f"{o.n_images} labelled images of `{escape(result.data)}`, compared pixel by pixel, "
        "bead by bead and by count. Scores over a set of images pool its matches (TP, FP and FN "
        "summed), so big images weigh more; every term is defined under Terms at the end.\n",
        *_headline_sections(result),
    ]
    if result.per_dilution:
        out += [
            "## Per dilution\n",
            markdown_table(["dilution", *_GROUP_HEADER], _group_rows(result.per_dilution)),
            "",
        ]
    if result.per_source_frame:
        out += [
            "## Per source frame\n",
            markdown_table(["source frame", *_GROUP_HEADER], _group_rows(result.per_source_frame)),
            "",
        ]
    out += ["## Worst images\n", *_worst(result)]
    if figure:
        out += [
            "Truth outlined in green, prediction in magenta:\n",
            f"![the worst images]({figure})\n",
        ]
    out += _calibration(result)
    return "\n".join(out)


def evaluation_terms(result) -> dict[str, str]:
    """The terms of the report: the evaluation's own definitions and the general ones it uses."""
    general = ["pixel IoU", "precision, recall, F1", "Dice", "source frame", "dilution"]
    return named_terms(result.definitions, EVALUATION_NAMES, general)
