"""Recommendations, each printed with the measurement that triggered it.

Training advice (split, crop size, loss, augmentation) comes from the training domain (the real
tiles when there are any); the other domain gets its own notes.
"""

from __future__ import annotations

import math

import numpy as np

from .domains import REAL, SYNTHETIC


def _rec(rid: str, domain: str, text: str, measurement: str) -> dict:
    return {"id": rid, "domain": domain, "text": text, "measurement": measurement}


def _tiles(n: int) -> str:
    return f"{n} tile" if n == 1 else f"{n} tiles"


def _overlap_text(agree: dict) -> str:
    """How many neighbouring tile pairs share a strip, and how wide, as a sentence part."""
    n = agree["overlapping_pairs"]
    if not n:
        return "no neighbouring tiles share a strip"
    widths = ", ".join(map(str, agree["overlap_px"]))
    return f"{n} neighbouring tile pair{'s' * (n != 1)} share a strip of {widths} px"


def _split(s: dict, d: str) -> list[dict]:
    leak = s["checks"]["leakage"]
    agree = s["checks"]["overlap_agreement"]
    frames = sum(h["n_source_frames"] for h in s["domains"].values())
    bins = s["domains"][d]["density_bins"]
    largest = leak["groups"][0]["size"] if leak["groups"] else 0
    return [
        _rec(
            "grouped_split",
            "all",
            f"Split train/validation by source frame ({frames} frames, {leak['n_groups']} leakage "
            "groups), never by tile: use `beadseg train` (grouped by default) or `--folds K`.",
            _overlap_text(agree) + f"; the largest group holds {_tiles(largest)}",
        ),
        _rec(
            "stratify",
            d,
            f"Stratify the split by beads per image with the {d} tiles' bins (every image falls in one).",
            f"{d} tiles per bin of beads per image: "
            + ", ".join(f"{label}: {n}" for label, n in zip(bins["labels"], bins["counts"])),
        ),
    ]


def _training(s: dict, d: str) -> list[dict]:
    h = s["domains"][d]
    diam, dens, fg = (
        h["median_equivalent_diameter_px"],
        h["median_beads_per_mp"],
        h["mean_foreground_fraction"],
    )
    side = math.sqrt(10 / (dens / 1e6)) if dens > 0 else 256  # a median crop holds ~10 beads
    crop = int(np.clip(32 * round(max(side, 16 * max(diam, 1)) / 32), 96, h["min_side_px"]))
    out = [
        _rec(
            "crop_size",
            d,
            f"Train on {crop}x{crop} crops at native resolution (data.crop_size={crop}); "
            "oversample crops centred on beads (data.bead_crop_fraction).",
            f"{d} tiles: median bead diameter {diam:.1f} px, median density {dens:.0f} "
            f"beads/MP (~{dens * crop * crop / 1e6:.0f} beads per crop)",
        )
    ]
    if fg < 0.1:
        out.append(
            _rec(
                "loss",
                d,
                "Use BCE+Dice (default) or Tversky: plain BCE is dominated by "
                "background at this foreground fraction and drifts to all-background.",
                f"{d} tiles: mean foreground fraction {fg:.3f} ({fg * 100:.1f} % of pixels)",
            )
        )
    else:
        out.append(
            _rec(
                "loss",
                d,
                "BCE+Dice (default) suits this class balance.",
                f"{d} tiles: mean foreground fraction {fg:.3f}",
            )
        )
    if diam < 10:
        out.append(
            _rec(
                "no_resize",
                d,
                "Do not resize images or masks: work at native resolution "
                "(beadseg never interpolates masks).",
                f"median bead diameter {diam:.1f} px; at half size {diam / 2:.1f} px",
            )
        )
    lo, hi = h["frame_brightness_range"]
    if h["n_source_frames"] > 1:
        out.append(
            _rec(
                "augmentation",
                d,
                f"Augment brightness by +-{min((hi - lo) / 2 / 255, 0.5):.2f} "
                "(augment.brightness) and contrast, so frames of other exposure look "
                "familiar; geometric flips/rotations are safe for round beads.",
                f"{d} frames' mean brightness spans {lo:.0f}-{hi:.0f} grey levels",
            )
        )
    out.append(
        _rec(
            "learning_rate",
            d,
            "Choose the learning rate with `beadseg lr-find` on this "
            "data rather than a formula (with a per-pixel-mean loss the gradient does not "
            "scale with bead count).",
            f"{h['mean_beads_per_image']:.0f} beads per {d} tile do not set the rate",
        )
    )
    return out


def _labels(s: dict) -> list[dict]:
    out = []
    fits = s["checks"]["mask_fit"]
    for f in fits["not_fitting"]:
        if f["belongs_to"]:
            out.append(
                _rec(
                    "misfiled_mask",
                    "all",
                    f"The mask of {f['name']} was drawn for {f['belongs_to']}: file it "
                    f"under that image (or drop it); until then it is graded unusable.",
                    f"correlation with {f['belongs_to']}'s beads {f['belongs_fit']:.2f}, "
                    f"with its own image's {f['own_fit_small']:.2f}",
                )
            )
        else:
            out.append(
                _rec(
                    "poor_fit",
                    "all",
                    f"Check the mask of {f['name']}: it fits its image far worse than its "
                    "neighbours' masks fit theirs, and no image of the set matches it.",
                    f"correlation {f['fit']:.2f} vs {f['reference']:.2f} (median of its {f['reference_of']})",
                )
            )
    scaled = s["checks"]["mask_scale"]
    if scaled:
        out.append(
            _rec(
                "scaled_masks",
                "all",
                "Redraw (or rescale) the masks drawn at another scale than their image, "
                "e.g. on a resized copy; re-registering them by a shift only helps near "
                "the centre.",
                "; ".join(
                    f"{x['name']} {x['scale']:.2f}x ({x['corner_px']:.0f} px at the corners)" for x in scaled
                ),
            )
        )
    unusable = [g for g in s["label_grades"] if g["grade"] == "unusable"]
    if unusable:
        out.append(
            _rec(
                "unusable_labels",
                "all",
                "Leave the unusable labels out of training and evaluation (`beadseg "
                "train` does so by default; data.use_all_labels=true keeps them).",
                f"{len(unusable)} unusable: "
                + "; ".join(f"{g['name']} ({g['reasons'][0]})" for g in unusable[:4]),
            )
        )
    ml = s["checks"]["missing_labels"]
    if ml["flagged"]:
        out.append(
            _rec(
                "missing_labels",
                "all",
                "Review the masks of images with many unlabelled bead candidates (marked "
                "in sample_images.png); unlabelled beads teach the model to miss beads.",
                f"{len(ml['flagged'])} images with >= {ml['max_fraction']:.0%} "
                f"unlabelled candidates: {', '.join(ml['flagged'][:5])}",
            )
        )
    return out


def _registration(s: dict) -> list[dict]:
    out = []
    flagged = s["checks"]["registration"]["flagged"]
    for d in (REAL, SYNTHETIC):
        mine = [f for f in flagged if f["domain"] == d]
        if mine:
            shifts = sorted({(f["dy"], f["dx"]) for f in mine})
            out.append(
                _rec(
                    "fix_masks",
                    d,
                    f"Re-register the shifted {d} masks: `beadseg fix-masks DATA --out "
                    "FIXED`, or train with data.align_masks=true; judge models with the "
                    "shift-tolerant metrics of `beadseg evaluate`.",
                    f"{len(mine)} {d} masks fit their beads clearly better shifted "
                    f"(shifts {', '.join(f'{a},{b}' for a, b in shifts[:6])})",
                )
            )
    return out


def _domains(s: dict) -> list[dict]:
    out = []
    doms = s["domains"]
    if REAL in doms and SYNTHETIC in doms:
        r, y = doms[REAL], doms[SYNTHETIC]
        out.append(
            _rec(
                "separate_domains",
                SYNTHETIC,
                "Keep the synthetic tiles a separate domain: report their scores apart "
                "from the real ones and do not let them set thresholds or density bins "
                "for real data.",
                f"synthetic {y['mean_beads_per_image']:.0f} beads/image, foreground "
                f"{y['mean_foreground_fraction']:.3f}; real {r['mean_beads_per_image']:.0f}, "
                f"{r['mean_foreground_fraction']:.3f}",
            )
        )
    for m in s["checks"]["domains"]["mismatches"]:
        out.append(
            _rec(
                "domain_mismatch",
                m["named"],
                f"{m['name']} is named {m['named']} but looks {m['looks_like']}: rename "
                "it or check where it came from.",
                m["evidence"],
            )
        )
    return out


def _other(s: dict) -> list[dict]:
    out = []
    agree = s["checks"]["overlap_agreement"]
    if agree["overlapping_pairs"]:
        out.append(
            _rec(
                "label_agreement",
                REAL,
                "Do not expect pixel IoU against these masks above the annotators' own "
                "agreement; compare models by centroid-matched object F1 and count error.",
                f"masks of the same pixels agree at mean IoU {agree['mean_iou']:.2f} over "
                f"{agree['overlapping_pairs']} overlapping pairs",
            )
        )
    lq = s["checks"]["label_quality"]
    if lq["soft_masks"]:
        out.append(
            _rec(
                "soft_masks",
                "all",
                "Soft masks were thresholded at half their maximum; evaluate them separately.",
                f"{len(lq['soft_masks'])} soft masks",
            )
        )
    if lq["total_specks"]:
        px = max(lq["speck_area_px"].values())
        out.append(
            _rec(
                "specks",
                "all",
                f"Remove mask specks below {px:.0f} px or set instances.min_area_px so "
                "predictions and truth are counted alike.",
                f"{lq['total_specks']} specks in {len(lq['images_with_specks'])} images",
            )
        )
    train = s["training_domain"]
    fit = s["domains"].get(train, {}).get("dilution_fit")
    if fit and not (np.isfinite(fit["slope_ci95"][0]) and np.isfinite(fit["slope_ci95"][1])):
        out.append(
            _rec(
                "dilution",
                train,
                "Too few source frames to test the dilution series: a slope over "
                f"{fit['n_frames']} frames has no confidence interval; add frames of more dilutions.",
                f"slope {fit['slope']:.2f} over {fit['n_frames']} source frames",
            )
        )
    elif fit:
        lo, hi = fit["slope_ci95"]
        ok = lo <= -1 <= hi
        out.append(
            _rec(
                "dilution",
                train,
                "Density follows the dilution series (slope -1 inside the interval)."
                if ok
                else "Density does not follow the dilution series as -1: check the counts "
                "of the extreme dilutions (clumps at low, missing labels at high).",
                f"slope {fit['slope']:.2f} (95 % CI {lo:.2f} to {hi:.2f}) over "
                f"{fit['n_frames']} source frames",
            )
        )
    return out


def recommend(summary: dict) -> list[dict]:
    """The recommendation list of a summary (see :func:`~beadseg.analysis.analyze_dataset`)."""
    d = summary["training_domain"]
    return (
        _split(summary, d)
        + _training(summary, d)
        + _labels(summary)
        + _registration(summary)
        + _domains(summary)
        + _other(summary)
    )
