"""beadseg's ``background`` input normalisation as torch operations, for exported graphs: the
normalisation step of :func:`beadseg.core.normalization.model_input` (tested equal on 8-bit,
16-bit and float images), given the image already in the model's channel count.

bioimage.io's preprocessing vocabulary (scale_linear, scale_range, zero_mean_unit_variance, ...)
cannot say "divide by the mode of the grey histogram", so the bioimage.io package carries this
step inside its ONNX and TorchScript graphs (:func:`beadseg.integrations.export.bioimageio.export_bioimageio`
says so in the model card). It follows :func:`beadseg.core.normalization.background_level` step by
step, in float64: the same subsample (every ``step``-th row and column, ``step`` from the image
size), the 0.5/99.5 percentiles (linear interpolation), a histogram of ``bins`` bins between
them smoothed by a Gaussian of 3 bins (zero outside), its peak, and per channel the median of
the pixels within 1/32 of the range around it (grey values as shares of the range on the same
grid of 1/``RANGE_GRID``); then ``level + gain * (x / b - 1)`` in float32.

Every size is computed from the input's shape with tensor operations, so one traced graph
serves any batch, height and width (ONNX opset 17: TopK, ScatterElements with ``add``, Range).
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.normalization import RANGE_GRID

SMOOTH_SIGMA_BINS = 3.0  # background_level's gaussian_filter1d(hist, 3.0, mode="constant")


def _lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """numpy's percentile interpolation (``_lerp``: from the nearer end)."""
    d = b - a
    return torch.where(t >= 0.5, b - d * (1 - t), a + d * t)


def _percentile(sorted_v: torch.Tensor, q: float) -> torch.Tensor:
    """``np.percentile(v, q)`` ('linear') along the last axis of sorted values."""
    n = torch._shape_as_tensor(sorted_v)[-1]
    pos = (n - 1).double() * (q / 100.0)
    lo = torch.floor(pos)
    hi = torch.minimum(lo + 1, (n - 1).double())
    a = sorted_v.gather(-1, lo.long().expand(sorted_v.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    b = sorted_v.gather(-1, hi.long().expand(sorted_v.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    return _lerp(a, b, pos - lo)


def _masked_median(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Median of ``values[..., keep]`` along the last axis (numpy: mean of the two middle ones
    for an even count); ``keep`` broadcasts over the leading axes."""
    big = torch.full_like(values, float("inf"))
    s = torch.sort(torch.where(keep, values, big), dim=-1)[0]
    m = keep.expand(values.shape).sum(-1, keepdim=True)
    lo = torch.clamp((m - 1) // 2, min=0)
    return 0.5 * (s.gather(-1, lo) + s.gather(-1, m // 2)).squeeze(-1)


class BackgroundNormalization(nn.Module):
    """``N x C x H x W`` raw intensities -> beadseg's ``background`` normalisation (float32).

    Parameters
    ----------
    level, gain, bins, sample_px
        The record's parameters (``meta["normalization"]`` of the checkpoint).
    """

    def __init__(self, level: float = 0.5, gain: float = 1.0, bins: int = 256, sample_px: int = 262144):
        super().__init__()
        self.level, self.gain, self.bins, self.sample_px = float(level), float(gain), int(bins), sample_px
        r = int(4 * SMOOTH_SIGMA_BINS + 0.5)
        x = torch.arange(-r, r + 1, dtype=torch.float64)
        w = torch.exp(-0.5 / SMOOTH_SIGMA_BINS**2 * x**2)
        self.register_buffer("smooth", w / w.sum())

    def _sample(self, x: torch.Tensor) -> torch.Tensor:
        """Every ``step``-th row and column, as ``N x C x P`` float64 (``_sample`` of beadseg)."""
        shape = torch._shape_as_tensor(x)
        h, w = shape[2], shape[3]
        step = torch.clamp(torch.floor(torch.sqrt((h * w).double() / self.sample_px)), min=1).long()
        rows = torch.arange(0, h, step)
        cols = torch.arange(0, w, step)
        sub = x.double().index_select(2, rows).index_select(3, cols)
        return sub.flatten(2)

    def _mode(self, share: torch.Tensor) -> torch.Tensor:
        """Centre of the peak bin of the smoothed histogram of ``share`` (grey as a share of
        ``[lo, hi]``) over ``[0, 1]``, as a share."""
        f = share * self.bins
        idx = torch.clamp(f.long(), 0, self.bins - 1)  # value == 1: the last bin, as numpy
        inside = (share >= 0) & (share <= 1)
        hist = torch.zeros(share.shape[0], self.bins, dtype=torch.float64, device=share.device)
        hist = hist.scatter_add(1, idx, inside.double())
        r = (self.smooth.shape[0] - 1) // 2
        padded = nn.functional.pad(hist, (r, r))
        smoothed = sum(self.smooth[k] * padded[:, k : k + self.bins] for k in range(2 * r + 1))
        k = torch.argmax(smoothed, dim=1).double()
        return (k + 0.5) / self.bins

    def background(self, x: torch.Tensor) -> torch.Tensor:
        """Background level of each channel of each image: ``N x C`` float64."""
        xs = self._sample(x)
        grey = xs.mean(1)
        g_sorted = torch.sort(grey, dim=-1)[0]
        lo, hi = _percentile(g_sorted, 0.5), _percentile(g_sorted, 99.5)
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi)).unsqueeze(-1)
        share = torch.round((grey - lo.unsqueeze(-1)) / span * RANGE_GRID) / RANGE_GRID
        mode = self._mode(share)
        near = (share - mode.unsqueeze(-1)).abs() <= 1 / 32
        by_mode = _masked_median(xs, near.unsqueeze(1))
        overall = _masked_median(xs, torch.ones_like(near).unsqueeze(1))  # a constant image
        return torch.where((hi > lo).unsqueeze(-1), by_mode, overall)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bg = self.background(x)
        safe = torch.where(bg > 0, bg, torch.ones_like(bg))
        g = (self.gain / safe).float()[:, :, None, None]
        y = x.float() * g + float(self.level - self.gain)
        black = x.flatten(1).abs().amax(1) == 0  # nothing to see: every pixel at the level
        return torch.where(black[:, None, None, None], torch.full_like(y, self.level), y)


def normalization_module(record: dict) -> nn.Module | None:
    """The in-graph normalisation of a record, or None when bioimage.io preprocessing can say
    it (``dtype_max``, ``percentile``)."""
    if record.get("method") != "background":
        return None
    params = {k: record[k] for k in ("level", "gain", "bins", "sample_px") if k in record}
    return BackgroundNormalization(**params)


def describe(record: dict) -> str:
    """One sentence for the model card on where the normalisation happens."""
    if record.get("method") == "background":
        return (
            "the background normalisation (each channel divided by the image's background level, "
            "the mode of its grey histogram, and set to "
            f"{record.get('level', 0.5)}) is computed inside the ONNX and TorchScript graphs, as "
            "beadseg computes it for training and prediction (`model_input`): bioimage.io's "
            "preprocessing has no such step. Give the graph the image as stored (any dtype and "
            "range; not min-max rescaled) with the model's channel count: a grey image repeated "
            "to RGB gives beadseg's input exactly, while for an RGB image and a grey model "
            "beadseg normalises each channel before averaging them. Its statistics are of the "
            "whole input, so tile only into large tiles"
        )
    return f"preprocessing: {record}"
