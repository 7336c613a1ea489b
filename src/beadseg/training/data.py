"""The data of a training run: image/mask pairs -> in-memory samples -> grouped split -> batches.

:func:`prepare_data` is the one preparation step shared by training and the learning-rate
finder; :func:`crop_loader` batches the random crops with a ``DataLoader`` (a
``DistributedSampler`` under DDP) so augmentation can run in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch.utils.data import DataLoader, DistributedSampler

from ..analysis.grades import LabelSelection, select_labels
from ..config import Config
from ..data.dataset import CropDataset, Sample, load_samples
from ..data.split import Split, grouped_split
from ..errors import ConfigError
from ..instances import label_components
from ..io import find_pairs
from ..naming import source_frame


@dataclass
class TrainingData:
    """The samples on each side of the run's split, and which labels the grades left out or
    re-registered (``labels``; written to ``split.json``)."""

    split: Split
    train: list[Sample]
    val: list[Sample]
    labels: LabelSelection = field(default_factory=lambda: LabelSelection({}, {}, graded=False))


def prepare_data(cfg: Config) -> TrainingData:
    """Read ``data.path`` into memory and split it by source frame (stratified by density).

    Unless ``data.use_all_labels``, labels graded unusable (:func:`beadseg.analysis.select_labels`)
    are left out and shifted masks re-registered (:func:`reregister`).

    Raises
    ------
    ConfigError
        ``data.path`` is not set, or the split is impossible (fewer than 2 source frames, ...).
    InputError
        The folder holds no readable image/mask pairs.
    """
    if not cfg.data.path:
        raise ConfigError("data.path is not set; give the data folder (beadseg train DATA)")
    # masks aligned when read (data.align_masks) take no shift from the grades
    pairs, labels = select_labels(
        find_pairs(cfg.data.path), cfg.data.use_all_labels, reregister=not cfg.data.align_masks
    )
    samples = load_samples(
        pairs, cfg.data.channels, cfg.data.align_radius_px if cfg.data.align_masks else None
    )
    samples = reregister(samples, labels)
    groups = {s.name: source_frame(s.name) for s in samples}
    density = {s.name: label_components(s.mask)[1] for s in samples}
    split = grouped_split(
        groups, density, cfg.split.val_fraction, cfg.split.folds, cfg.split.fold, cfg.split.seed
    )
    by_name = {s.name: s for s in samples}
    return TrainingData(split, [by_name[n] for n in split.train], [by_name[n] for n in split.val], labels)


def reregister(samples: list[Sample], labels: LabelSelection) -> list[Sample]:
    """Shift the masks the grades found shifted onto their beads (by the grade's ``dy, dx``)."""
    if not labels.shifts:
        return samples
    from ..registration import shift_mask

    for s in samples:
        if s.name in labels.shifts:
            s.mask = shift_mask(s.mask, *labels.shifts[s.name])
    return samples


def bead_area_stats(samples: list[Sample]) -> dict:
    """Median, 5th and 95th percentile of the labelled objects' areas (px), for inference."""
    areas = np.concatenate(
        [np.bincount(label_components(s.mask)[0].ravel())[1:] for s in samples] + [np.zeros(0)]
    )
    if not len(areas):
        return {"median": 0.0, "p05": 0.0, "p95": 0.0}
    return {
        "median": float(np.median(areas)),
        "p05": float(np.percentile(areas, 5)),
        "p95": float(np.percentile(areas, 95)),
    }


def crop_loader(
    dataset: CropDataset,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Batches of an epoch's crops, in index order; under DDP each process gets its share.

    ``batch_size`` is the global batch: process ``r`` of ``W`` takes crops ``r, r+W, ...`` of
    every global batch (``batch_size / W`` each), so the processes together see the same
    batches as one process. When ``len(dataset)`` is not a multiple of ``W`` the
    ``DistributedSampler`` pads the last batch with the epoch's first crops, so no process is
    ever left without a batch (every process must take part in each gradient all-reduce).
    Crops depend only on (seed, epoch, index), so workers and resumed runs draw the same ones;
    call ``dataset.set_epoch`` before iterating (workers are started per epoch and copy it).
    """
    if batch_size % world_size:
        raise ConfigError(f"train.batch_size = {batch_size} must be a multiple of the {world_size} processes")
    sampler = None
    if world_size > 1:
        sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=False, drop_last=False
        )
    return DataLoader(
        dataset,
        batch_size=batch_size // world_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        drop_last=False,
        pin_memory=pin_memory,
        # workers are not persistent: each epoch's workers must copy the dataset's new epoch
    )
