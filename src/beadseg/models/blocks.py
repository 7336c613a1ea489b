"""Building blocks shared by every network in the registry."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """A normalisation layer by name: batch, group (8 groups or fewer), instance or none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm {kind!r} is not one of batch, group, instance, none")


def _conv_norm_act(cin: int, cout: int, norm: str, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none"),
        norm_layer(norm, cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return layers


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by normalisation and ReLU (the classic U-Net block)."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", dropout: float = 0.0):
        layers = _conv_norm_act(cin, cout, norm)
        if dropout:
            layers.append(nn.Dropout2d(dropout))
        layers += _conv_norm_act(cout, cout, norm)
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual block: two 3x3 convolutions plus a (1x1 when widths differ) shortcut."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        layers = _conv_norm_act(cin, cout, norm)
        if dropout:
            layers.append(nn.Dropout2d(dropout))
        layers += _conv_norm_act(cout, cout, norm, act=False)
        self.body = nn.Sequential(*layers)
        self.shortcut = (
            nn.Identity()
            if cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), norm_layer(norm, cout))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018) weighting a skip connection by the decoder signal."""

    def __init__(self, gate_ch: int, skip_ch: int, inter_ch: int, norm: str = "batch"):
        super().__init__()
        self.w_g = nn.Sequential(nn.Conv2d(gate_ch, inter_ch, 1, bias=False), norm_layer(norm, inter_ch))
        self.w_x = nn.Sequential(nn.Conv2d(skip_ch, inter_ch, 1, bias=False), norm_layer(norm, inter_ch))
        self.psi = nn.Sequential(nn.Conv2d(inter_ch, 1, 1), nn.Sigmoid())
        self.act = nn.ReLU(inplace=True)

    def forward(self, gate: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return skip * self.psi(self.act(self.w_g(gate) + self.w_x(skip)))


class Up(nn.Module):
    """Upsampling by 2: transposed convolution, or bilinear interpolation + 1x1 convolution."""

    def __init__(self, cin: int, cout: int, mode: str = "transpose"):
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        elif mode == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(cin, cout, 1),
            )
        else:
            raise ValueError(f"upsample {mode!r} is not one of transpose, bilinear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class EncoderDecoder(nn.Module):
    """U-shaped network shared by the registry's models.

    Parameters
    ----------
    in_channels : int
        Image channels.
    base_channels : int
        Width of the first level; doubled at each level down.
    depth : int
        Number of down-sampling steps.
    norm, dropout, upsample
        See :class:`beadseg.core.config.ModelConfig`.
    out_channels : int
        1, or 2 with a centre head.
    block : type, optional
        :class:`ConvBlock` or :class:`ResBlock`; default: the class attribute ``block``.
    attention : bool, optional
        Gate skip connections with :class:`AttentionGate`; default: the class attribute
        ``attention``. The registry's networks differ only in these two attributes.

    Any input size works: the input is padded (reflect) to a multiple of ``2**depth`` and the
    logits are cropped back. The output is ``out_channels`` logit channels with no normalisation
    after them: foreground, then (with a centre head) bead centres.
    """

    block: type[nn.Module] = ConvBlock
    attention: bool = False

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 16,
        depth: int = 3,
        norm: str = "batch",
        dropout: float = 0.0,
        upsample: str = "transpose",
        out_channels: int = 1,
        block: type[nn.Module] | None = None,
        attention: bool | None = None,
    ):
        block = block or self.block
        attention = self.attention if attention is None else attention
        super().__init__()
        self.depth = depth
        self.out_channels = out_channels
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        cin = in_channels
        for i, w in enumerate(widths):
            self.encoders.append(block(cin, w, norm, dropout if i == depth else 0.0))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(depth, 0, -1):
            deep, skip = widths[i], widths[i - 1]
            self.ups.append(Up(deep, skip, upsample))
            self.gates.append(
                AttentionGate(skip, skip, max(skip // 2, 1), norm) if attention else nn.Identity()
            )
            self.decoders.append(block(2 * skip, skip, norm, 0.0))
        # logits: no normalisation on the output; channel 0 foreground, 1 bead centres (if any)
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, gate, dec in zip(self.ups, self.gates, self.decoders):
            g = up(x)
            s = skips.pop()
            s = gate(g, s) if not isinstance(gate, nn.Identity) else s
            x = dec(torch.cat([g, s], dim=1))
        return self.head(x)[..., :h, :w]
