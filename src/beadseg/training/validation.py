"""Validation of a training epoch: whole tiles, no augmentation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..data.dataset import Sample, to_tensor
from ..metrics import mean_dice, mean_iou, pixel_scores, pooled


@dataclass(frozen=True)
class ValidationScores:
    """Scores of one validation pass (the ``val_*`` columns of ``history.csv``).

    IoU and Dice follow :mod:`beadseg.metrics`: ``val_iou`` is the mean over images,
    ``val_iou_pooled`` sums pixels over all images; ``val_pred_fg`` / ``val_true_fg`` are the
    pooled predicted and true foreground fractions (the collapse guard compares them).
    """

    val_loss: float
    val_iou: float
    val_iou_pooled: float
    val_dice: float
    val_pred_fg: float
    val_true_fg: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@torch.no_grad()
def validate(
    model: torch.nn.Module, samples: list[Sample], loss_fn, device: torch.device, threshold: float
) -> ValidationScores:
    """Loss and pixel scores of ``model`` on whole tiles (any size), in eval mode.

    Parameters
    ----------
    model : nn.Module
        The network to score (the EMA weights when the run keeps them).
    samples : list of Sample
        Validation images and masks.
    loss_fn : callable
        ``loss_fn(logits, target)``, the training loss.
    device : torch.device
    threshold : float
        Probability above which a pixel counts as bead.
    """
    model.eval()
    losses, scores = [], []
    for s in samples:
        x = to_tensor(s.image.astype(np.float32)).to(device)
        y = torch.from_numpy(s.mask[None, None].astype(np.float32)).to(device)
        logits = model(x).float()
        losses.append(float(loss_fn(logits, y)))
        pred = (torch.sigmoid(logits) > threshold).cpu().numpy()[0, 0]
        scores.append(pixel_scores(pred, s.mask))
    p = pooled(scores)
    return ValidationScores(
        val_loss=float(np.mean(losses)),
        val_iou=mean_iou(scores),
        val_iou_pooled=p.iou,
        val_dice=mean_dice(scores),
        val_pred_fg=p.pred_fraction,
        val_true_fg=p.true_fraction,
    )
