"""A smaller student of a trained model, distilled on the teacher's own training data.

The student (the teacher's architecture with ``--base`` channels and ``--depth`` levels) learns
the teacher's outputs - both channels (foreground and bead centres) as soft targets, everywhere
- plus the recipe's own loss on the masks, on the same random crops (the teacher's config:
data, crop size, augmentation) for ``--epochs`` epochs of ``data.crops_per_epoch`` crops.
The student keeps the teacher's threshold, instance settings and normalisation; its fingerprint
is measured on the training images with its own weights. Writes ``OUT/student.pt`` and its ONNX
file ``OUT/student.onnx``; ``benchmarks/cheaper_network.py score`` then compares it with the
teacher on the counting benchmark and the held-out real tiles.

    python benchmarks/distill_model.py default --base 4 --depth 3 --epochs 30 --out bench-out/student_b4d3

The teacher's data folders (configs/default_model.yaml: real tiles, exact-truth composites, the
synthetic 80x tiles) are made as ``benchmarks/train_default.py`` makes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import OUT, machine  # noqa: E402
from train_default import training_folders  # noqa: E402

from beadseg.core.config import Config, InstanceConfig  # noqa: E402
from beadseg.data.dataset import CropDataset  # noqa: E402
from beadseg.models import build_model, count_parameters  # noqa: E402
from beadseg.models.checkpoint import (  # noqa: E402
    CHECKPOINT_FORMAT,
    load_checkpoint,
    model_from_checkpoint,
    resolve_model_path,
    save_checkpoint,
)
from beadseg.models.losses import build_loss  # noqa: E402
from beadseg.models.onnx import export_onnx  # noqa: E402
from beadseg.training.data import crop_loader, prepare_data  # noqa: E402
from beadseg.training.validation import fingerprint_samples  # noqa: E402


def teacher_config(state: dict) -> Config:
    """The teacher's training config with its data folders made on this machine."""
    cfg = Config.model_validate(state["config"])
    paths, val = training_folders(holdout=False)
    data = cfg.data.model_copy(update={"path": [str(p) for p in paths], "val_path": [str(p) for p in val]})
    return cfg.model_copy(update={"data": data})


def distill_loss(student_logits, teacher_logits, target, gt_loss, weight: float):
    """Soft-target BCE against the teacher's probabilities (both channels) plus ``weight`` x the
    recipe's loss against the masks."""
    soft = F.binary_cross_entropy_with_logits(student_logits, torch.sigmoid(teacher_logits))
    return soft + weight * gt_loss(student_logits, target)


def cosine_lr(step: int, total: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return lr * (0.02 + 0.98 * 0.5 * (1 + torch.cos(torch.tensor(t * torch.pi)).item()))


def distill(
    teacher_path: Path, base: int, depth: int, epochs: int, out: Path, gt_weight: float, lr: float
) -> Path:
    state = load_checkpoint(teacher_path)
    cfg = teacher_config(state)
    teacher = model_from_checkpoint(state, teacher_path).eval()
    data = prepare_data(cfg)
    model_cfg = cfg.model.model_copy(update={"base_channels": base, "depth": depth})
    torch.manual_seed(cfg.train.seed)
    student = build_model(model_cfg, cfg.data.channels)
    dataset = CropDataset(data.train, cfg.data, cfg.augment, seed=cfg.train.seed)
    loader = crop_loader(dataset, cfg.train.batch_size)
    steps = epochs * len(loader)
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=cfg.optim.weight_decay)
    gt_loss = build_loss(cfg.loss, cfg.model.centre_head)
    history, step, t0 = [], 0, time.time()
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        student.train()
        total, n = 0.0, 0
        for x, y in loader:
            for g in opt.param_groups:
                g["lr"] = cosine_lr(step, steps, lr, len(loader))
            with torch.no_grad():
                t_logits = teacher(x)
            loss = distill_loss(student(x), t_logits, y, gt_loss, gt_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.train.grad_clip or 1.0)
            opt.step()
            total, n, step = total + loss.item() * len(x), n + len(x), step + 1
        history.append({"epoch": epoch + 1, "loss": total / n, "minutes": (time.time() - t0) / 60})
        print(json.dumps(history[-1]), flush=True)
    student.eval()
    inst = InstanceConfig(**state["meta"].get("instances", {}))
    fp = fingerprint_samples(
        student, data.train, inst, torch.device("cpu"), state["meta"].get("threshold", 0.5)
    )
    meta = {
        **state["meta"],
        "model": model_cfg.model_dump(),
        "parameters": count_parameters(student),
        "fingerprint": fp,
        "distilled_from": {"sha256_of": teacher_path.name, "epochs": epochs, "gt_weight": gt_weight},
    }
    out.mkdir(parents=True, exist_ok=True)
    ckpt = save_checkpoint(
        out / "student.pt",
        {
            "format": CHECKPOINT_FORMAT,
            "model_state": student.state_dict(),
            "meta": meta,
            "config": {**cfg.model_dump(mode="json"), "model": model_cfg.model_dump()},
            "history": history,
        },
    )
    export_onnx(ckpt, ckpt.with_suffix(".onnx"))
    (out / "distill.json").write_text(
        json.dumps({"machine": machine(), "teacher": str(teacher_path), "history": history}, indent=2) + "\n"
    )
    return ckpt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("teacher", nargs="?", default="default", help="run folder, checkpoint or default")
    ap.add_argument("--base", type=int, default=4, help="student base channels")
    ap.add_argument("--depth", type=int, default=3, help="student depth")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--gt-weight", type=float, default=0.5, help="weight of the recipe's loss on the masks")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    out = a.out or OUT / f"student_b{a.base}d{a.depth}"
    path = distill(resolve_model_path(a.teacher), a.base, a.depth, a.epochs, out, a.gt_weight, a.lr)
    print(f"wrote {path} and {path.with_suffix('.onnx')}")


if __name__ == "__main__":
    main()
