"""report.md of the dataset doctor: one section per finding, every headline per domain."""

from __future__ import annotations

import math


def fmt(v, nd=2) -> str:
    """A number of the summary as text: ``nd`` decimals for floats, "n/a" for None or NaN (the
    summary holds None where a value cannot be computed, e.g. a slope's interval over two
    source frames)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _on_domains(values: dict, nd: int = 1, unit: str = "") -> str:
    """A value per domain as text: "8.7 px (real tiles)", or "8.7 px (real tiles), 6.0 px
    (synthetic tiles)"."""
    return ", ".join(f"{fmt(v, nd)}{unit} ({d} tiles)" for d, v in values.items()) or "n/a"


def gain_text(gain) -> str:
    """The fit gain of a mask shift as text: "+25 %", or "from none" when the unshifted mask
    covered no bead evidence (an infinite gain, None in the summary)."""
    return "from none" if gain is None or not math.isfinite(gain) else f"+{100 * gain:.0f} %"


def _names(names: list[str], most: int = 5) -> str:
    """ "0", or the count and the first ``most`` names."""
    if not names:
        return "0"
    return f"{len(names)} ({', '.join(names[:most])}{', ...' if len(names) > most else ''})"


def _table(rows: list[dict], cols: list[tuple]) -> str:
    """A Markdown table of ``rows``; each column is (key, title) or (key, title, decimals):
    counts and means of counts take 0 decimals."""
    if not rows:
        return ""
    head = "| " + " | ".join(c[1] for c in cols) + " |\n"
    sep = "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(cols))) + "|\n"
    body = "".join("| " + " | ".join(_md(fmt(r.get(c[0]), *c[2:])) for c in cols) + " |\n" for r in rows)
    return head + sep + body


def _md(text: str) -> str:
    from ..outputs.document import escape

    return escape(text)


_HEADLINES = [
    ("n_images", "images", 0),
    ("n_source_frames", "source frames", 0),
    ("mean_beads_per_image", "beads per image (watershed split), mean", 0),
    ("min_beads_per_image", "beads per image, min", 0),
    ("max_beads_per_image", "beads per image, max", 0),
    ("mean_objects_per_image", "connected objects per image (a clump counts once), mean", 0),
    ("mean_beads_area_estimate", "beads per image by area / single-bead area, mean", 0),
    ("median_beads_per_mp", "beads per MP, median", 0),
    ("mean_foreground_fraction", "foreground fraction, mean", 4),
    ("median_object_area_px", "object area (px), median", 1),
    ("single_bead_area_px", "single-bead area (px)", 1),
    ("median_equivalent_diameter_px", "equivalent diameter (px), median", 1),
    ("mean_brightness", "brightness (mean grey, 0-255)", 1),
    ("mean_contrast", "contrast (grey SD, 0-255)", 1),
    ("mean_bead_contrast", "bead contrast ((bg - bead) / bg)", 3),
    ("n_soft_masks", "soft masks", 0),
    ("n_misregistered", "misregistered masks", 0),
    ("n_missing_labels", "masks with missing labels", 0),
    ("n_masks_not_fitting", "masks not fitting their image", 0),
]


def _headlines(s: dict) -> list[str]:
    doms = list(s["domains"])
    out = [
        "## Headlines per domain\n",
        "Every number is computed per domain (real tiles / synthetic tiles), never pooled.\n",
        "| | " + " | ".join(f"{d} tiles" for d in doms) + " |",
        "|:---|" + "---:|" * len(doms),
    ]
    for key, label, nd in _HEADLINES:
        out.append(f"| {label} | " + " | ".join(fmt(s["domains"][d][key], nd) for d in doms) + " |")
    out.append(
        "| label grades (good / fixable / unusable) | "
        + " | ".join(
            "{good} / {fixable} / {unusable}".format(**s["domains"][d]["grade_counts"]) for d in doms
        )
        + " |\n"
    )
    dc = s["checks"]["domains"]
    if not dc["checked"]:
        out.append("- Domain check: one named domain only, nothing to compare its looks with.\n")
    elif dc["mismatches"]:
        for m in dc["mismatches"]:
            out.append(
                f"- **{m['name']}** is named {m['named']} but looks {m['looks_like']} ({m['evidence']})."
            )
        out.append("")
    else:
        out.append(
            f"- Domain check: every tile looks like the domain its name gives (features "
            f"{', '.join(dc['features_used'])}).\n"
        )
    return out


def _density(s: dict) -> list[str]:
    out = ["## Density\n"]
    for d, h in s["domains"].items():
        b = h["density_bins"]
        held = ", ".join(f"{label}: {n}" for label, n in zip(b["labels"], b["counts"]))
        out.append(
            f"- Density bins of the {d} tiles (beads per image), images in each: {held} "
            f"(all {h['n_images']} images)."
        )
    train = s["domains"].get(s["training_domain"], {})
    fit, per_image = train.get("dilution_fit"), train.get("dilution_fit_per_image")
    if fit:
        out.append(
            f"- {s['training_domain'].capitalize()} tiles, beads per MP vs dilution: log-log slope "
            f"{fmt(fit['slope'])} "
            f"(95 % CI {fmt(fit['slope_ci95'][0])} to {fmt(fit['slope_ci95'][1])}, R2 "
            f"{fmt(fit['r2'])}) fitted over {fit['n_frames']} source frames and "
            f"{fit['n_dilutions']} dilutions; ideal -1. Tiles of one frame overlap and are "
            "not independent, so the frame is the unit."
        )
    if per_image and per_image["slope_ci95"][0] is not None:  # no interval over two tiles
        out.append(
            f"- For comparison, over {per_image['n_points']} single tiles: slope "
            f"{fmt(per_image['slope'])} (CI {fmt(per_image['slope_ci95'][0])} to "
            f"{fmt(per_image['slope_ci95'][1])}, too narrow: it treats overlapping tiles as "
            "independent)."
        )
    out.append("")
    out.append(
        _table(
            s["per_dilution"],
            [
                ("dilution", "dilution"),
                ("domain", "domain"),
                ("n_source_frames", "frames"),
                ("n_images", "tiles"),
                ("beads_split_mean", "beads/tile", 0),
                ("objects_mean", "objects/tile", 0),
                ("beads_per_mp", "beads/MP", 0),
                ("foreground_fraction_mean", "fg fraction", 3),
            ],
        )
    )
    d = s["training_domain"]
    real_frames = [r for r in s["per_source_frame"] if r["domain"] == d]
    if real_frames:
        out.append(f"### Source frames of the {d} tiles\n")
        out.append(
            _table(
                real_frames,
                [
                    ("source_frame", "source frame"),
                    ("n_images", "tiles"),
                    ("beads_split_mean", "beads/tile", 0),
                    ("foreground_fraction_mean", "fg fraction", 3),
                    ("brightness_mean", "brightness", 1),
                    ("contrast_mean", "contrast", 1),
                    ("n_misregistered", "misregistered"),
                    ("n_missing_labels", "missing labels"),
                    ("n_unusable_labels", "unusable labels"),
                ],
            )
        )
    others = [r for r in s["per_source_frame"] if r["domain"] != d]
    if others:
        out.append(f"{len(others)} source frames of other domains; see per_image.csv.\n")
    return out


def _grades(s: dict) -> list[str]:
    out = [
        "## Label grades\n",
        "good: no finding; fixable: usable after an automatic fix or with a known caveat "
        "(shift, partial labels, soft mask, clumps drawn as blobs); unusable: the mask does not "
        "describe its image.\n",
    ]
    fits = s["checks"]["mask_fit"]
    out.append(
        f"- Mask fit: {len(fits['not_fitting'])} of {s['dataset_size']} masks fit their image's beads "
        f"worse than {fmt(fits['fit_ratio'])} times the median of their source frame (correlation "
        "of mask and bead evidence); each of those was searched against every image of the set."
    )
    for f in fits["not_fitting"]:
        where = (
            f"belongs to **{f['belongs_to']}** (correlation {fmt(f['belongs_fit'])} there)"
            if f["belongs_to"]
            else "no image of the set matches it"
        )
        out.append(
            f"  - {f['name']}: correlation {fmt(f['fit'])} vs {fmt(f['reference'])} "
            f"({f['reference_of']} median); {where}"
        )
    for sc in s["checks"]["mask_scale"]:
        out.append(
            f"- {sc['name']} was drawn at another scale: its mask fits best magnified "
            f"{fmt(sc['scale'])}x about the centre (correlation {fmt(sc['corr_unscaled'])} -> "
            f"{fmt(sc['corr_scaled'])}), {fmt(sc['corner_px'], 1)} px off at the corners."
        )
    for grade in ("unusable", "fixable"):
        rows = [g for g in s["label_grades"] if g["grade"] == grade]
        out.append(f"- {grade}: {len(rows)}")
        out += [f"  - {g['name']}: {'; '.join(g['reasons'])}" for g in rows]
    out.append("")
    return out


def _labels(s: dict) -> list[str]:
    ml, lq = s["checks"]["missing_labels"], s["checks"]["label_quality"]
    thr = _on_domains(ml["detector_threshold"], 1)
    med = _on_domains(ml["median_unlabelled_fraction"], 3)
    out = [
        "## Partial masks (missing labels)\n",
        "- Bead candidates: local maxima of background-subtracted darkness of at least this "
        f"many noise SDs: {thr} (half the median evidence of the domain's labelled beads, at least "
        f"{fmt(s['settings']['detector_floor'], 0)}; in an image with three or more labelled "
        "objects, at least half the median evidence of those) with no mask within "
        f"{s['settings']['label_tolerance_px']} px.",
        f"- Median unlabelled fraction per image: {med}. Images at or above "
        f"{fmt(ml['max_fraction'])} (and with >= {ml['min_count']} candidates): "
        f"{_names(ml['flagged']) if ml['flagged'] else 'none'}.",
        f"- Not counted: {ml['faint_candidates_total']} faint unlabelled candidates in "
        f"{ml['images_with_faint_candidates']} images, above the domain threshold but below half "
        "the evidence of the beads labelled in the same image (out-of-focus beads or specks; "
        "the annotators did not label them). Candidates are matched to a misregistered mask "
        "at its best shift.\n",
    ]
    if s.get("_figures"):
        out.append("![samples](sample_images.png)\n")
    specks = _on_domains(lq["speck_area_px"], 1, " px")
    out += [
        "## Object sizes\n",
        f"- Specks (objects below {specks}): {lq['total_specks']} in "
        f"{len(lq['images_with_specks'])} images. Objects cut by the image border: "
        f"{lq['border_objects_total']} ({fmt(100 * lq['border_object_fraction'], 1)} % of "
        "objects).",
        f"- Soft masks (thresholded at half max): {len(lq['soft_masks'])}; empty masks: "
        f"{len(lq['empty_masks'])}; inverted masks (beads 0, background 255): "
        f"{_names(lq.get('inverted_masks', []))}; masks covering the whole image: "
        f"{_names(lq.get('whole_image_masks', []))}.\n",
    ]
    return out


def _consistency(s: dict) -> list[str]:
    rg, ag = s["checks"]["registration"], s["checks"]["overlap_agreement"]
    st = s["settings"]
    out = [
        "## Annotation consistency\n",
        f"- Mask registration (FFT cross-correlation, shifts up to "
        f"{st['registration_radius_px']} px): {rg['n_flagged']} masks fit their beads clearly "
        f"better shifted (>= {st['registration_min_shift_px']} px and >= "
        f"{fmt(100 * st['registration_min_gain'], 0)} % more bead evidence under the mask); the "
        f"largest best shift is {fmt(rg['max_shift_px'], 1)} px"
        + ("; real tiles first:" if rg["flagged"] else "."),
    ]
    for f in rg["flagged"]:
        out.append(
            f"  - {f['name']} ({f['domain']}): dy={f['dy']}, dx={f['dx']}, fit "
            f"{fmt(f['fit_zero'])} -> {fmt(f['fit_best'])} ({gain_text(f['gain'])})"
        )
    if ag["overlapping_pairs"]:
        out.append(
            f"- Overlapping tiles: {ag['overlapping_pairs']} of {ag['neighbour_pairs']} "
            f"grid neighbour pairs share a strip ({', '.join(map(str, ag['overlap_px']))} "
            f"px, found by image matching). Their masks agree on the shared pixels at mean "
            f"IoU {fmt(ag['mean_iou'])} (median {fmt(ag['median_iou'])}, {fmt(ag['min_iou'])}"
            f"-{fmt(ag['max_iou'])}; {fmt(ag['mean_iou_nonempty'])} without the "
            f"{ag['n_empty_pairs']} strips where neither mask has a bead): pixel IoU of any "
            "model against these masks is capped near that level."
        )
    elif ag["neighbour_pairs"]:
        out.append(
            f"- Overlapping tiles: none of the {ag['neighbour_pairs']} pairs of grid neighbours "
            "share a strip."
        )
    else:
        out.append(
            "- Overlapping tiles: no two tiles are grid neighbours (names ending _grid_r<row>_c<col> "
            "of one source frame), so there is nothing to compare."
        )
    if s.get("_figures"):
        out.append("\n![registration](registration.png)\n")
    lk = s["checks"]["leakage"]
    out += [
        "## Leakage\n",
        f"- {lk['n_groups']} group{'s' * (lk['n_groups'] != 1)} of images must each stay on one "
        "side of a split (source "
        "frames, overlapping strips and duplicates joined); groups equal source frames: "
        f"{'yes' if lk['groups_equal_source_frames'] else 'no'}.",
    ]
    out += [f"  - {d['kind']} content: {', '.join(d['images'])}" for d in lk["duplicates"]]
    out += [f"  - group spanning frames {', '.join(g['source_frames'])}" for g in lk["cross_frame_groups"]]
    out.append("")
    return out


def _closing(s: dict) -> list[str]:
    out = []
    if "reference" in s:
        out += ["## Comparison with the reference\n", f"Reference: {s['reference']['reference']}\n"]
        out += [f"- {r['sentence']}" for r in s["reference"]["comparisons"]] + [""]
    out.append("## Findings\n")
    for d, h in s["domains"].items():
        g = h["grade_counts"]
        out.append(
            f"- {d} tiles: {h['n_images']} images from {h['n_source_frames']} source frames, "
            f"{fmt(h['mean_beads_per_image'], 0)} beads per image on average, foreground "
            f"{fmt(h['mean_foreground_fraction'], 3)}; labels {g['good']} good, "
            f"{g['fixable']} fixable, {g['unusable']} unusable."
        )
    out += ["", "## Recommendations\n"]
    out += [
        f"- **{r['id']}** ({r['domain']}): {r['text']} *(measured: {_md(r['measurement'])})*"
        for r in s["recommendations"]
    ]
    out.append("")
    return out


def render_report(s: dict, figures: bool = True) -> str:
    """Render the summary dict (summary.json) as Markdown; ``figures`` links the PNGs."""
    s = {**s, "_figures": figures}
    fmt = s["image_format"]
    counts = ", ".join(f"{h['n_images']} {d}" for d, h in s["domains"].items())
    out = [
        f"# Dataset report: {s['data']}\n",
        f"{s['dataset_size']} image/mask pairs ({counts}); sizes "
        f"{', '.join(fmt['image_sizes'])}; formats {', '.join(fmt['formats'])}; bit depths "
        f"{', '.join(map(str, fmt['bit_depths']))}. All measured at native resolution; "
        f"training advice is drawn from the {s['training_domain']} tiles.\n",
    ]
    if figures:
        out.append("![distributions](distribution_analysis.png)\n")
    for section in (_headlines, _density, _grades, _labels, _consistency, _closing):
        out += section(s)
    return "\n".join(out)
