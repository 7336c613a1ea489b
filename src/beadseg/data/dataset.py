"""Random crops at native resolution with joint geometric and image-only photometric augmentation.

Each crop is drawn from its own generator seeded by (seed, epoch, index), so an epoch is
reproducible and a resumed run draws exactly the crops the uninterrupted run would have.
Images are made network inputs once, when read, by the one function prediction uses too
(:func:`beadseg.core.normalization.model_input`: the normalisation the checkpoint records, then
the model's channels), so training and inference see the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

from ..core.config import AugmentConfig, DataConfig
from ..core.errors import ConfigError
from ..core.files import Pair
from ..core.filters import gaussian_blur
from ..core.masks import read_centres, read_labels, read_pair_raw
from ..core.normalization import model_input


@dataclass
class Sample:
    """One image and mask held in memory (image float16 H x W x C, normalised; mask bool H x W).

    ``centres`` (N x 2, row/col) and ``labels`` are the exact truth of a composite when its
    folder has ``centres/NAME.csv`` and ``labels/NAME.*``; ``centre`` (float16 H x W) and
    ``centre_valid`` (bool H x W) are the centre head's target (:mod:`beadseg.data.targets`).
    """

    name: str
    image: np.ndarray
    mask: np.ndarray
    centres: np.ndarray | None = None
    labels: np.ndarray | None = None
    centre: np.ndarray | None = None
    centre_valid: np.ndarray | None = None


def exact_truth(pair: Pair) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(centres, labels) of an exact-truth image: its data folder's ``centres/`` and
    ``labels/`` files, (None, None) when it has none."""
    root = Path(pair.mask).parent.parent
    cfile = root / "centres" / f"{pair.name}.csv"
    if not cfile.is_file():
        return None, None
    labels = None
    for ext in (".tif", ".tiff", ".png"):
        if (root / "labels" / f"{pair.name}{ext}").is_file():
            labels = read_labels(root / "labels" / f"{pair.name}{ext}")
            break
    return read_centres(cfile), labels


def load_samples(
    pairs: list[Pair], channels: int, align_radius_px: int | None = None, normalization: dict | None = None
) -> list[Sample]:
    """Read pairs into memory for training: images as network inputs (:func:`model_input` with
    ``normalization``, a :func:`beadseg.core.normalization.normalization_record`, None: the
    default; and ``channels``), masks optionally re-registered (never those of exact-truth
    images), exact centres and labels attached."""
    from ..core.registration import align_mask

    out = []
    for p in pairs:
        raw, info = read_pair_raw(p)  # each file read once; the sizes checked
        image = model_input(raw, normalization, channels, str(p.image))
        centres, labels = exact_truth(p)
        mask = info.mask
        if align_radius_px and centres is None:
            mask = align_mask(image, mask, align_radius_px)[0]
        out.append(Sample(p.name, image.astype(np.float16), mask, centres, labels))
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
        img = gaussian_blur(img, rng.uniform(0.3, 1.0))
    if aug.noise_sd:
        img = img + rng.normal(0, rng.uniform(0, aug.noise_sd), img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


class CropDataset(torch.utils.data.Dataset):
    """Random training crops of ``data.crop_size`` px from in-memory samples.

    A share ``data.bead_crop_fraction`` of crops is centred on a random bead pixel. With
    ``augment.scale`` > 0 a region of ``crop / s`` px is resampled to ``crop`` px (image and
    centre target bilinear, mask and validity nearest-neighbour), ``s`` drawn in
    ``[1 - scale, 1 + scale]``. Items are ``(image C x H x W, target K x H x W)``: the target is
    the mask (K = 1), or mask, centre target and centre validity (K = 3) when the samples carry
    centre targets (:func:`beadseg.training.data.add_centre_targets`).
    """

    def __init__(self, samples: list[Sample], data: DataConfig, aug: AugmentConfig, seed: int = 0):
        if not samples:
            raise ConfigError(
                "no training images: every label was left out or the split left none; check data.path"
            )
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
        self.with_centres = samples[0].centre is not None

    def __len__(self) -> int:
        return self.data.crops_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _window(self, rng: np.random.Generator, k: int, src: int) -> tuple[int, int]:
        """Top-left corner of a ``src``-px window of sample ``k``, on a bead or anywhere."""
        h, w = self.samples[k].mask.shape
        if len(self.fg[k]) and rng.random() < self.data.bead_crop_fraction:
            cy, cx = divmod(int(self.fg[k][rng.integers(len(self.fg[k]))]), w)
            y0 = int(np.clip(cy - src // 2 + rng.integers(-src // 4, src // 4 + 1), 0, h - src))
            x0 = int(np.clip(cx - src // 2 + rng.integers(-src // 4, src // 4 + 1), 0, w - src))
            return y0, x0
        return int(rng.integers(h - src + 1)), int(rng.integers(w - src + 1))

    def crop(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Crop ``index`` of the current epoch: (image H x W x C float32, target H x W x K)."""
        rng = _rng(self.seed, self.epoch, index)
        k = int(rng.integers(len(self.samples)))
        s = self.samples[k]
        h, w = s.mask.shape
        size = self.data.crop_size
        zoom = rng.uniform(1 - self.aug.scale, 1 + self.aug.scale) if self.aug.scale else 1.0
        src = int(min(round(size / zoom), h, w))
        y0, x0 = self._window(rng, k, src)
        win = (slice(y0, y0 + src), slice(x0, x0 + src))
        img = s.image[win].astype(np.float32)
        # targets: masks (nearest-neighbour when resampled) and smooth maps (bilinear)
        masks = [s.mask[win]] + ([s.centre_valid[win]] if self.with_centres else [])
        smooth = [s.centre[win].astype(np.float32)] if self.with_centres else []
        if src != size:
            f = size / src
            img = ndi.zoom(img, (f, f, 1), order=1, grid_mode=True, mode="grid-constant")[:size, :size]
            masks = [
                ndi.zoom(m.astype(np.uint8), f, order=0, grid_mode=True, mode="grid-constant")[:size, :size]
                > 0
                for m in masks
            ]  # never interpolated
            smooth = [
                ndi.zoom(m, f, order=1, grid_mode=True, mode="grid-constant")[:size, :size] for m in smooth
            ]
        target = np.stack(
            [masks[0].astype(np.float32)] + smooth + [m.astype(np.float32) for m in masks[1:]], axis=-1
        )
        if self.aug.flips:
            if rng.random() < 0.5:
                img, target = img[::-1], target[::-1]
            if rng.random() < 0.5:
                img, target = img[:, ::-1], target[:, ::-1]
        if self.aug.rot90:
            r = int(rng.integers(4))
            img, target = np.rot90(img, r), np.rot90(target, r)
        img = _photometric(np.ascontiguousarray(img), self.aug, rng)
        return img, np.ascontiguousarray(target)

    def __getitem__(self, index: int):
        img, target = self.crop(index)
        return (
            torch.from_numpy(img.transpose(2, 0, 1).copy()),
            torch.from_numpy(target.transpose(2, 0, 1).copy()),
        )


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x C float image -> 1 x C x H x W tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))[None]
