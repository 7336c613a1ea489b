"""Model registry: ``create_model(name, **kw)`` and the table `beadseg models` prints."""

from __future__ import annotations

import difflib

import torch
from torch import nn

from ..core.errors import ConfigError
from .attention_resunet import AttentionResUNet
from .attention_unet import AttentionUNet
from .unet import UNet

MODELS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "attention_unet": AttentionUNet,
    "attention_resunet": AttentionResUNet,
}


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of ``MODELS`` (``unet``, ``attention_unet``, ``attention_resunet``).
    **kwargs
        ``in_channels``, ``base_channels``, ``depth``, ``norm``, ``dropout``, ``upsample``,
        ``out_channels`` (1: foreground logits; 2: foreground and bead-centre logits).

    Raises
    ------
    ConfigError
        For an unknown name, listing the valid ones and the closest match.
    """
    if name not in MODELS:
        close = difflib.get_close_matches(name, MODELS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint} (valid: {', '.join(MODELS)})")
    return MODELS[name](**kwargs)


def build_model(model_cfg, in_channels: int) -> nn.Module:
    """The network described by a model config (a :class:`beadseg.core.config.ModelConfig` or the
    dict of one, as stored in checkpoints): the one place a config becomes a network."""
    cfg = dict(model_cfg if isinstance(model_cfg, dict) else model_cfg.model_dump())
    # checkpoints written before the centre head have no such key: one output channel
    out_channels = 2 if cfg.pop("centre_head", False) else 1
    return create_model(cfg.pop("name"), in_channels=in_channels, out_channels=out_channels, **cfg)


def has_centre_head(model_cfg) -> bool:
    """True when a model config (or a checkpoint's ``meta["model"]``) has the centre head."""
    cfg = model_cfg if isinstance(model_cfg, dict) else model_cfg.model_dump()
    return bool(cfg.get("centre_head", False))


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that follows a convolution into that convolution (eval mode only).

    Same outputs to float precision, ~10 % less time on CPU (one pass over the activations
    fewer per layer). The model is changed in place and returned.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        children = list(seq.children())
        for i in range(len(children) - 1):
            a, b = children[i], children[i + 1]
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(a, b)
                seq[i + 1] = nn.Identity()
                children[i + 1] = seq[i + 1]
    return model


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flops_per_megapixel(model: nn.Module, in_channels: int = 3, side: int = 256) -> float:
    """Multiply-add FLOPs (x2) of convolutions per megapixel of input, measured with hooks."""
    total = 0.0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        cin = mod.in_channels // mod.groups
        total += 2.0 * out.numel() * cin * k

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_channels, side, side))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total / (side * side / 1e6)


def model_table(base_channels: int = 8, depth: int = 3, in_channels: int = 3) -> list[dict]:
    """One row per registered model: parameters and GFLOPs per megapixel at the given size."""
    rows = []
    for name in MODELS:
        m = create_model(name, in_channels=in_channels, base_channels=base_channels, depth=depth)
        rows.append(
            {
                "model": name,
                "base_channels": base_channels,
                "depth": depth,
                "parameters": count_parameters(m),
                "gflops_per_mp": flops_per_megapixel(m, in_channels) / 1e9,
                "description": (MODELS[name].__doc__ or "").strip().splitlines()[0],
            }
        )
    return rows
