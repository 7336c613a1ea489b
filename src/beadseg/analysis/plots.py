"""Figures of the dataset doctor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_pair
from ..plots import pyplot as _plt
from ..plots import save_figure


def plot_distributions(summary: dict, rows: list[dict], path: Path) -> None:
    """distribution_analysis.png: foreground fraction, beads per image, bead size,
    brightness vs contrast, beads per MP vs dilution (log-log), overlap agreement."""
    plt = _plt()
    fig, ax = plt.subplots(2, 3, figsize=(15, 9))
    fg = [r["foreground_fraction"] for r in rows]
    ax[0, 0].hist(fg, bins=30, color="tab:blue")
    ax[0, 0].set(title="Foreground fraction per image", xlabel="mask pixels / pixels",
                 ylabel="images")
    counts = np.array([r["beads_split"] for r in rows], float)
    bins = np.geomspace(1, max(counts.max(initial=1), 2) * 1.1, 25)
    ax[0, 1].hist(np.maximum(counts, 1), bins=bins, color="tab:green")
    ax[0, 1].set_xscale("log")
    for e in summary["density_bins"]["edges"][1:-1]:
        ax[0, 1].axvline(max(float(e), 1), color="k", ls="--", lw=0.8)
    ax[0, 1].set(title="Beads per image (watershed split; dashed: density bins)",
                 xlabel="beads", ylabel="images")
    areas = np.concatenate([r["_areas"] for r in rows] + [np.zeros(0)])
    if len(areas):
        ax[0, 2].hist(areas, bins=np.arange(0, min(areas.max(), 400) + 5, 4), color="tab:orange")
        ax[0, 2].axvline(summary["overall"]["median_object_area_px"], color="k", ls="--")
    ax[0, 2].set_yscale("log")
    ax[0, 2].set(title=f"Object area (median {summary['overall']['median_object_area_px']:.0f} px)",
                 xlabel="area (px)", ylabel="objects")
    dil = np.array([r["dilution"] or np.nan for r in rows], float)
    colour = {"c": np.log10(dil), "cmap": "viridis"} if np.isfinite(dil).any() else {}
    sc = ax[1, 0].scatter([r["brightness"] for r in rows], [r["contrast"] for r in rows], s=18,
                          **colour)
    if np.isfinite(dil).any():
        fig.colorbar(sc, ax=ax[1, 0], label="log10 dilution")
    ax[1, 0].set(title="Brightness vs contrast", xlabel="mean grey (0-255)",
                 ylabel="grey SD (0-255)")
    fit = (summary.get("dilution_fit") or {}).get("beads_split")
    ok = np.isfinite(dil) & (counts > 0)
    if ok.any():
        mp = np.array([r["height"] * r["width"] / 1e6 for r in rows])
        ax[1, 1].loglog(dil[ok], counts[ok] / mp[ok], "o", ms=4, alpha=0.7, label="images")
        if fit:
            xs = np.geomspace(np.nanmin(dil[ok]), np.nanmax(dil[ok]), 20)
            ax[1, 1].loglog(xs, 10 ** (fit["intercept"] + fit["slope"] * np.log10(xs)), "k-",
                            label=f"fit slope {fit['slope']:.2f} (R2 {fit['r2']:.2f})")
        ax[1, 1].legend()
        ax[1, 1].set(title="Beads per MP vs dilution", xlabel="dilution", ylabel="beads / MP")
    else:
        ax[1, 1].text(0.5, 0.5, "no dilution in the file names", ha="center",
                      transform=ax[1, 1].transAxes)
        ax[1, 1].set_axis_off()
    agree = summary["checks"]["overlap_agreement"]
    ious = [p["mask_iou"] for p in agree["pairs"] if p["overlap_px"]]
    if ious:
        ax[1, 2].hist(ious, bins=np.linspace(0, 1, 21), color="tab:red")
        ax[1, 2].set(title=f"Mask agreement on shared strips (mean IoU {np.mean(ious):.2f})",
                     xlabel="IoU of neighbouring tiles' masks", ylabel="tile pairs")
    else:
        shifts = [r["registration_shift_px"] for r in rows]
        ax[1, 2].hist(shifts, bins=np.arange(0, max(shifts, default=1) + 1.5, 0.5))
        ax[1, 2].set(title="Best mask shift per image", xlabel="px", ylabel="images")
    fig.tight_layout()
    save_figure(fig, path)


def _outline(mask: np.ndarray) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    return find_boundaries(mask, mode="inner")


def plot_samples(summary: dict, rows: list[dict], pairs, path: Path, n: int = 6) -> None:
    """sample_images.png: images spanning the density range, mask outlines (yellow) and
    bead candidates without a mask (red circles)."""
    plt = _plt()
    order = np.argsort([r["beads_split"] for r in rows], kind="stable")
    pick = sorted({int(order[int(round(q))]) for q in np.linspace(0, len(rows) - 1, min(n, len(rows)))})
    by_name = {p.name: p for p in pairs}
    thr = summary["checks"]["missing_labels"]["detector_threshold"]
    cols = 3
    nrows = int(np.ceil(len(pick) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(15, 5 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, i in zip(axes.ravel(), pick):
        r = rows[i]
        image, info = read_pair(by_name[r["name"]])
        rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
        shown = rgb.copy()
        shown[_outline(info.mask)] = (1.0, 0.9, 0.0)
        ax.imshow(shown, interpolation="nearest")
        miss = (r["_peak_values"] >= thr) & r["_peak_unlabelled"]
        rc = r["_peak_rc"][miss]
        if len(rc):
            ax.scatter(rc[:, 1], rc[:, 0], s=60, facecolors="none", edgecolors="red", lw=1)
        ax.set_title(f"{r['name'][:40]}\n{r['beads_split']} beads, fg {r['foreground_fraction']:.3f}, "
                     f"{int(miss.sum())} unlabelled candidates", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_registration(summary: dict, pairs, path: Path, n: int = 4, crop: int = 128) -> None:
    """registration.png: the worst misregistered masks, outline at (0,0) (red) and at the best
    shift (green), on the densest crop of each image."""
    from ..registration import shift_mask

    plt = _plt()
    flagged = summary["checks"]["registration"]["flagged"][:n]
    by_name = {p.name: p for p in pairs}
    if not flagged:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no misregistered masks found", ha="center", va="center")
        ax.set_axis_off()
        save_figure(fig, path)
        return
    fig, axes = plt.subplots(len(flagged), 2, figsize=(8, 4 * len(flagged)), squeeze=False)
    for row_axes, f in zip(axes, flagged):
        image, info = read_pair(by_name[f["name"]])
        from scipy import ndimage as ndi

        dens = ndi.uniform_filter(info.mask.astype(np.float32), crop)
        cy, cx = np.unravel_index(np.argmax(dens), dens.shape)
        y0 = int(np.clip(cy - crop // 2, 0, max(image.shape[0] - crop, 0)))
        x0 = int(np.clip(cx - crop // 2, 0, max(image.shape[1] - crop, 0)))
        sl = (slice(y0, y0 + crop), slice(x0, x0 + crop))
        rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
        for ax, m, colour, label in (
            (row_axes[0], info.mask, (1, 0, 0), "mask as given (0, 0)"),
            (row_axes[1], shift_mask(info.mask, f["dy"], f["dx"]), (0, 1, 0),
             f"shifted by dy={f['dy']}, dx={f['dx']}"),
        ):
            shown = rgb[sl].copy()
            shown[_outline(m[sl])] = colour
            ax.imshow(shown, interpolation="nearest")
            ax.set_title(f"{f['name'][:36]}\n{label}", fontsize=8)
            ax.set_axis_off()
    fig.tight_layout()
    save_figure(fig, path)
