"""Figures shared by training, comparison and evaluation (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.files import atomic_path

#: figures of a report page: 10 inches at 100 dpi, 1000 px: no wider than the page's column
#: (:data:`beadseg.outputs.document.COLUMN_PX`), so a browser shows them at their own size and
#: matplotlib's 10-point text reads at 100 % zoom
REPORT_FIGURE_INCHES = 10.0
REPORT_DPI = 100


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 100) -> None:
    """Save a matplotlib figure atomically and close it."""
    plt = pyplot()
    with atomic_path(path) as tmp:
        # fast zlib level: these figures are written once and read by people
        fig.savefig(tmp, dpi=dpi, format="png", pil_kwargs={"compress_level": 1})
    plt.close(fig)


def integer_axis(ax, axis: str = "x") -> None:
    """Ticks at whole numbers only (epochs, trials, counts)."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def plot_curves(history: list[dict], path: Path, title: str = "") -> None:
    """curves.png: losses, validation IoU/Dice, predicted vs true foreground, learning rate; two
    by two, 1000 px wide (readable at 100 % in a report), epochs on whole-number ticks."""
    plt = pyplot()
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(2, 2, figsize=(REPORT_FIGURE_INCHES, 7.5))
    ax = axes.ravel()
    ax[0].plot(ep, [h["train_loss"] for h in history], "o-", ms=3, label="train")
    ax[0].plot(ep, [h["val_loss"] for h in history], "o-", ms=3, label="validation")
    ax[0].set(title="loss", xlabel="epoch")
    ax[0].legend()
    for key, label in (
        ("val_iou", "IoU (mean)"),
        ("val_iou_pooled", "IoU (pooled)"),
        ("val_dice", "Dice (mean)"),
    ):
        ax[1].plot(ep, [h[key] for h in history], "o-", ms=3, label=label)
    ax[1].set(title="validation", xlabel="epoch", ylim=(0, 1))
    ax[1].legend()
    ax[2].semilogy(ep, [max(h["val_pred_fg"], 1e-6) for h in history], "o-", ms=3, label="predicted")
    ax[2].semilogy(ep, [max(h["val_true_fg"], 1e-6) for h in history], "k--", label="true")
    ax[2].set(title="validation foreground fraction", xlabel="epoch")
    ax[2].legend()
    ax[3].plot(ep, [h["lr"] for h in history], "o-", ms=3)
    ax[3].set(title="learning rate (end of epoch)", xlabel="epoch")
    for a in ax:
        integer_axis(a)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=REPORT_DPI)


def plot_compare(runs: list[tuple[str, list[dict]]], path: Path, key: str = "val_iou") -> None:
    """Overlay of the runs' validation curves."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, history in runs:
        ax.plot([h["epoch"] for h in history], [h[key] for h in history], "o-", ms=3, label=name)
    ax.set(xlabel="epoch", ylabel=key, title=f"{key} per epoch", ylim=(0, 1))
    integer_axis(ax)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_lr_find(lrs: np.ndarray, losses: np.ndarray, suggestion: float | None, path: Path) -> None:
    """lr_find.png: smoothed loss against learning rate, suggestion marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.semilogx(lrs, losses)
    if suggestion:
        ax.axvline(suggestion, color="r", ls="--", label=f"suggested {suggestion:.2g}")
        ax.legend()
    ax.set(xlabel="learning rate", ylabel="smoothed training loss", title="LR range test")
    fig.tight_layout()
    save_figure(fig, path)


def plot_worst_cases(cases: list[tuple], path: Path, crop: int = 160) -> None:
    """worst_cases.png: for each case (score, name, image, true mask, predicted mask), the
    densest crop with truth (green) and prediction (magenta) outlines side by side."""
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    plt = pyplot()
    fig, axes = plt.subplots(len(cases), 2, figsize=(8, 4 * len(cases)), squeeze=False)
    for (score, name, image, true, pred), (a0, a1) in zip(cases, axes):
        dens = ndi.uniform_filter((true | pred).astype(np.float32), crop)
        cy, cx = np.unravel_index(np.argmax(dens), dens.shape)
        y0 = int(np.clip(cy - crop // 2, 0, max(image.shape[0] - crop, 0)))
        x0 = int(np.clip(cx - crop // 2, 0, max(image.shape[1] - crop, 0)))
        sl = (slice(y0, y0 + crop), slice(x0, x0 + crop))
        rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
        for ax, m, colour, label in ((a0, true, (0, 1, 0), "truth"), (a1, pred, (1, 0, 1), "prediction")):
            shown = np.clip(rgb[sl], 0, 1).copy()
            shown[find_boundaries(m[sl], mode="inner")] = colour
            ax.imshow(shown, interpolation="nearest")
            ax.set_title(f"{name}\n{label} (centroid F1 {score:.2f})", fontsize=10)
            ax.set_axis_off()
    fig.tight_layout()
    save_figure(fig, path)


def plot_sweep(values: list[tuple[int, float]], importance: dict, out: Path, maximize: bool = True) -> None:
    """history.png (value per trial, best so far) and importance.png (Optuna's fANOVA)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    nums = [n for n, _ in values]
    vals = [v for _, v in values]
    best = np.maximum.accumulate(vals) if maximize else np.minimum.accumulate(vals)
    ax.plot(nums, vals, "o", label="trial")
    ax.step(nums, best, where="post", label="best so far")
    ax.set(xlabel="trial", ylabel="objective", title="Sweep history")
    integer_axis(ax)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out / "history.png")
    fig, ax = plt.subplots(figsize=(7, 0.6 * max(len(importance), 1) + 1.5))
    if importance:
        keys = list(importance)[::-1]
        ax.barh(keys, [importance[k] for k in keys])
    else:
        ax.text(0.5, 0.5, "importance needs two or more finished trials", ha="center")
    ax.set(title="Parameter importance (fANOVA)", xlabel="importance")
    fig.tight_layout()
    save_figure(fig, out / "importance.png")
