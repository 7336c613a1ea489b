"""Learning-rate schedules, stepped once per batch, as ``torch.optim.lr_scheduler.LambdaLR``.

Each schedule is a factor of the peak learning rate (``optim.lr``) as a function of the step:

``cosine``
    linear warm-up over ``schedule.warmup_epochs`` (from ``1/warmup`` of the peak to the peak),
    then cosine decay to ``schedule.min_lr_ratio`` x the peak at the last step.
``cosine_long_warmup``
    the same with a warm-up of at least 30 % of all steps (configs written before this name
    existed call it ``onecycle``; it has no momentum cycle, so it is not Smith's one-cycle).
``constant``
    the same warm-up, then the peak until the end.

The scheduler's ``state_dict`` goes into ``last.pt`` so a resumed run continues the schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..core.config import ScheduleConfig

LONG_WARMUP_FRACTION = 0.3


def _cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    t = min((step - warmup) / max(total - warmup, 1), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def _cosine_long_warmup(step: int, total: int, warmup: int, min_ratio: float) -> float:
    return _cosine(step, total, max(warmup, int(LONG_WARMUP_FRACTION * total)), min_ratio)


def _constant(step: int, total: int, warmup: int, min_ratio: float) -> float:
    return (step + 1) / warmup if warmup and step < warmup else 1.0


SCHEDULES: dict[str, Callable[[int, int, int, float], float]] = {
    "cosine": _cosine,
    "cosine_long_warmup": _cosine_long_warmup,
    "constant": _constant,
}


def lr_factor(cfg: ScheduleConfig, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The learning rate of ``step`` (0-based, counted over the whole run) as a share of the peak.

    Parameters
    ----------
    cfg : ScheduleConfig
        Schedule name, warm-up epochs and final ratio.
    step : int
        Optimizer step, 0-based.
    steps_per_epoch, epochs : int
        The run's length.

    Examples
    --------
    First step, end of the warm-up, last step of a 5 x 10-step run:

    >>> cfg = ScheduleConfig(name="cosine", warmup_epochs=1, min_lr_ratio=0.1)
    >>> [round(lr_factor(cfg, s, 10, 5), 3) for s in (0, 9, 49)]
    [0.1, 1.0, 0.101]
    """
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    return SCHEDULES[cfg.name](step, steps_per_epoch * epochs, warmup, cfg.min_lr_ratio)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that multiplies the optimizer's learning rate by :func:`lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch, epochs)
    )
