"""Random crops at native resolution with joint geometric and image-only photometric augmentation.

Each crop is drawn from its own generator seeded by (seed, epoch, index), so an epoch is
reproducible and a resumed run draws exactly the crops the uninterrupted run would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi

from ..config import AugmentConfig, DataConfig
from ..errors import ConfigError
from ..io import Pair, read_pair, to_channels


@dataclass
class Sample:
    """One image and mask held in memory (image float16 H x W x C, mask bool H x W)."""

    name: str
    image: np.ndarray
    mask: np.ndarray


def load_samples(pairs: list[Pair], channels: int, align_radius_px: int | None = None) -> list[Sample]:
    """Read pairs into memory for training; optionally re-register shifted masks."""
    from ..registration import align_mask

    out = []
    for p in pairs:
        image, info = read_pair(p)
        image = to_channels(image, channels, str(p.image))
        mask = info.mask
        if align_radius_px:
            mask = align_mask(image, mask, align_radius_px)[0]
        out.append(Sample(p.name, image.astype(np.float16), mask))
    return out


def _rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def _photometric(img: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, gamma, blur, noise on an image in [0, 1]; the mask is untouched."""
    if aug.contrast:
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - aug.contrast, 1 + aug.contrast) + mean
    if aug.brightness:
        img = img + rng.uniform(-aug.brightness, aug.brightness)
    img = np.clip(img, 0, 1)
    if aug.gamma:
        img = img ** rng.uniform(1 - aug.gamma, 1 + aug.gamma)
    if aug.blur_prob and rng.random() < aug.blur_prob:
        img = ndi.gaussian_filter(img, (rng.uniform(0.3, 1.0),) * 2 + (0,))
    if aug.noise_sd:
        img = img + rng.normal(0, rng.uniform(0, aug.noise_sd), img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


class CropDataset(torch.utils.data.Dataset):
    """Random training crops of ``data.crop_size`` px from in-memory samples.

    A share ``data.bead_crop_fraction`` of crops is centred on a random bead pixel. With
    ``augment.scale`` > 0 a region of ``crop / s`` px is resampled to ``crop`` px (image
    bilinear, mask nearest-neighbour), ``s`` drawn in ``[1 - scale, 1 + scale]``.
    """

    def __init__(self, samples: list[Sample], data: DataConfig, aug: AugmentConfig,
                 seed: int = 0):
        if not samples:
            raise ConfigError("no training images")
        small = [s.name for s in samples if min(s.mask.shape) < data.crop_size]
        if small:
            smallest = min(min(s.mask.shape) for s in samples)
            raise ConfigError(
                f"data.crop_size = {data.crop_size} is larger than {len(small)} images "
                f"(e.g. {small[0]}, smallest side {smallest} px); use data.crop_size <= {smallest}"
            )
        self.samples, self.data, self.aug, self.seed = samples, data, aug, seed
        self.epoch = 0
        self.fg = [np.flatnonzero(s.mask) for s in samples]

    def __len__(self) -> int:
        return self.data.crops_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def crop(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(self.seed, self.epoch, index)
        k = int(rng.integers(len(self.samples)))
        s = self.samples[k]
        h, w = s.mask.shape
        size = self.data.crop_size
        zoom = rng.uniform(1 - self.aug.scale, 1 + self.aug.scale) if self.aug.scale else 1.0
        src = int(min(round(size / zoom), h, w))
        if len(self.fg[k]) and rng.random() < self.data.bead_crop_fraction:
            cy, cx = divmod(int(self.fg[k][rng.integers(len(self.fg[k]))]), w)
            y0 = int(np.clip(cy - src // 2 + rng.integers(-src // 4, src // 4 + 1), 0, h - src))
            x0 = int(np.clip(cx - src // 2 + rng.integers(-src // 4, src // 4 + 1), 0, w - src))
        else:
            y0, x0 = int(rng.integers(h - src + 1)), int(rng.integers(w - src + 1))
        img = s.image[y0:y0 + src, x0:x0 + src].astype(np.float32)
        mask = s.mask[y0:y0 + src, x0:x0 + src]
        if src != size:
            f = size / src
            img = ndi.zoom(img, (f, f, 1), order=1, grid_mode=True, mode="grid-constant")
            mask = ndi.zoom(mask.astype(np.uint8), f, order=0, grid_mode=True,
                            mode="grid-constant") > 0  # never interpolate masks
            img, mask = img[:size, :size], mask[:size, :size]
        if self.aug.flips:
            if rng.random() < 0.5:
                img, mask = img[::-1], mask[::-1]
            if rng.random() < 0.5:
                img, mask = img[:, ::-1], mask[:, ::-1]
        if self.aug.rot90:
            r = int(rng.integers(4))
            img, mask = np.rot90(img, r), np.rot90(mask, r)
        img = _photometric(np.ascontiguousarray(img), self.aug, rng)
        return img, np.ascontiguousarray(mask)

    def __getitem__(self, index: int):
        img, mask = self.crop(index)
        return (torch.from_numpy(img.transpose(2, 0, 1).copy()),
                torch.from_numpy(mask[None].astype(np.float32)))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x C float image -> 1 x C x H x W tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))[None]
