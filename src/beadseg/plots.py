"""Figures shared by training, comparison and evaluation (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import atomic_path


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
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def plot_curves(history: list[dict], path: Path, title: str = "") -> None:
    """curves.png: losses, validation IoU/Dice, predicted vs true foreground, learning rate."""
    plt = pyplot()
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 4, figsize=(18, 4))
    ax[0].plot(ep, [h["train_loss"] for h in history], label="train")
    ax[0].plot(ep, [h["val_loss"] for h in history], label="validation")
    ax[0].set(title="loss", xlabel="epoch")
    ax[0].legend()
    for key, label in (("val_iou", "IoU (mean)"), ("val_iou_pooled", "IoU (pooled)"),
                       ("val_dice", "Dice (mean)")):
        ax[1].plot(ep, [h[key] for h in history], label=label)
    ax[1].set(title="validation", xlabel="epoch", ylim=(0, 1))
    ax[1].legend()
    ax[2].semilogy(ep, [max(h["val_pred_fg"], 1e-6) for h in history], label="predicted")
    ax[2].semilogy(ep, [max(h["val_true_fg"], 1e-6) for h in history], "k--", label="true")
    ax[2].set(title="validation foreground fraction", xlabel="epoch")
    ax[2].legend()
    ax[3].plot(ep, [h["lr"] for h in history])
    ax[3].set(title="learning rate (end of epoch)", xlabel="epoch")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_compare(runs: list[tuple[str, list[dict]]], path: Path, key: str = "val_iou") -> None:
    """Overlay of the runs' validation curves."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, history in runs:
        ax.plot([h["epoch"] for h in history], [h[key] for h in history], label=name)
    ax.set(xlabel="epoch", ylabel=key, title=f"{key} per epoch", ylim=(0, 1))
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
