import math

import pytest
import torch

from beadseg.core.config import LossConfig
from beadseg.models.losses import bce_loss, build_loss, dice_loss, focal_loss, tversky_loss

L = torch.tensor([[0.0, 2.0, -1.0], [1.0, -2.0, 0.5], [3.0, 0.0, -3.0]]).reshape(1, 1, 3, 3)
T = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]).reshape(1, 1, 3, 3)


def sig(x):
    return 1 / (1 + math.exp(-x))


P = [sig(v) for v in L.flatten().tolist()]
Tl = T.flatten().tolist()


def test_bce_by_hand():
    want = -sum(t * math.log(p) + (1 - t) * math.log(1 - p) for p, t in zip(P, Tl)) / 9
    assert bce_loss(L, T).item() == pytest.approx(want, rel=1e-6)


def test_bce_pos_weight_and_ignore_mask():
    valid = torch.zeros_like(T)
    valid[..., 0, :] = 1  # only the first row counts
    want = -sum(t * math.log(p) + (1 - t) * math.log(1 - p) for p, t in zip(P[:3], Tl[:3])) / 3
    assert bce_loss(L, T, valid).item() == pytest.approx(want, rel=1e-6)
    want_w = -sum(2 * t * math.log(p) + (1 - t) * math.log(1 - p) for p, t in zip(P, Tl)) / 9
    assert bce_loss(L, T, pos_weight=2.0).item() == pytest.approx(want_w, rel=1e-6)


def test_dice_and_tversky_by_hand():
    tp = sum(p * t for p, t in zip(P, Tl))
    fp = sum(p * (1 - t) for p, t in zip(P, Tl))
    fn = sum((1 - p) * t for p, t in zip(P, Tl))
    assert dice_loss(L, T).item() == pytest.approx(1 - (2 * tp + 1) / (2 * tp + fp + fn + 1), rel=1e-6)
    want = 1 - (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1)
    assert tversky_loss(L, T, alpha=0.3, beta=0.7).item() == pytest.approx(want, rel=1e-6)


def test_focal_by_hand():
    vals = []
    for p, t in zip(P, Tl):
        pt = p if t else 1 - p
        vals.append(-((1 - pt) ** 2) * math.log(pt))
    assert focal_loss(L, T, gamma=2.0).item() == pytest.approx(sum(vals) / 9, rel=1e-5)
    assert focal_loss(L, T, gamma=0.0).item() == pytest.approx(bce_loss(L, T).item(), rel=1e-6)


@pytest.mark.parametrize("name", ["dice", "bce", "bce_dice", "focal", "tversky"])
@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_finite_gradients_on_constant_targets(name, fill):
    loss_fn = build_loss(LossConfig(name=name))
    logits = (torch.randn(2, 1, 8, 8) * 30).requires_grad_()  # extreme logits too
    loss = loss_fn(logits, torch.full((2, 1, 8, 8), fill))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
