"""The data of a training run: image/mask pairs -> in-memory samples -> grouped split -> batches.

:func:`prepare_data` is the one preparation step shared by training and the learning-rate
finder; :func:`crop_loader` batches the random crops with a ``DataLoader`` (a
``DistributedSampler`` under DDP) so augmentation can run in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, DistributedSampler

from ..analysis.grades import LabelSelection, select_labels
from ..core.beads import single_bead_area
from ..core.config import AnalyzeConfig, Config, DataConfig
from ..core.errors import ConfigError
from ..core.files import Pair, find_pairs
from ..core.labels import label_components
from ..core.naming import source_frame
from ..core.normalization import normalization_record
from ..data.dataset import CropDataset, Sample, load_samples
from ..data.split import Split, check_no_leak, grouped_split
from ..data.targets import centre_targets


@dataclass
class TrainingData:
    """The samples on each side of the run's split, which labels the grades left out or
    re-registered (``labels``; written to ``split.json``) and the single-bead area (px) behind
    the centre targets (0 without a centre head)."""

    split: Split
    train: list[Sample]
    val: list[Sample]
    single_bead_area_px: float = 0.0
    labels: LabelSelection = field(default_factory=lambda: LabelSelection({}, {}, graded=False))


def data_folders(path: str | list[str] | None) -> list[str]:
    """``data.path`` / ``data.val_path`` as a list of folders."""
    if path is None:
        return []
    return [path] if isinstance(path, str) else list(path)


def find_all_pairs(folders: list[str]) -> list[Pair]:
    """Image/mask pairs of several data folders; a name found in two folders is an error."""
    pairs, seen = [], {}
    for folder in folders:
        for p in find_pairs(folder):
            if p.name in seen:
                raise ConfigError(
                    f"{p.name} is in both {seen[p.name]} and {folder}; image names must be unique "
                    "across the folders of data.path"
                )
            seen[p.name] = folder
            pairs.append(p)
    return pairs


def usable_pairs(
    folders: list[str], use_all: bool = False, reregister: bool = True, grading: AnalyzeConfig | None = None
) -> tuple[list[Pair], LabelSelection]:
    """The pairs of several data folders without those whose label
    :func:`beadseg.analysis.select_labels` grades unusable (misfiled, drawn at another scale, ...),
    and the selection (left out, shifts of fixable masks), unless ``use_all``. Each folder is
    graded on its own (grading compares a mask with the rest of its set) with the settings
    ``grading`` (the run's ``analyze`` section; default settings when None); exact-truth
    folders (with ``centres/``) are not graded."""
    pairs = find_all_pairs(folders)
    if use_all:
        return pairs, LabelSelection({}, {}, graded=False)
    left_out: dict[str, tuple[str, ...]] = {}
    shifts: dict[str, tuple[int, int]] = {}
    for folder in folders:
        if (Path(folder) / "centres").is_dir():
            continue
        _, sel = select_labels(find_pairs(folder), cfg=grading or AnalyzeConfig(), reregister=reregister)
        left_out |= sel.left_out
        shifts |= sel.shifts
    return [p for p in pairs if p.name not in left_out], LabelSelection(left_out, shifts)


def prepare_data(cfg: Config) -> TrainingData:
    """Read ``data.path`` (one or several folders) into memory and split it by source frame
    (stratified by density), or validate on ``data.val_path`` when it is set. Unless
    ``data.use_all_labels``, labels graded unusable with the ``analyze`` settings are left out
    (:func:`usable_pairs`) and shifted masks re-registered (:func:`reregister`).

    Raises
    ------
    ConfigError
        ``data.path`` is not set, or the split is impossible (fewer than 2 source frames, ...).
    InputError
        A folder holds no readable image/mask pairs.
    """
    if not cfg.data.path:
        raise ConfigError("data.path is not set; give the data folder (beadseg train DATA)")
    d = cfg.data
    norm = normalization_record(d.normalization)
    align = d.align_radius_px if d.align_masks else None
    # masks aligned when read (data.align_masks) take no shift from the grades
    grade = {"use_all": d.use_all_labels, "reregister": align is None, "grading": cfg.analyze}
    pairs, labels = usable_pairs(data_folders(d.path), **grade)
    samples = reregister(load_samples(pairs, d.channels, align, norm), labels)
    groups = {s.name: source_frame(s.name) for s in samples}
    if d.val_path:
        val_pairs, val_labels = usable_pairs(data_folders(d.val_path), **grade)
        labels = LabelSelection(
            labels.left_out | val_labels.left_out, labels.shifts | val_labels.shifts, labels.graded
        )
        val = reregister(load_samples(val_pairs, d.channels, align, norm), labels)
        clash = sorted({s.name for s in val} & set(groups))
        if clash:
            raise ConfigError(f"{clash[0]} is in both data.path and data.val_path; validate on other images")
        groups |= {s.name: source_frame(s.name) for s in val}
        split = Split([s.name for s in samples], [s.name for s in val], 0, 1, groups)
        check_no_leak(split.train, split.val, groups)
        data = TrainingData(split, samples, val, labels=labels)
    else:
        density = {s.name: label_components(s.mask)[1] for s in samples}
        split = grouped_split(
            groups, density, cfg.split.val_fraction, cfg.split.folds, cfg.split.fold, cfg.split.seed
        )
        by_name = {s.name: s for s in samples}
        data = TrainingData(
            split, [by_name[n] for n in split.train], [by_name[n] for n in split.val], labels=labels
        )
    if cfg.model.centre_head:
        data.single_bead_area_px = add_centre_targets(data.train + data.val, d, data.train)
    return data


def add_centre_targets(samples: list[Sample], d: DataConfig, reference: list[Sample]) -> float:
    """Attach the centre head's target and validity (:func:`beadseg.data.targets.centre_targets`)
    to every sample; the single-bead area is ``data.single_bead_area_px`` or the
    :func:`~beadseg.core.beads.single_bead_area` of the ``reference`` samples without exact
    truth (the training side). Returns it."""
    area = d.single_bead_area_px
    if area is None:
        annotated = [s.mask for s in reference if s.centres is None] or [s.mask for s in reference]
        area = single_bead_area(annotated)
    for s in samples:
        target, valid = centre_targets(
            s.mask, area, s.centres, s.labels, d.centre_target, d.centre_sigma_px, d.clump_area_ratio
        )
        s.centre, s.centre_valid = target.astype(np.float16), valid
    return float(area)


def reregister(samples: list[Sample], labels: LabelSelection) -> list[Sample]:
    """Shift the masks the grades found shifted onto their beads (by the grade's ``dy, dx``)."""
    if not labels.shifts:
        return samples
    from ..core.registration import shift_mask

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
