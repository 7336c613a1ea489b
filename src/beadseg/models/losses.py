"""Segmentation losses on logits, each with an optional ignore mask.

All losses take ``logits`` and ``target`` of shape ``N x 1 x H x W`` (target in {0, 1} or soft)
and an optional ``valid`` tensor of the same shape (1 = pixel counts, 0 = ignored). They are
thin and tested against hand-computed values; BCE uses PyTorch's numerically stable
``binary_cross_entropy_with_logits``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def _masked_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return values.mean()
    return (values * valid).sum() / valid.sum().clamp_min(1.0)


def bce_loss(logits, target, valid=None, pos_weight: float | None = None) -> torch.Tensor:
    """Mean binary cross-entropy; ``pos_weight`` multiplies the bead-pixel term."""
    pw = None if pos_weight is None else torch.tensor(pos_weight, device=logits.device)
    values = F.binary_cross_entropy_with_logits(logits, target, reduction="none", pos_weight=pw)
    return _masked_mean(values, valid)


def _soft_counts(logits, target, valid):
    p = torch.sigmoid(logits.float())
    t = target.float()
    if valid is not None:
        p, t = p * valid, t * valid
    tp = (p * t).sum()
    return tp, (p * (1 - t)).sum(), ((1 - p) * t).sum()


def dice_loss(logits, target, valid=None, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 - (2 TP + s) / (2 TP + FP + FN + s)`` over the whole batch.

    Summing over the batch (not per image) keeps crops without beads from dominating.
    """
    tp, fp, fn = _soft_counts(logits, target, valid)
    return 1 - (2 * tp + smooth) / (2 * tp + fp + fn + smooth)


def tversky_loss(
    logits, target, valid=None, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1.0
) -> torch.Tensor:
    """Tversky loss ``1 - (TP + s) / (TP + alpha FP + beta FN + s)``; beta > alpha favours recall."""
    tp, fp, fn = _soft_counts(logits, target, valid)
    return 1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


def focal_loss(logits, target, valid=None, gamma: float = 2.0, alpha: float | None = None) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): BCE scaled by ``(1 - p_t) ** gamma``, optional alpha balance."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    values = (1 - p_t) ** gamma * bce
    if alpha is not None:
        values = values * (alpha * target + (1 - alpha) * (1 - target))
    return _masked_mean(values, valid)


def _segmentation_loss(cfg) -> LossFn:
    """The foreground loss named in a :class:`beadseg.core.config.LossConfig`."""
    name = cfg.name
    if name == "bce":
        return lambda lo, t, v=None: bce_loss(lo, t, v, cfg.pos_weight)
    if name == "dice":
        return lambda lo, t, v=None: dice_loss(lo, t, v)
    if name == "bce_dice":
        return lambda lo, t, v=None: (
            cfg.bce_weight * bce_loss(lo, t, v, cfg.pos_weight) + cfg.dice_weight * dice_loss(lo, t, v)
        )
    if name == "focal":
        return lambda lo, t, v=None: focal_loss(lo, t, v, cfg.focal_gamma, cfg.focal_alpha)
    if name == "tversky":
        return lambda lo, t, v=None: tversky_loss(lo, t, v, cfg.tversky_alpha, cfg.tversky_beta)
    raise ValueError(f"unknown loss {name!r}")


def centre_loss(logits, target, valid) -> torch.Tensor:
    """BCE of the centre head against its soft target (heatmap or distance map), over the
    valid pixels only (clumps of annotated masks have unknown centres)."""
    return bce_loss(logits, target, valid)


def build_loss(cfg, centre_head: bool = False) -> LossFn:
    """The loss of a :class:`beadseg.core.config.LossConfig`, as ``loss(logits, target, valid=None)``.

    With ``centre_head`` the logits are ``N x 2 x H x W`` (foreground, centres) and the target
    ``N x 3 x H x W`` (mask, centre target, centre validity): the foreground loss on channel 0
    plus ``cfg.centre_weight`` x :func:`centre_loss` on channel 1.
    """
    seg = _segmentation_loss(cfg)
    if not centre_head:
        return seg

    def loss(lo, t, v=None):
        fg = seg(lo[:, :1], t[:, :1], v)
        return fg + cfg.centre_weight * centre_loss(lo[:, 1:2], t[:, 1:2], t[:, 2:3])

    return loss
