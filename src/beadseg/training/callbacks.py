"""What happens around the training steps: weight averaging, stopping rules, files.

The trainer calls every callback's hooks in list order (:func:`default_callbacks`); a callback
ends the run with ``state.stop(status, reason)`` (status ``collapsed``, ``early-stopped`` or
``time-limit``). Under DDP every process runs the same callbacks: decisions that could differ
between processes (a non-finite loss, the clock) are agreed through a collective, and only the
main process writes files.

``BEADSEG_PAUSE_AT=EPOCH:STEP:FILE`` (1-based) adds :class:`PauseAt`: after that optimizer step
the run writes FILE and waits while it exists, so a test can kill it at a known point (and a
person can look at a run mid-epoch; deleting FILE lets it go on).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..core.config import TrainConfig
from ..core.errors import ConfigError
from ..core.files import write_csv
from ..models.checkpoint import save_checkpoint
from .state import TrainState
from .validation import ValidationScores


class Callback:
    """Hooks of the training loop; each does nothing unless overridden."""

    def on_loss(self, state: TrainState, loss: torch.Tensor) -> None:
        """After the forward pass of a step, before the backward pass."""

    def on_step_end(self, state: TrainState) -> None:
        """After the optimizer step."""

    def on_epoch_end(self, state: TrainState, row: dict, scores: ValidationScores) -> None:
        """After validation; ``row`` is the epoch's ``history.csv`` row (already in history)."""

    def on_train_end(self, state: TrainState, result: dict) -> None:
        """After ``result.json`` is written (main process only)."""


# ----------------------------------------------------------------------------- weight averaging


def build_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s weights and buffers (BatchNorm statistics
    too), starting from its current weights: ``ema = decay * ema + (1 - decay) * weights``."""
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    ema.update_parameters(model)  # the first update copies: the average starts at the weights
    return ema


class EMAUpdate(Callback):
    """Fold the new weights into the average after every optimizer step."""

    def on_step_end(self, state: TrainState) -> None:
        state.ema.update_parameters(state.model)


# ----------------------------------------------------------------------------- stopping rules

#: A validation epoch whose predicted foreground fraction is outside this band times the true
#: one has collapsed (DESIGN.md): the model predicts (nearly) nothing or (nearly) everything.
COLLAPSE_BAND = (0.1, 10.0)


def foreground_ratio(pred_fg: float, true_fg: float) -> float | None:
    """Predicted over true foreground fraction; None when the truth has no foreground."""
    return pred_fg / true_fg if true_fg > 0 else None


def is_collapsed(pred_fg: float, true_fg: float) -> bool:
    """True when the foreground ratio lies outside :data:`COLLAPSE_BAND`."""
    ratio = foreground_ratio(pred_fg, true_fg)
    return ratio is not None and not COLLAPSE_BAND[0] <= ratio <= COLLAPSE_BAND[1]


def _collapse_advice(ratio: float) -> str:
    return (
        f"the model predicts {'all background' if ratio < 1 else 'nearly everything'}; lower "
        "optim.lr, check masks with `beadseg analyze`, or use loss bce_dice"
    )


def check_best_model(state: TrainState) -> None:
    """Mark the run ``collapsed`` when the model it keeps (best.pt: the best epoch, or the last
    one when no epoch improved) predicts < 0.1x or > 10x the true foreground, whatever stopped
    the run: a model that predicts nothing is never ``ok``."""
    if not state.history or state.status == "collapsed":
        return
    epoch = state.best["epoch"] if state.best["epoch"] > 0 else len(state.history)
    row = state.history[epoch - 1]
    if is_collapsed(row["val_pred_fg"], row["val_true_fg"]):
        ratio = foreground_ratio(row["val_pred_fg"], row["val_true_fg"])
        before = f" (the run had stopped: {state.reason})" if state.reason else ""
        state.status = "collapsed"
        state.reason = (
            f"the kept model (epoch {epoch}) predicts foreground {row['val_pred_fg']:.4f} vs true "
            f"{row['val_true_fg']:.4f} ({ratio:.2g}x): {_collapse_advice(ratio)}{before}"
        )


class CollapseGuard(Callback):
    """Stop when the loss is not finite or the predicted foreground is far from the true one.

    A validation epoch collapses (DESIGN.md) when its predicted foreground fraction is < 0.1x or
    > 10x the true one; ``collapse_patience`` such epochs in a row after ``collapse_min_epoch``
    stop the run. The defaults (1, 2) stop a collapsed run after its third epoch; a healthy run
    can have one such epoch early on (the shipped model's third epoch predicted 11x).
    """

    def __init__(self, cfg: TrainConfig):
        self.patience, self.min_epoch = cfg.collapse_patience, cfg.collapse_min_epoch

    def on_loss(self, state: TrainState, loss: torch.Tensor) -> None:
        finite = bool(torch.isfinite(loss))
        if state.dist.active:  # every process must stop together, or the others wait forever
            import torch.distributed as dist

            flag = torch.tensor([float(finite)], device=state.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            finite = bool(flag.item())
        if not finite:
            state.stop(
                "collapsed",
                (
                    f"training loss became {float(loss.detach())} at epoch {state.epoch + 1}, step "
                    f"{state.step + 1} (learning rate {state.lr:.3g}); lower optim.lr or enable "
                    "train.grad_clip"
                ),
            )

    def on_epoch_end(self, state: TrainState, row: dict, scores: ValidationScores) -> None:
        epoch = state.epoch + 1
        if not np.isfinite(scores.val_loss):
            state.stop("collapsed", f"validation loss is {scores.val_loss} at epoch {epoch}; lower optim.lr")
            return
        if scores.val_true_fg <= 0 or epoch <= self.min_epoch:
            return
        ratio = foreground_ratio(scores.val_pred_fg, scores.val_true_fg)
        collapsed = is_collapsed(scores.val_pred_fg, scores.val_true_fg)
        state.collapse_count = state.collapse_count + 1 if collapsed else 0
        if state.collapse_count >= self.patience:
            state.stop(
                "collapsed",
                (
                    f"predicted foreground {scores.val_pred_fg:.4f} vs true {scores.val_true_fg:.4f} "
                    f"({ratio:.2g}x) for {state.collapse_count} epochs in a row up to epoch {epoch}: "
                    + _collapse_advice(ratio)
                ),
            )


class TrackBest(Callback):
    """Keep the best epoch by ``train.monitor`` (``val_loss`` minimised, scores maximised) and
    count the epochs since; an epoch of a run stopped as collapsed is never the best (a kept
    model that predicts nothing marks the run collapsed at the end: :func:`check_best_model`)."""

    def __init__(self, monitor: str):
        self.monitor, self.maximize = monitor, monitor != "val_loss"

    def on_epoch_end(self, state: TrainState, row: dict, scores: ValidationScores) -> None:
        value = getattr(scores, self.monitor)
        best = state.best["value"]
        state.improved = state.status == "ok" and (value > best if self.maximize else value < best)
        if state.improved:
            state.best = {"epoch": state.epoch + 1, "value": float(value), **scores.as_dict()}
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a new best (None: never)."""

    def __init__(self, monitor: str, patience: int | None):
        self.monitor, self.patience = monitor, patience

    def on_epoch_end(self, state: TrainState, row: dict, scores: ValidationScores) -> None:
        if self.patience and state.bad_epochs >= self.patience:
            state.stop(
                "early-stopped",
                (
                    f"{self.monitor} did not improve for {state.bad_epochs} epochs "
                    f"(best {state.best['value']:.4f} at epoch {state.best['epoch']})"
                ),
            )


class TimeLimit(Callback):
    """Stop after the epoch that ends past ``max_minutes`` of training (resumes included)."""

    def __init__(self, max_minutes: float | None):
        self.max_minutes = max_minutes

    def on_epoch_end(self, state: TrainState, row: dict, scores: ValidationScores) -> None:
        if not self.max_minutes:
            return
        out_of_time = state.elapsed_s() / 60 >= self.max_minutes
        if state.dist.active:  # rank 0's clock decides, so every process stops at the same epoch
            import torch.distributed as dist

            flag = torch.tensor([int(out_of_time)], device=state.device)
            dist.broadcast(flag, 0)
            out_of_time = bool(flag.item())
        if out_of_time:
            state.stop("time-limit", f"stopped after {self.max_minutes} minutes")


# ----------------------------------------------------------------------------- files


class HistoryCSV(Callback):
    """Rewrite ``history.csv`` (atomically) after every epoch."""

    def __init__(self, out: Path):
        self.path = Path(out) / "history.csv"

    def on_epoch_end(self, state: TrainState, row: dict, scores: ValidationScores) -> None:
        if state.dist.is_main:
            write_csv(self.path, state.history)


class Checkpointer(Callback):
    """``best.pt`` when the epoch is the best so far, ``last.pt`` after every epoch (both
    atomic); at the end ``last.pt`` is marked finished with the result, and a run that never
    improved gets its last weights as ``best.pt``."""

    def __init__(self, out: Path):
        self.out = Path(out)

    def on_epoch_end(self, state: TrainState, row: dict, scores: ValidationScores) -> None:
        if not state.dist.is_main:
            return
        ckpt = state.checkpoint()
        if state.improved:
            save_checkpoint(self.out / "best.pt", ckpt)
        save_checkpoint(self.out / "last.pt", ckpt)

    def on_train_end(self, state: TrainState, result: dict) -> None:
        if not state.history:
            return
        last = state.checkpoint(finished=True, result=result)
        save_checkpoint(self.out / "last.pt", last)
        if not (self.out / "best.pt").exists():
            save_checkpoint(self.out / "best.pt", last)


class EpochHook(Callback):
    """Call ``fn(epoch, row)`` after each epoch (e.g. to prune a sweep trial; it may raise)."""

    def __init__(self, fn: Callable[[int, dict], None]):
        self.fn = fn

    def on_epoch_end(self, state: TrainState, row: dict, scores: ValidationScores) -> None:
        self.fn(state.epoch + 1, row)


#: the environment variable that pauses a run at a known step (see the module docstring)
PAUSE_ENV = "BEADSEG_PAUSE_AT"


class PauseAt(Callback):
    """After optimizer step ``step`` of epoch ``epoch`` (both 1-based) the main process writes
    ``path`` and waits while it exists: the run stands still at a known point (``last.pt`` and
    ``history.csv`` hold the epochs before ``epoch``) until ``path`` is deleted or it is killed."""

    def __init__(self, spec: str):
        try:
            epoch, step, path = spec.split(":", 2)
            self.epoch, self.step, self.path = int(epoch), int(step), Path(path)
        except ValueError:
            raise ConfigError(
                f"{PAUSE_ENV}={spec!r} is not EPOCH:STEP:FILE (e.g. 3:2:paused.txt); fix or unset it"
            ) from None

    def on_step_end(self, state: TrainState) -> None:
        if (state.epoch + 1, state.step + 1) != (self.epoch, self.step) or not state.dist.is_main:
            return
        self.path.write_text(f"paused after epoch {self.epoch} step {self.step}; delete me to go on\n")
        while self.path.exists():
            time.sleep(0.05)


def default_callbacks(
    cfg: TrainConfig, out: Path, on_epoch: Callable[[int, dict], None] | None = None
) -> list[Callback]:
    """The callbacks of ``beadseg train``, in the order their decisions depend on each other:
    a collapsed epoch cannot be the best; best.pt is written for the epoch that improved even
    when the run then stops; last.pt records the final status."""
    callbacks: list[Callback] = [EMAUpdate()] if cfg.ema_decay else []
    callbacks += [
        CollapseGuard(cfg),
        TrackBest(cfg.monitor),
        HistoryCSV(out),
        EarlyStopping(cfg.monitor, cfg.early_stop_patience),
        TimeLimit(cfg.max_minutes),
        Checkpointer(out),
    ]
    if on_epoch is not None:
        callbacks.append(EpochHook(on_epoch))
    if os.environ.get(PAUSE_ENV):
        callbacks.append(PauseAt(os.environ[PAUSE_ENV]))
    return callbacks
