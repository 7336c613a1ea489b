"""The state of a training run: what changes while it trains and what ``last.pt`` keeps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ..core.config import Config
from ..core.errors import InputError
from ..models.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from ..models.devices import Distributed


def initial_best(monitor: str) -> dict:
    """The best-so-far record before the first epoch (``val_loss`` is minimised, scores maximised)."""
    return {"epoch": -1, "value": math.inf if monitor == "val_loss" else -math.inf}


@dataclass
class TrainState:
    """Model, optimizer and loop counters of one run (one process of a DDP run).

    ``epoch`` is the 0-based epoch being run (after a resume: the next one), ``step`` the batch
    within it; ``status`` stays ``ok`` until a callback stops the run with :meth:`stop`.
    """

    cfg: Config
    out: Path
    dist: Distributed
    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper that trains it
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: AveragedModel | None
    loss_fn: Callable
    meta: dict
    amp_dtype: torch.dtype | None = None  # mixed precision on CUDA; None: full precision
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    bad_epochs: int = 0
    collapse_count: int = 0
    epoch: int = 0
    step: int = 0
    lr: float = 0.0  # the learning rate of the latest step
    improved: bool = False  # the latest validation beat the best so far
    elapsed_before_s: float = 0.0  # time spent before a resume
    started: float = field(default_factory=time.time)
    status: str = "ok"
    reason: str = ""

    def __post_init__(self):
        if not self.best:
            self.best = initial_best(self.cfg.train.monitor)

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def eval_model(self) -> nn.Module:
        """The weights validated and used for inference: the EMA weights when kept."""
        return self.ema.module if self.ema is not None else self.model

    def elapsed_s(self) -> float:
        """Training wall time of the whole run, resumes included."""
        return self.elapsed_before_s + time.time() - self.started

    def stop(self, status: str, reason: str) -> None:
        """End the run after this step or epoch; the first reason given wins."""
        if self.status == "ok":
            self.status, self.reason = status, reason

    def checkpoint(self, finished: bool = False, result: dict | None = None) -> dict:
        """The checkpoint dict (see :mod:`beadseg.models.checkpoint`) after the latest epoch."""
        return {
            "format": CHECKPOINT_FORMAT,
            "model_state": self.model.state_dict(),
            "ema_state": self.ema.module.state_dict() if self.ema is not None else None,
            "ema_updates": int(self.ema.n_averaged) if self.ema is not None else None,
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "scaler_state": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": len(self.history) - 1,
            "config": self.cfg.model_dump(mode="json"),
            "history": self.history,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "collapse_count": self.collapse_count,
            "elapsed_s": self.elapsed_s(),
            "meta": self.meta,
            "finished": finished,
            "status": self.status,  # a stop decision survives a kill before result.json
            "reason": self.reason,
            "result": result or {},
        }

    def restore(self, ckpt: dict, steps_per_epoch: int) -> None:
        """Continue from a ``last.pt`` (the model weights are loaded when the model is built).

        Checkpoints written before the scheduler was saved get it from the step count; their
        ``ema_state`` (a plain state_dict) loads as it is.
        """
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        if ckpt.get("scheduler_state"):
            self.scheduler.load_state_dict(ckpt["scheduler_state"])
        else:  # the next step's learning rate, as the scheduler would have set it
            n = self.scheduler.last_epoch = (ckpt["epoch"] + 1) * steps_per_epoch
            for group, base, factor in zip(
                self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas
            ):
                group["lr"] = base * factor(n)
        if self.ema is not None and ckpt.get("ema_state"):
            self.ema.module.load_state_dict(ckpt["ema_state"])
            self.ema.n_averaged.fill_(max(int(ckpt.get("ema_updates") or 1), 1))
        if ckpt.get("scaler_state"):
            self.scaler.load_state_dict(ckpt["scaler_state"])
        self.history = list(ckpt["history"])
        self.best = dict(ckpt["best"])
        self.bad_epochs, self.collapse_count = ckpt["bad_epochs"], ckpt["collapse_count"]
        self.epoch = ckpt["epoch"] + 1
        self.elapsed_before_s = ckpt["elapsed_s"]
        # the stop decision of the latest epoch (older checkpoints: none recorded)
        self.status, self.reason = ckpt.get("status", "ok"), ckpt.get("reason", "")


#: what ``last.pt`` must hold to continue a run (see :meth:`TrainState.checkpoint`)
RESUME_KEYS = (
    "config",
    "optimizer_state",
    "epoch",
    "history",
    "best",
    "bad_epochs",
    "collapse_count",
    "elapsed_s",
)


def resume_point(run: Path, log: Callable[[str], None] = print) -> tuple[Config, dict | None]:
    """The config and ``last.pt`` of a run to continue; ``last.pt`` is None when the run was
    stopped before its first epoch ended (then it starts from its config.yaml).

    Raises
    ------
    InputError
        ``run`` holds neither a ``last.pt`` nor a ``config.yaml``.
    """
    from ..core.config import load_config
    from ..outputs.folder import read_manifest

    if (run / "last.pt").is_file():
        ckpt = load_checkpoint(run / "last.pt")
        missing = [k for k in RESUME_KEYS if k not in ckpt]
        if missing:
            raise InputError(
                f"{run / 'last.pt'} cannot be resumed (missing {', '.join(missing)}); start a new "
                "run, or give it as train.init_weights to start from its weights"
            )
        return load_config(None, ckpt["config"]), ckpt
    if (run / "config.yaml").is_file():
        cfg = load_config(run / "config.yaml")
    else:
        manifest = read_manifest(run) if run.is_dir() else None
        if not manifest or manifest["command"] != "train" or not manifest.get("settings"):
            raise InputError(
                f"{run} holds no last.pt or config.yaml of a training run; nothing to resume: "
                f"start a run with --out {run}"
            )
        cfg = load_config(None, manifest["settings"])
    log(f"{run} has no last.pt yet (stopped before its first epoch ended): starting the run")
    return cfg, None
