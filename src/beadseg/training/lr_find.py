"""`beadseg lr-find`: the learning-rate range test (Smith 2017, as in fastai).

The learning rate grows exponentially from ``start_lr`` to ``end_lr`` over ``steps`` training
steps; the loss is smoothed with a bias-corrected exponential moving average and the sweep stops
when it exceeds 4x its minimum. The suggestion is the learning rate at the steepest descent of
the smoothed loss (most negative slope against log learning rate) before its minimum; a curve
without a clear minimum (flat, or still falling where the sweep ends) gets no suggestion but a
warning saying why (:func:`assess_curve`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.config import Config
from ..data.dataset import CropDataset
from ..models import build_model
from ..models.devices import resolve_device, torch_threads
from ..models.losses import build_loss
from ..outputs.provenance import write_json
from .data import prepare_data


def lr_find(
    cfg: Config,
    out: str | Path | None = None,
    steps: int = 200,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    beta: float = 0.98,
) -> dict:
    """Run the LR range test on the training side of the configured split.

    Parameters
    ----------
    cfg : Config
        Data, model, loss and training settings (``optim.lr`` and the schedule are not used).
    out : path, optional
        Folder for ``lr_find.png`` and ``lr_find.json``.
    steps : int
        Most training steps of the sweep (it stops early once the loss diverges).
    start_lr, end_lr : float
        The learning-rate range, swept geometrically.
    beta : float
        Smoothing of the loss (exponential moving average, bias-corrected).

    Returns
    -------
    dict
        ``suggested_lr`` (None without a clear descent), ``lrs``, ``losses`` (smoothed) and
        ``steps_run``.
    """
    with torch_threads(cfg.train.num_threads):
        device = resolve_device(cfg.train.device)
        torch.manual_seed(cfg.train.seed)
        data = prepare_data(cfg)
        ds = CropDataset(data.train, cfg.data, cfg.augment, seed=cfg.train.seed)
        lrs, losses = _range_test(cfg, ds, device, steps, start_lr, end_lr, beta)
    suggestion, warning = assess_curve(lrs, losses)
    result = {
        "suggested_lr": suggestion,
        "warning": warning,
        "lrs": lrs.tolist(),
        "losses": losses.tolist(),
        "steps_run": len(lrs),
    }
    if out is not None:
        from ..outputs.figures import plot_lr_find

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        plot_lr_find(lrs, losses, suggestion, out / "lr_find.png")
        write_json(out / "lr_find.json", result)
    return result


def _range_test(
    cfg: Config,
    ds: CropDataset,
    device: torch.device,
    steps: int,
    start_lr: float,
    end_lr: float,
    beta: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Train with a geometrically growing learning rate: (learning rates, smoothed losses)."""
    model = build_model(cfg.model, cfg.data.channels).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=start_lr, weight_decay=cfg.optim.weight_decay)
    loss_fn = build_loss(cfg.loss, cfg.model.centre_head)
    factor = (end_lr / start_lr) ** (1 / max(steps - 1, 1))
    lrs, losses = [], []
    avg, best = 0.0, np.inf
    for i in range(steps):
        lr = start_lr * factor**i
        for g in opt.param_groups:
            g["lr"] = lr
        ds.set_epoch(i)  # fresh crops each step
        xs, ys = zip(*(ds[j] for j in range(cfg.train.batch_size)))
        x, y = torch.stack(xs).to(device), torch.stack(ys).to(device)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            break
        loss.backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        avg = beta * avg + (1 - beta) * float(loss.detach())
        smooth = avg / (1 - beta ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        best = min(best, smooth)
        if smooth > 4 * best and i > 10:
            break
    return np.array(lrs), np.array(losses)


#: a clear minimum: the smoothed loss falls at least this fraction below where it started ...
MIN_DROP = 0.1
#: ... and rises again after it (the minimum is not within this fraction of the sweep's end)
END_FRACTION = 0.05


def suggest_lr(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """The suggested learning rate of :func:`assess_curve` (None without a clear minimum)."""
    return assess_curve(lrs, losses)[0]


def assess_curve(lrs: np.ndarray, losses: np.ndarray) -> tuple[float | None, str]:
    """(suggested learning rate, warning) of a range test's smoothed loss curve.

    The suggestion is where the loss falls fastest against log10(lr) before its minimum,
    skipping the noisy first tenth of the sweep. There is none, and the warning says why, when
    the sweep has 5 steps or fewer, when the loss never falls :data:`MIN_DROP` below its start
    (flat: the range holds no useful rate, or the data teaches nothing yet), or when its minimum
    lies at the end of the sweep (still falling: the best rate lies above the range).
    """
    lrs, losses = np.asarray(lrs, float), np.asarray(losses, float)
    if len(lrs) <= 5:
        return None, f"the sweep ran {len(lrs)} steps only, too few to read a curve; give more --steps"
    lo = max(2, len(losses) // 10)
    start, i_min = float(losses[lo]), int(np.argmin(losses))
    if not np.isfinite(start) or float(losses[i_min]) > (1 - MIN_DROP) * start:
        return None, (
            f"the loss curve has no clear minimum: it never falls {MIN_DROP:.0%} below its start "
            f"({start:.3g}) between lr {lrs[0]:.2g} and {lrs[-1]:.2g}; check the data and the "
            "loss, or try another range (beadseg.lr_find start_lr / end_lr)"
        )
    if i_min >= len(losses) * (1 - END_FRACTION) - 1:
        return None, (
            f"the loss curve has no clear minimum: it still falls at the end of the sweep "
            f"(lr {lrs[-1]:.2g}); give more --steps or a larger end_lr"
        )
    grad = np.gradient(losses, np.log10(lrs))
    if i_min <= lo:
        return (
            None,
            "the loss curve has no clear minimum: it is lowest at the start of the sweep "
            f"(lr {lrs[i_min]:.2g}); try a lower start_lr",
        )
    return float(lrs[lo + int(np.argmin(grad[lo:i_min]))]), ""
