"""report.md: the dataset doctor's readable report; every number in it comes from the summary."""

from __future__ import annotations


def _f(v, digits=2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(c[1] for c in cols) + " |\n"
    sep = "|" + "|".join("---" for _ in cols) + "|\n"
    body = "".join("| " + " | ".join(_f(r.get(c[0])) for c in cols) + " |\n" for r in rows)
    return head + sep + body


def render_report(s: dict) -> str:
    """Render the summary dict as Markdown."""
    o = s["overall"]
    c = s["checks"]
    ml, lk, lq, rg, ag = (c["missing_labels"], c["leakage"], c["label_quality"],
                          c["registration"], c["overlap_agreement"])
    fit = (s.get("dilution_fit") or {}).get("beads_split")
    fit_obj = (s.get("dilution_fit") or {}).get("objects")
    out = []
    w = out.append
    w(f"# Dataset report: {s['data']}\n")
    w(f"{o['n_images']} image/mask pairs ({o['n_real']} named like real tiles, "
      f"{o['n_synthetic']} synthetic) from {o['n_source_frames']} source frames; sizes "
      f"{', '.join(o['image_sizes'])}; formats {', '.join(o['formats'])}; bit depths "
      f"{', '.join(map(str, o['bit_depths']))}. All measured at native resolution.\n")
    w("![distributions](distribution_analysis.png)\n")

    w("## Density\n")
    w(f"- Beads per image (touching beads split by watershed): mean {_f(o['mean_beads_per_image'], 1)}; "
      f"real tiles mean {_f(o['real_mean_beads_per_image'], 1)}, range "
      f"{o['real_min_beads_per_image']}-{o['real_max_beads_per_image']}.")
    w(f"- Connected mask objects per image (a clump counts once): mean "
      f"{_f(o['mean_objects_per_image'], 1)}; real tiles {_f(o['real_mean_objects_per_image'], 1)}.")
    w(f"- Area-based estimate (area / single-bead area of {_f(o['single_bead_area_px'], 1)} px): "
      f"mean {_f(o['mean_beads_area_estimate'], 1)} beads per image.")
    b = s["density_bins"]
    w(f"- Density bins (beads per image) {', '.join(b['labels'])} hold {b['counts']} images: "
      f"{sum(b['counts'])} of {o['n_images']}, none dropped.")
    if fit:
        w(f"- Beads per MP vs dilution, log-log slope {_f(fit['slope'])} (95 % CI "
          f"{_f(fit['slope_ci95'][0])} to {_f(fit['slope_ci95'][1])}, R2 {_f(fit['r2'])}, "
          f"{fit['n_points']} images, {fit['n_dilutions']} dilutions); ideal -1.")
    if fit_obj:
        w(f"- Counting connected objects instead gives slope {_f(fit_obj['slope'])} (clumps at "
          "low dilution count once).")
    w("")
    if s["per_dilution"]:
        w(_table(s["per_dilution"], [("dilution", "dilution"), ("n_source_frames", "frames"),
                                     ("n_images", "tiles"), ("beads_split_mean", "beads/tile"),
                                     ("objects_mean", "objects/tile"),
                                     ("beads_per_mp", "beads/MP"),
                                     ("foreground_fraction_mean", "fg fraction")]))
    w("### Per source frame\n")
    w(_table(s["per_source_frame"], [("source_frame", "source frame"), ("n_images", "tiles"),
                                     ("beads_split_mean", "beads/tile"),
                                     ("foreground_fraction_mean", "fg fraction"),
                                     ("brightness_mean", "brightness"),
                                     ("contrast_mean", "contrast"),
                                     ("misregistered", "misregistered"),
                                     ("missing_labels", "missing labels")]))

    w("## Class balance\n")
    w(f"- Mean foreground fraction {_f(o['mean_foreground_fraction'], 4)} "
      f"({_f(100 * o['mean_foreground_fraction'], 1)} % of pixels are bead); real tiles "
      f"{_f(o['real_mean_foreground_fraction'], 4)}.\n")

    w("## Partial masks (missing labels)\n")
    w(f"- Bead candidates: local maxima of background-subtracted darkness at least "
      f"{_f(ml['detector_threshold'], 1)} noise SDs (half the median evidence of the labelled "
      "beads of this set, at least 5) with no mask within "
      f"{s['settings']['label_tolerance_px']} px.")
    w(f"- Median unlabelled fraction per image {_f(ml['median_unlabelled_fraction'], 3)}; "
      f"{len(ml['flagged'])} images at or above {_f(ml['max_fraction'])} "
      f"(and >= {ml['min_count']} candidates): {', '.join(ml['flagged']) or 'none'}.\n")
    w("![samples](sample_images.png)\n")

    w("## Object sizes\n")
    w(f"- Median object area {_f(o['median_object_area_px'], 1)} px, mean "
      f"{_f(o['mean_object_area_px'], 1)} px; median equivalent diameter "
      f"{_f(o['median_equivalent_diameter_px'], 1)} px.")
    w(f"- Specks below {_f(lq['speck_area_px'], 1)} px: {lq['total_specks']} in "
      f"{len(lq['images_with_specks'])} images. Objects cut by the image border: "
      f"{lq['border_objects_total']} ({_f(100 * lq['border_object_fraction'], 1)} % of objects).")
    w(f"- Soft masks (thresholded at half max): {len(lq['soft_masks'])}; empty masks: "
      f"{len(lq['empty_masks'])}.\n")

    w("## Image quality\n")
    w(f"- Brightness (mean grey, 0-255) averages {_f(o['mean_brightness'], 1)}; contrast (grey "
      f"SD) {_f(o['mean_contrast'], 1)}; bead contrast ((background - bead) / background) "
      f"{_f(o['mean_bead_contrast'], 3)}.\n")

    w("## Annotation consistency\n")
    w(f"- Mask registration: {rg['n_flagged']} masks fit their beads clearly better shifted "
      f"(>= {s['settings']['registration_min_shift_px']} px and >= "
      f"{_f(100 * s['settings']['registration_min_gain'], 0)} % more bead evidence under the mask); "
      f"{rg['n_shift_ge_2px']} images have a best shift of 2 px or more; the largest is "
      f"{_f(rg['max_shift_px'], 1)} px.")
    for f in rg["flagged"]:
        w(f"  - {f['name']}: dy={f['dy']}, dx={f['dx']}, fit {_f(f['fit_zero'])} -> "
          f"{_f(f['fit_best'])} (+{_f(100 * f['gain'], 0)} %)")
    if ag["overlapping_pairs"]:
        w(f"- Overlapping tiles: {ag['overlapping_pairs']} of {ag['neighbour_pairs']} grid "
          f"neighbour pairs share a strip ({', '.join(map(str, ag['overlap_px']))} px, found by "
          f"image matching). Their masks agree on the shared pixels at mean IoU "
          f"{_f(ag['mean_iou'])} (median {_f(ag['median_iou'])}, {_f(ag['min_iou'])}-"
          f"{_f(ag['max_iou'])}; {_f(ag['mean_iou_nonempty'])} without the "
          f"{ag['n_empty_pairs']} strips where neither mask has a bead): pixel IoU of any model "
          "against these masks is capped near that level.")
    else:
        w(f"- Overlapping tiles: none of {ag['neighbour_pairs']} grid neighbour pairs share a "
          "strip.")
    w("\n![registration](registration.png)\n")

    w("## Leakage\n")
    w(f"- {lk['n_groups']} groups of images must stay on one side of a split "
      f"(source frames, overlapping strips and duplicates joined); groups equal source frames: "
      f"{'yes' if lk['groups_equal_source_frames'] else 'no'}.")
    for d in lk["duplicates"]:
        w(f"  - {d['kind']} content: {', '.join(d['images'])}")
    for g in lk["cross_frame_groups"]:
        w(f"  - group spanning frames {', '.join(g['source_frames'])}")
    w("")

    if "reference" in s:
        w("## Comparison with the reference\n")
        w(f"Reference: {s['reference']['reference']}\n")
        for r in s["reference"]["comparisons"]:
            w(f"- {r['sentence']}")
        w("")

    w("## Findings\n")
    w(f"- {o['n_images']} images; {_f(o['real_mean_beads_per_image'], 1)} beads per real tile on "
      f"average at native resolution; {_f(100 * o['mean_foreground_fraction'], 1)} % foreground.")
    w(f"- {len(ml['flagged'])} images with missing labels, {rg['n_flagged']} misregistered "
      f"masks, label agreement on shared strips {_f(ag['mean_iou'])} mean IoU.\n")

    w("## Recommendations\n")
    for r in s["recommendations"]:
        w(f"- **{r['id']}**: {r['text']} *(measured: {r['measurement']})*")
    w("")
    return "\n".join(out)
