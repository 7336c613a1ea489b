"""`beadseg train`: the training loop, checkpoints, exact resume and the collapse guard.

A run folder holds: ``config.yaml`` (resolved), ``split.json``, ``history.csv``, ``curves.png``,
``best.pt`` and ``last.pt`` (atomic, loadable with ``weights_only=True``), ``result.json``
(status ok / early-stopped / collapsed / time-limit) and ``provenance.json``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .checkpoint import (
    CHECKPOINT_FORMAT,
    inference_weights,
    load_checkpoint,
    resolve_model_path,
    save_checkpoint,
)
from .config import Config, save_config
from .data.dataset import CropDataset, Sample, load_samples, to_tensor
from .data.split import grouped_split
from .devices import resolve_device
from .errors import ConfigError
from .instances import label_components
from .io import find_pairs, write_csv
from .losses import build_loss
from .metrics import mean_dice, mean_iou, pixel_scores, pooled
from .models import build_model, count_parameters
from .naming import source_frame
from .provenance import write_json, write_provenance

# ----------------------------------------------------------------------------- helpers


def distributed_setup(device_name: str) -> tuple[int, int, torch.device | None]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1).

    NCCL on GPUs, gloo on CPU. Returns (rank, world size, this rank's device or None).
    """
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") or \
        device_name.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float, schedule: str,
          min_ratio: float) -> float:
    """Learning rate of a step: linear warm-up, then cosine decay to ``min_ratio * peak``
    (``cosine``), the same with a 30 % warm-up (``onecycle``), or flat (``constant``)."""
    if schedule == "onecycle":
        warmup_steps = max(warmup_steps, int(0.3 * total_steps))
    if warmup_steps and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    t = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


class EMA:
    """Exponential moving average of model weights (evaluated instead of the raw weights)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.shadow[k].copy_(v)


def _init_from(model: torch.nn.Module, source: str) -> None:
    """Fine-tuning: copy weights from a checkpoint of the same architecture."""
    state = load_checkpoint(resolve_model_path(source))
    weights = inference_weights(state)
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        raise ConfigError(
            f"train.init_weights = {source}: its architecture ({state['meta']['model']}) differs "
            "from model.*; set model.* to match it"
        ) from None


# ----------------------------------------------------------------------------- validation


@torch.no_grad()
def validate(model, samples: list[Sample], loss_fn, device, threshold: float) -> dict:
    """Whole-tile validation, no augmentation: loss, IoU (mean and pooled), Dice, fg fractions."""
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
    return {
        "val_loss": float(np.mean(losses)),
        "val_iou": mean_iou(scores),
        "val_iou_pooled": p.iou,
        "val_dice": mean_dice(scores),
        "val_pred_fg": p.pred_fraction,
        "val_true_fg": p.true_fraction,
    }


# ----------------------------------------------------------------------------- training


def _prepare(cfg: Config):
    if not cfg.data.path:
        raise ConfigError("data.path is not set; give the data folder (beadseg train DATA)")
    pairs = find_pairs(cfg.data.path)
    samples = load_samples(pairs, cfg.data.channels,
                           cfg.data.align_radius_px if cfg.data.align_masks else None)
    groups = {s.name: source_frame(s.name) for s in samples}
    density = {s.name: label_components(s.mask)[1] for s in samples}
    split = grouped_split(groups, density, cfg.split.val_fraction, cfg.split.folds,
                          cfg.split.fold, cfg.split.seed)
    by_name = {s.name: s for s in samples}
    train_s = [by_name[n] for n in split.train]
    val_s = [by_name[n] for n in split.val]
    return split, train_s, val_s


def _bead_area_stats(samples: list[Sample]) -> dict:
    areas = np.concatenate(
        [np.bincount(label_components(s.mask)[0].ravel())[1:] for s in samples] + [np.zeros(0)]
    )
    if not len(areas):
        return {"median": 0.0, "p05": 0.0, "p95": 0.0}
    return {"median": float(np.median(areas)), "p05": float(np.percentile(areas, 5)),
            "p95": float(np.percentile(areas, 95))}


def train(cfg: Config, out: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True, log: Callable[[str], None] = print,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train a segmentation model.

    Parameters
    ----------
    cfg : Config
        The resolved configuration (ignored when resuming: the run's own config is used).
    out : path
        Run folder (created). Required unless ``resume`` is given.
    resume : path, optional
        A run folder with ``last.pt``: continue exactly where it stopped.
    progress : bool
        Show a progress bar.
    log : callable
        Receives one line per epoch.
    on_epoch : callable, optional
        Called with (epoch, history row) after each validation, e.g. to prune a sweep trial
        (it may raise to stop the run).

    Returns
    -------
    dict
        The content of ``result.json`` (plus ``rank``; only rank 0 writes files).

    Notes
    -----
    Under torchrun (``WORLD_SIZE`` > 1) this joins the process group and destroys it before
    returning. A script of yours that calls ``train`` under torchrun should end with
    ``os._exit(0)``, as ``beadseg train`` does: gloo's threads can abort a normal interpreter
    shutdown (see ``cli._exit_torchrun_worker``).
    """
    state = None
    if resume is not None:
        out = Path(resume)
        state = load_checkpoint(out / "last.pt")
        cfg = Config.model_validate(state["config"])
        if state.get("finished"):
            log(f"{out} already finished ({state['status']}); nothing to resume")
            return {**state["result"]}
    if out is None:
        raise ConfigError("give an output folder (--out RUN_DIR)")
    out = Path(out)
    t = cfg.train
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    rank, world, dist_device = distributed_setup(t.device)
    main_rank = rank == 0  # only rank 0 writes
    device = dist_device or resolve_device(t.device)
    if world > 1 and t.batch_size % world:
        raise ConfigError(f"train.batch_size = {t.batch_size} must be a multiple of the "
                          f"{world} processes")
    split, train_s, val_s = _prepare(cfg)
    dataset = CropDataset(train_s, cfg.data, cfg.augment, seed=t.seed)

    if main_rank:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        write_json(out / "split.json", split.as_dict())
        write_provenance(out, "train", seed=t.seed, device=str(device), world_size=world)

    torch.manual_seed(t.seed)
    model = build_model(cfg.model, cfg.data.channels).to(device)
    if t.init_weights and state is None:
        _init_from(model, t.init_weights)
    if state is not None:
        model.load_state_dict(state["model_state"])
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr,
                            weight_decay=cfg.optim.weight_decay)
    ema = EMA(model, t.ema_decay) if t.ema_decay else None
    loss_fn = build_loss(cfg.loss)
    use_amp = t.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    steps_per_epoch = max(1, math.ceil(len(dataset) / t.batch_size))
    total_steps = steps_per_epoch * t.epochs
    warmup = int(cfg.schedule.warmup_epochs * steps_per_epoch)
    maximize = t.monitor != "val_loss"
    history: list[dict] = []
    best = {"epoch": -1, "value": -math.inf if maximize else math.inf}
    bad_epochs = collapse_count = 0
    start_epoch = 0
    elapsed_before = 0.0
    meta = {
        "model": cfg.model.model_dump(),
        "in_channels": cfg.data.channels,
        "threshold": t.threshold,
        "instances": cfg.instances.model_dump(),
        "bead_area_px": _bead_area_stats(train_s),
        "parameters": count_parameters(model),
        "trained_on": str(cfg.data.path),
    }
    if state is not None:
        opt.load_state_dict(state["optimizer_state"])
        if ema is not None and state.get("ema_state"):
            ema.shadow = {k: v.to(device) for k, v in state["ema_state"].items()}
        if state.get("scaler_state"):
            scaler.load_state_dict(state["scaler_state"])
        history = list(state["history"])
        best = dict(state["best"])
        bad_epochs, collapse_count = state["bad_epochs"], state["collapse_count"]
        start_epoch = state["epoch"] + 1
        elapsed_before = state["elapsed_s"]
        log(f"resuming {out} at epoch {start_epoch + 1}")

    status, reason = "ok", ""
    t0 = time.time()

    def checkpoint(epoch: int, finished: bool = False, result: dict | None = None) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "model_state": model.state_dict(),
            "ema_state": ema.shadow if ema else None,
            "optimizer_state": opt.state_dict(),
            "scaler_state": scaler.state_dict() if scaler.is_enabled() else None,
            "epoch": epoch,
            "config": cfg.model_dump(mode="json"),
            "history": history,
            "best": best,
            "bad_epochs": bad_epochs,
            "collapse_count": collapse_count,
            "elapsed_s": elapsed_before + time.time() - t0,
            "meta": meta,
            "finished": finished,
            "status": status,
            "result": result or {},
        }

    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
    try:
        for epoch in range(start_epoch, t.epochs):
            e0 = time.time()
            # every epoch reseeds from (seed, epoch): a resumed run continues identically
            torch.manual_seed(t.seed * 100003 + epoch)
            dataset.set_epoch(epoch)
            model.train()
            task = bar.add_task(f"epoch {epoch + 1}/{t.epochs}", total=steps_per_epoch) if bar else None
            run_loss, n_seen = 0.0, 0
            t_train = time.time()
            for step in range(steps_per_epoch):
                # each process takes its share of the global batch
                idx = range(step * t.batch_size, min((step + 1) * t.batch_size, len(dataset)))
                idx = idx[rank::world]
                xs, ys = zip(*(dataset[i] for i in idx))
                x = torch.stack(xs).to(device)
                y = torch.stack(ys).to(device)
                lr = lr_at(epoch * steps_per_epoch + step, total_steps, warmup, cfg.optim.lr,
                           cfg.schedule.name, cfg.schedule.min_lr_ratio)
                for g in opt.param_groups:
                    g["lr"] = lr
                opt.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    logits = net(x)
                loss = loss_fn(logits.float(), y)
                finite = bool(torch.isfinite(loss))
                if world > 1:  # every process must stop together, or the others wait forever
                    import torch.distributed as dist

                    flag = torch.tensor([float(finite)], device=device)
                    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
                    finite = bool(flag.item())
                if not finite:
                    status, reason = "collapsed", (
                        f"training loss became {float(loss)} at epoch {epoch + 1}, step {step + 1} "
                        f"(learning rate {lr:.3g}); lower optim.lr or enable train.grad_clip"
                    )
                    break
                scaler.scale(loss).backward()
                if t.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                scaler.step(opt)
                scaler.update()
                if ema:
                    ema.update(model)
                run_loss += float(loss.detach()) * len(idx)
                n_seen += len(idx)
                if bar:
                    bar.update(task, advance=1)
            t_train = time.time() - t_train
            if world > 1:
                import torch.distributed as dist

                sums = torch.tensor([run_loss, float(n_seen)], dtype=torch.float64)
                dist.all_reduce(sums)
                run_loss, n_seen = float(sums[0]), int(sums[1])
            if bar and task is not None:
                bar.remove_task(task)
            if status == "collapsed":
                break
            eval_model = model
            if ema:
                eval_model = build_model(cfg.model, cfg.data.channels).to(device)
                eval_model.load_state_dict(ema.shadow)
            val = validate(eval_model, val_s, loss_fn, device, t.threshold)
            row = {"epoch": epoch + 1, "train_loss": run_loss / max(n_seen, 1), **val,
                   "lr": lr, "train_seconds": t_train, "seconds": time.time() - e0}
            history.append(row)
            if main_rank:
                log(f"epoch {epoch + 1}/{t.epochs}  train {row['train_loss']:.4f}  "
                f"val {val['val_loss']:.4f}  IoU {val['val_iou']:.3f} (pooled "
                f"{val['val_iou_pooled']:.3f})  fg {val['val_pred_fg']:.4f}/{val['val_true_fg']:.4f}"
                f"  {row['seconds']:.1f}s")
            value = val[t.monitor]
            improved = value > best["value"] if maximize else value < best["value"]
            if not np.isfinite(val["val_loss"]):
                status, reason = "collapsed", (
                    f"validation loss is {val['val_loss']} at epoch {epoch + 1}; lower optim.lr")
            elif val["val_true_fg"] > 0 and epoch + 1 > t.collapse_min_epoch:
                ratio = val["val_pred_fg"] / val["val_true_fg"]
                collapse_count = collapse_count + 1 if (ratio < 0.1 or ratio > 10) else 0
                if collapse_count >= t.collapse_patience:
                    status, reason = "collapsed", (
                        f"predicted foreground {val['val_pred_fg']:.4f} vs true "
                        f"{val['val_true_fg']:.4f} ({ratio:.2g}x) for {collapse_count} epochs in "
                        f"a row up to epoch {epoch + 1}: the model predicts "
                        f"{'all background' if ratio < 1 else 'nearly everything'}; lower "
                        "optim.lr, check masks with `beadseg analyze`, or use loss bce_dice")
            if improved and status == "ok":
                best = {"epoch": epoch + 1, "value": float(value), **val}
                bad_epochs = 0
                if main_rank:
                    save_checkpoint(out / "best.pt", checkpoint(epoch))
            else:
                bad_epochs += 1
            if main_rank:
                write_csv(out / "history.csv", history)
            if status == "ok" and t.early_stop_patience and bad_epochs >= t.early_stop_patience:
                status, reason = "early-stopped", (
                    f"{t.monitor} did not improve for {bad_epochs} epochs "
                    f"(best {best['value']:.4f} at epoch {best['epoch']})")
            out_of_time = bool(t.max_minutes and (
                elapsed_before + time.time() - t0) / 60 >= t.max_minutes)
            if world > 1:  # rank 0's clock decides, so every process stops at the same epoch
                import torch.distributed as dist

                flag = torch.tensor([int(out_of_time)])
                dist.broadcast(flag, 0)
                out_of_time = bool(flag.item())
            if status == "ok" and out_of_time:
                status, reason = "time-limit", f"stopped after {t.max_minutes} minutes"
            if main_rank:
                save_checkpoint(out / "last.pt", checkpoint(epoch))
            if on_epoch is not None:
                on_epoch(epoch + 1, row)
            if status != "ok":
                break
    finally:
        if bar:
            bar.stop()

    final = history[-1] if history else {}
    result = {
        "status": status,
        "reason": reason,
        "model": cfg.model.name,
        "parameters": meta["parameters"],
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "best_val_iou": best.get("val_iou"),
        "best_val_iou_pooled": best.get("val_iou_pooled"),
        "monitor": t.monitor,
        "best_monitor": best["value"] if best["epoch"] > 0 else None,
        "final_val_iou": final.get("val_iou"),
        "final_over_best": (final.get("val_iou", 0) / best["val_iou"])
        if best.get("val_iou") else None,
        "seconds": elapsed_before + time.time() - t0,
        "train_crops_per_s": len(history) * len(dataset) / max(
            sum(h["train_seconds"] for h in history), 1e-9) if history else None,
        "device": str(device),
        "n_train_images": len(train_s),
        "n_val_images": len(val_s),
        "val_groups": split.as_dict()["val_groups"],
    }
    result["world_size"] = world
    result["rank"] = rank
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # every rank is done with its collectives before any leaves
        dist.destroy_process_group()
    if not main_rank:
        return result
    if status == "collapsed":
        log(f"COLLAPSED: {reason}")
    elif reason:
        log(reason)
    write_json(out / "result.json", result)
    last = checkpoint(len(history) - 1, finished=True, result=result)
    if history:
        save_checkpoint(out / "last.pt", last)
    if not (out / "best.pt").exists() and history:
        save_checkpoint(out / "best.pt", last)
    if history:
        from .plots import plot_curves

        plot_curves(history, out / "curves.png", title=f"{cfg.model.name} ({status})")
    return result

