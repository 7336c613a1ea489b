"""Validation of a training epoch: whole tiles, no augmentation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..core.metrics import mean_dice, mean_iou, pixel_scores, pooled
from ..data.dataset import Sample, to_tensor


@dataclass(frozen=True)
class ValidationScores:
    """Scores of one validation pass (the ``val_*`` columns of ``history.csv``).

    IoU and Dice follow :mod:`beadseg.core.metrics`: ``val_iou`` is the mean over images,
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
        ``loss_fn(logits, target)``, the training loss (target: mask, and the centre target
        and its validity when the samples carry them).
    device : torch.device
    threshold : float
        Probability above which a pixel counts as bead.
    """
    model.eval()
    losses, scores = [], []
    for s in samples:
        x = to_tensor(s.image.astype(np.float32)).to(device)
        y = torch.from_numpy(_target(s)[None]).to(device)
        logits = model(x).float()
        losses.append(float(loss_fn(logits, y)))
        pred = (torch.sigmoid(logits[:, :1]) > threshold).cpu().numpy()[0, 0]
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


def _target(s: Sample) -> np.ndarray:
    """``K x H x W`` float32 target of a whole sample, as the crops have it."""
    maps = [s.mask]
    if s.centre is not None:
        maps += [s.centre, s.centre_valid]
    return np.stack([np.asarray(m, np.float32) for m in maps])


@torch.no_grad()
def model_outputs(
    model: torch.nn.Module, image: np.ndarray, device: torch.device
) -> tuple[np.ndarray, np.ndarray | None]:
    """Foreground probability and (for a centre-head model) the centre map of a normalised
    ``H x W x C`` image, whole, in eval mode."""
    model.eval()
    out = torch.sigmoid(model(to_tensor(np.asarray(image, np.float32)).to(device)).float())
    out = out.cpu().numpy()[0]
    return out[0], (out[1] if out.shape[0] > 1 else None)


def fingerprint_samples(
    model: torch.nn.Module,
    samples: list[Sample],
    instances,
    device: torch.device,
    threshold: float = 0.5,
    max_images: int = 256,
) -> dict:
    """The training-data fingerprint (:func:`beadseg.core.domain.summarise_features`) of a model on
    its own training images (at most ``max_images``, evenly spaced), measured on its outputs as
    prediction will measure new images."""
    from ..core.beads import segment_instances
    from ..core.domain import image_features, summarise_features

    step = max(1, -(-len(samples) // max_images))
    rows = []
    for s in samples[::step]:
        image = s.image.astype(np.float32)
        prob, centre = model_outputs(model, image, device)
        labels = segment_instances(prob, centre, instances, threshold)
        rows.append(image_features(image, labels))
    return summarise_features(rows)
