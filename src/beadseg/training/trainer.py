"""`beadseg train`: build a run, loop over epochs, write the run folder.

A run folder holds: ``config.yaml`` (resolved), ``split.json``, ``history.csv``, ``curves.png``,
``best.pt`` and ``last.pt`` (atomic, loadable with ``weights_only=True``), ``best.onnx`` (the
kept model for ONNX Runtime, :mod:`beadseg.models.onnx`), ``result.json``
(status ok / early-stopped / collapsed / time-limit) and ``provenance.json``. The loop itself
is a few functions over a :class:`~beadseg.training.state.TrainState`; stopping rules, weight
averaging and checkpoints are :mod:`~beadseg.training.callbacks`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..core.config import Config, ModelConfig, save_config
from ..core.errors import ConfigError
from ..core.normalization import normalization_record
from ..data.dataset import CropDataset
from ..models import build_model, count_parameters
from ..models.checkpoint import inference_weights, load_checkpoint, resolve_model_path
from ..models.devices import Distributed, distributed, torch_threads
from ..models.losses import build_loss
from ..outputs.provenance import write_json, write_provenance
from .callbacks import Callback, build_ema, check_best_model, default_callbacks
from .data import TrainingData, bead_area_stats, crop_loader, prepare_data
from .schedules import build_scheduler
from .state import TrainState, resume_point
from .validation import validate


def train(
    cfg: Config,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[int, dict], None] | None = None,
    device: str | None = None,
    data_path: str | None = None,
) -> dict:
    """Train a segmentation model into ``out`` (the engine of :func:`beadseg.workflows.train`,
    which holds the run folder).

    Parameters
    ----------
    cfg : Config
        The resolved configuration (ignored when resuming: the run's own config is used).
    out : path
        Run folder (created). Required unless ``resume`` is given.
    resume : path, optional
        A run folder: continue exactly where its ``last.pt`` stopped, with the run's own config
        (``cfg`` is not used). A stop decision (early stopping, collapse, time limit) stored in
        ``last.pt`` is kept, so the resumed run ends as the uninterrupted one would have. A
        folder killed before its first ``last.pt`` starts the run from its ``config.yaml``.
    progress, log : bool, callable
        Show a progress bar; ``log`` receives one line per epoch.
    on_epoch : callable, optional
        Called with (epoch, history row) after each validation (it may raise to stop the run).
    device : str, optional
        Run on this device instead of the config's ``train.device``.
    data_path : str, optional
        With ``resume``: the run's data folder at its new place.

    Returns
    -------
    dict
        The content of ``result.json`` (plus ``rank``; only rank 0 writes files).

    Notes
    -----
    Under torchrun (``WORLD_SIZE`` > 1) this joins the process group and destroys it before
    returning. A script that calls ``train`` under torchrun should end with ``os._exit(0)``, as
    ``beadseg train`` does (gloo's threads can abort a normal interpreter shutdown).
    """
    ckpt = None
    if resume is not None:
        out = Path(resume)
        cfg, ckpt = resume_point(out, log)
        if data_path is not None:
            cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": data_path})})
        if ckpt is not None and ckpt.get("finished"):
            log(f"{out} already finished ({ckpt['status']}); nothing to resume")
            return {**ckpt["result"]}
    if device is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": device})})
    if out is None:
        raise ConfigError("give an output folder (--out RUN_DIR)")
    if ckpt is None and cfg.train.init_weights:
        cfg = fine_tuning_config(cfg, log)
    out = Path(out)
    if ckpt is None and os.environ.get("RANK", "0") == "0":
        _remove_run_files(out)
    with torch_threads(cfg.train.num_threads), distributed(cfg.train.device) as dist:
        data, loader = _prepare_run(cfg, out, dist)
        if dist.is_main and data.labels.summary_line():
            log(data.labels.summary_line())
        state = _build_state(cfg, out, dist, data, ckpt, len(loader))
        if ckpt is not None:
            log(f"resuming {out} at epoch {state.epoch + 1}")
        callbacks = default_callbacks(cfg.train, out, on_epoch)
        _fit(state, data, loader, callbacks, progress, log)
        check_best_model(state)
        result = _result(state, data, len(loader.dataset))
    if dist.is_main:
        _finish(state, result, callbacks, log)
        if state.history:
            add_fingerprint(out, data.train, cfg)
        _write_onnx(out)  # last: it records the SHA-256 of best.pt as finally written
    return result


def _write_onnx(out: Path) -> None:
    """``best.onnx`` beside ``best.pt``, last (after every rewrite of best.pt): predict runs it
    with ONNX Runtime, without torch. ~0.2 s; a failure only warns."""
    from ..models.onnx import write_onnx_beside

    if (out / "best.pt").is_file():
        write_onnx_beside(out / "best.pt")


#: the files of a run folder (see the module docstring)
RUN_FILES = (
    "best.pt",
    "best.onnx",
    "last.pt",
    "result.json",
    "history.csv",
    "curves.png",
    "split.json",
    "config.yaml",
    "provenance.json",
)


def _remove_run_files(out: Path) -> None:
    """A fresh run never leaves an earlier run's checkpoints or results beside its own."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the loop


def _fit(
    state: TrainState,
    data: TrainingData,
    loader: DataLoader,
    callbacks: list[Callback],
    progress: bool,
    log: Callable[[str], None],
) -> None:
    """Epochs from ``state.epoch`` until the last one or until a callback stops the run."""
    t = state.cfg.train
    if state.status != "ok":  # resumed after the stop was decided: end as the run would have
        return
    with _progress_bar(progress) as bar:
        for epoch in range(state.epoch, t.epochs):
            state.epoch = epoch
            e0 = time.time()
            task = bar.add_task(f"epoch {epoch + 1}/{t.epochs}", total=len(loader)) if bar else None
            advance = partial(bar.update, task, advance=1) if bar else None
            train_loss, train_s = _train_epoch(state, loader, callbacks, advance)
            if bar:
                bar.remove_task(task)
            if state.status != "ok":  # the training loss collapsed
                break
            scores = validate(state.eval_model, data.val, state.loss_fn, state.device, t.threshold)
            row = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                **scores.as_dict(),
                "lr": state.lr,
                "train_seconds": train_s,
                "seconds": time.time() - e0,
            }
            state.history.append(row)
            if state.dist.is_main:
                log(
                    f"epoch {epoch + 1}/{t.epochs}  train {train_loss:.4f}  "
                    f"val {scores.val_loss:.4f}  IoU {scores.val_iou:.3f} (pooled "
                    f"{scores.val_iou_pooled:.3f})  fg {scores.val_pred_fg:.4f}/"
                    f"{scores.val_true_fg:.4f}  {row['seconds']:.1f}s"
                )
            for cb in callbacks:
                cb.on_epoch_end(state, row, scores)
            if state.status != "ok":
                break


def _train_epoch(
    state: TrainState, loader: DataLoader, callbacks: list[Callback], advance: Callable[[], None] | None
) -> tuple[float, float]:
    """One pass over the epoch's crops: (mean training loss over all processes, seconds)."""
    t = state.cfg.train
    # every epoch reseeds from (seed, epoch): a resumed run continues identically
    torch.manual_seed(t.seed * 100003 + state.epoch)
    loader.dataset.set_epoch(state.epoch)
    state.model.train()
    run_loss, n_seen, t0 = 0.0, 0, time.time()
    for step, (x, y) in enumerate(loader):
        state.step = step
        loss = _train_step(
            state, x.to(state.device, non_blocking=True), y.to(state.device, non_blocking=True), callbacks
        )
        if loss is None:
            break
        run_loss += float(loss.detach()) * len(x)
        n_seen += len(x)
        if advance:
            advance()
    seconds = time.time() - t0
    if state.dist.active:
        import torch.distributed as dist

        sums = torch.tensor([run_loss, float(n_seen)], dtype=torch.float64, device=state.device)
        dist.all_reduce(sums)
        run_loss, n_seen = float(sums[0]), int(sums[1])
    return run_loss / max(n_seen, 1), seconds


def _train_step(
    state: TrainState, x: torch.Tensor, y: torch.Tensor, callbacks: list[Callback]
) -> torch.Tensor | None:
    """Forward, backward, clip, optimizer and scheduler step; None when the run was stopped."""
    opt, scaler = state.optimizer, state.scaler
    state.lr = opt.param_groups[0]["lr"]
    opt.zero_grad(set_to_none=True)
    with torch.autocast(
        state.device.type, dtype=state.amp_dtype or torch.bfloat16, enabled=state.amp_dtype is not None
    ):
        logits = state.net(x)
    loss = state.loss_fn(logits.float(), y)
    for cb in callbacks:
        cb.on_loss(state, loss)
    if state.status != "ok":
        return None
    scaler.scale(loss).backward()
    if state.cfg.train.grad_clip:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), state.cfg.train.grad_clip)
    scaler.step(opt)
    scaler.update()
    state.scheduler.step()
    for cb in callbacks:
        cb.on_step_end(state)
    return loss


@contextmanager
def _progress_bar(show: bool):
    if not show:
        yield None
        return
    from rich.progress import Progress

    bar = Progress(transient=True)
    bar.start()
    try:
        yield bar
    finally:
        bar.stop()


# ----------------------------------------------------------------------------- setup and results


def _prepare_run(cfg: Config, out: Path, dist: Distributed) -> tuple[TrainingData, DataLoader]:
    """Data, split and batches; the run folder's config, split and provenance (main process)."""
    t = cfg.train
    data = prepare_data(cfg)
    dataset = CropDataset(data.train, cfg.data, cfg.augment, seed=t.seed)
    loader = crop_loader(
        dataset,
        t.batch_size,
        dist.rank,
        dist.world_size,
        t.num_workers,
        pin_memory=dist.device.type == "cuda",
    )
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        write_json(out / "split.json", {**data.split.as_dict(), "labels": data.labels.as_dict()})
        write_provenance(out, "train", seed=t.seed, device=str(dist.device), world_size=dist.world_size)
    return data, loader


def _build_state(
    cfg: Config, out: Path, dist: Distributed, data: TrainingData, ckpt: dict | None, steps_per_epoch: int
) -> TrainState:
    """Model (resumed, fine-tuned or fresh), optimizer, schedule, scaler and EMA of a run."""
    t = cfg.train
    torch.manual_seed(t.seed)
    model = build_model(cfg.model, cfg.data.channels).to(dist.device)
    if ckpt is not None:
        model.load_state_dict(ckpt["model_state"])
    elif t.init_weights:
        _init_from(model, t.init_weights)
    net = model
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dist.device] if dist.device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    amp_dtype = None
    if t.amp and dist.device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    meta = {
        "model": cfg.model.model_dump(),
        "in_channels": cfg.data.channels,
        "threshold": t.threshold,
        "instances": cfg.instances.model_dump(),
        "bead_area_px": bead_area_stats(data.train),
        "parameters": count_parameters(model),
        "trained_on": str(cfg.data.path),
        "normalization": normalization_record(cfg.data.normalization),
    }
    if cfg.model.centre_head:
        meta["centres"] = {
            "target": cfg.data.centre_target,
            "sigma_px": cfg.data.centre_sigma_px,
            "single_bead_area_px": data.single_bead_area_px,
        }
    state = TrainState(
        cfg=cfg,
        out=out,
        dist=dist,
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, cfg.schedule, steps_per_epoch, t.epochs),
        scaler=torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16),
        ema=build_ema(model, t.ema_decay) if t.ema_decay else None,
        loss_fn=build_loss(cfg.loss, cfg.model.centre_head),
        meta=meta,
        amp_dtype=amp_dtype,
    )
    if ckpt is not None:
        state.restore(ckpt, steps_per_epoch)
    return state


def add_fingerprint(out: Path, samples: list, cfg: Config) -> None:
    """Store the training-data fingerprint of the kept model (best.pt) in best.pt and last.pt
    (``meta["fingerprint"]``, see :mod:`beadseg.core.domain`), so prediction can flag images unlike
    the training data."""
    from ..models.checkpoint import model_from_checkpoint, save_checkpoint
    from .validation import fingerprint_samples

    best = load_checkpoint(out / "best.pt")
    model = model_from_checkpoint(best, out / "best.pt")
    fp = fingerprint_samples(model, samples, cfg.instances, torch.device("cpu"), cfg.train.threshold)
    for name in ("best.pt", "last.pt"):
        ckpt = best if name == "best.pt" else load_checkpoint(out / name)
        ckpt["meta"]["fingerprint"] = fp
        save_checkpoint(out / name, ckpt)


#: fine-tuning's learning rate, as a fraction of ``optim.lr``'s default (see fine_tuning_config)
FINE_TUNE_LR_FACTOR = 0.1


def fine_tuning_config(cfg: Config, log: Callable[[str], None] = print) -> Config:
    """The config of a run that starts from ``train.init_weights``: the network (``model.*``,
    ``data.channels``) and the input normalisation are the source checkpoint's, since weights
    only fit their own architecture and were trained on their own input scaling. Unless
    ``optim.lr`` is set (YAML or ``--set``), the learning rate is a tenth of the default: at the
    default 3e-3 one epoch of 32 crops turned the shipped model (IoU 0.875 on synthetic tiles)
    into one that marks 62 % of the pixels (collapsed); at 3e-4 two epochs kept it at 0.84."""
    from ..core.normalization import LEGACY

    meta = load_checkpoint(resolve_model_path(cfg.train.init_weights))["meta"]
    model = ModelConfig(**{**ModelConfig().model_dump(), **meta["model"]})
    norm = (meta.get("normalization") or LEGACY)["method"]
    data = cfg.data.model_copy(update={"channels": meta["in_channels"], "normalization": norm})
    if model != cfg.model or data != cfg.data:
        log(
            f"fine-tuning {cfg.train.init_weights}: its network and input scaling ({model.name}, "
            f"centre head {model.centre_head}, {norm} normalisation) replace model.* and data.*"
        )
    update = {"model": model, "data": data}
    if "lr" not in cfg.optim.model_fields_set:
        update["optim"] = cfg.optim.model_copy(update={"lr": cfg.optim.lr * FINE_TUNE_LR_FACTOR})
        log(f"fine-tuning: learning rate {update['optim'].lr:g} (set optim.lr to choose another)")
    return cfg.model_copy(update=update)


def _init_from(model: torch.nn.Module, source: str) -> None:
    """Fine-tuning: copy weights from a checkpoint of the same architecture."""
    state = load_checkpoint(resolve_model_path(source))
    try:
        model.load_state_dict(inference_weights(state))
    except RuntimeError:
        raise ConfigError(
            f"train.init_weights = {source}: its architecture ({state['meta']['model']}) differs "
            "from model.*; set model.* to match it"
        ) from None


def _result(state: TrainState, data: TrainingData, crops_per_epoch: int) -> dict:
    """The content of ``result.json``."""
    history, best = state.history, state.best
    final = history[-1] if history else {}
    train_s = sum(h["train_seconds"] for h in history)
    return {
        "status": state.status,
        "reason": state.reason,
        "model": state.cfg.model.name,
        "parameters": state.meta["parameters"],
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "best_val_iou": best.get("val_iou"),
        "best_val_iou_pooled": best.get("val_iou_pooled"),
        "monitor": state.cfg.train.monitor,
        "best_monitor": best["value"] if best["epoch"] > 0 else None,
        "final_val_iou": final.get("val_iou"),
        "final_over_best": (final.get("val_iou", 0) / best["val_iou"]) if best.get("val_iou") else None,
        "seconds": state.elapsed_s(),
        "train_crops_per_s": len(history) * crops_per_epoch / max(train_s, 1e-9) if history else None,
        "device": str(state.device),
        "n_train_images": len(data.train),
        "n_val_images": len(data.val),
        "val_groups": data.split.as_dict()["val_groups"],
        "world_size": state.dist.world_size,
        "rank": state.dist.rank,
    }


def _finish(state: TrainState, result: dict, callbacks: list[Callback], log: Callable[[str], None]) -> None:
    """Main process, after the process group is gone: result.json, final checkpoints, curves."""
    if state.status == "collapsed":
        log(f"COLLAPSED: {state.reason}")
    elif state.reason:
        log(state.reason)
    write_json(state.out / "result.json", result)
    for cb in callbacks:
        cb.on_train_end(state, result)
    if state.history:
        from ..outputs.figures import plot_curves

        plot_curves(state.history, state.out / "curves.png", title=f"{state.cfg.model.name} ({state.status})")
