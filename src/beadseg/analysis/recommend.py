"""Recommendations, each printed with the measurement that triggered it."""

from __future__ import annotations

import math

import numpy as np


def _rec(rid: str, text: str, measurement: str) -> dict:
    return {"id": rid, "text": text, "measurement": measurement}


def recommend(summary: dict, rows: list[dict]) -> list[dict]:
    """Build the recommendation list from a summary (see :func:`analyze_dataset`)."""
    recs = []
    ov = summary["overall"]
    leak = summary["checks"]["leakage"]
    frames = summary["per_source_frame"]
    n_frames = len(frames)
    recs.append(_rec(
        "grouped_split",
        f"Split train/validation by source frame ({n_frames} frames, "
        f"{leak['n_groups']} leakage groups), never by tile: use `beadseg train` (grouped by "
        "default) or `--folds K` for cross-validation.",
        f"{summary['checks']['overlap_agreement']['overlapping_pairs']} neighbouring tile pairs "
        f"share a strip of {summary['checks']['overlap_agreement']['overlap_px'] or 'no'} px; "
        f"largest group {leak['groups'][0]['size'] if leak['groups'] else 0} tiles",
    ))
    bins = summary["density_bins"]
    recs.append(_rec(
        "stratify",
        "Stratify the split by beads per image with these bins (every image falls in one).",
        f"edges {bins['edges']} hold {bins['counts']} images",
    ))
    d = ov["median_equivalent_diameter_px"]
    dens = ov["median_beads_per_mp"]
    if dens > 0:
        side = math.sqrt(10 / (dens / 1e6))  # px so that a median crop holds ~10 beads
    else:
        side = 256
    crop = int(np.clip(32 * round(max(side, 16 * max(d, 1)) / 32), 96, ov["min_side_px"]))
    recs.append(_rec(
        "crop_size",
        f"Train on {crop}x{crop} crops at native resolution (data.crop_size={crop}); "
        "oversample crops centred on beads (data.bead_crop_fraction).",
        f"median bead diameter {d:.1f} px, median density {dens:.0f} beads/MP "
        f"(~{dens * crop * crop / 1e6:.0f} beads per crop)",
    ))
    fg = ov["mean_foreground_fraction"]
    if fg < 0.1:
        recs.append(_rec(
            "loss",
            "Use BCE+Dice (default) or Tversky: plain BCE is dominated by background at this "
            "foreground fraction and drifts to all-background.",
            f"mean foreground fraction {fg:.3f} ({fg * 100:.1f} % of pixels)",
        ))
    else:
        recs.append(_rec("loss", "BCE+Dice (default) suits this class balance.",
                         f"mean foreground fraction {fg:.3f}"))
    if d < 10:
        recs.append(_rec(
            "no_resize",
            "Do not resize images or masks: work at native resolution (beadseg never "
            "interpolates masks).",
            f"median bead diameter {d:.1f} px; at half size beads would be {d / 2:.1f} px",
        ))
    bright = [f["brightness_mean"] for f in frames]
    if len(bright) > 1:
        spread = max(bright) - min(bright)
        recs.append(_rec(
            "augmentation",
            f"Augment brightness by +-{min(spread / 2 / 255, 0.5):.2f} (augment.brightness) and "
            "contrast, so frames of other exposure look familiar; geometric flips/rotations are "
            "safe for round beads.",
            f"frame mean brightness spans {min(bright):.0f}-{max(bright):.0f} grey levels "
            f"(spread {spread:.0f})",
        ))
    recs.append(_rec(
        "learning_rate",
        "Choose the learning rate with `beadseg lr-find` on this data rather than a formula "
        "(with a per-pixel-mean loss the gradient does not scale with bead count).",
        f"mean {ov['mean_beads_per_image']:.0f} beads per image does not set the learning rate",
    ))
    ml = summary["checks"]["missing_labels"]
    if ml["flagged"]:
        recs.append(_rec(
            "missing_labels",
            "Review the masks of images with many unlabelled bead candidates (marked in "
            "sample_images.png); unlabelled beads teach the model to miss beads.",
            f"{len(ml['flagged'])} images with >= {ml['max_fraction']:.0%} unlabelled "
            f"candidates: {', '.join(ml['flagged'][:5])}",
        ))
    reg = summary["checks"]["registration"]
    if reg["n_flagged"]:
        recs.append(_rec(
            "fix_masks",
            "Re-register the shifted masks: `beadseg fix-masks DATA --out FIXED`, or train with "
            "data.align_masks=true; judge models with the shift-tolerant metrics of "
            "`beadseg evaluate`.",
            f"{reg['n_flagged']} masks fit their beads clearly better when shifted "
            f"(largest shift {reg['max_shift_px']:.1f} px)",
        ))
    agree = summary["checks"]["overlap_agreement"]
    if agree["overlapping_pairs"]:
        recs.append(_rec(
            "label_agreement",
            "Do not expect pixel IoU against these masks above the annotators' own agreement; "
            "compare models by object F1 with centroid matching and by count error.",
            f"masks of the same pixels agree at mean IoU {agree['mean_iou']:.2f} over "
            f"{agree['overlapping_pairs']} overlapping pairs (range {agree['min_iou']:.2f}-"
            f"{agree['max_iou']:.2f})",
        ))
    lq = summary["checks"]["label_quality"]
    if lq["soft_masks"]:
        recs.append(_rec(
            "soft_masks",
            "Soft masks were thresholded at half their maximum; keep them as a separate domain "
            "or evaluate them separately.",
            f"{len(lq['soft_masks'])} soft masks",
        ))
    if lq["total_specks"]:
        recs.append(_rec(
            "specks",
            f"Remove mask specks below {lq['speck_area_px']:.0f} px or set "
            "instances.min_area_px so predictions and truth are counted alike.",
            f"{lq['total_specks']} specks in {len(lq['images_with_specks'])} images",
        ))
    if lq["empty_masks"]:
        recs.append(_rec(
            "empty_masks",
            "Check the empty masks: an image without beads is fine, a forgotten mask is not.",
            f"{len(lq['empty_masks'])} empty masks: {', '.join(lq['empty_masks'][:5])}",
        ))
    return recs
