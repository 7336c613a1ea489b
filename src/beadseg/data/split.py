"""Train/validation splits grouped by source frame and stratified by density.

Tiles of one source frame overlap, so a split that puts neighbouring tiles on both sides leaks:
every split here keeps each group (source frame) whole. Groups are sorted into density strata
(quantiles of their mean beads per image) and dealt round-robin to K folds in a seeded random
order, so every fold sees sparse and dense frames.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import ConfigError


@dataclass
class Split:
    """Names on each side of one fold and the groups behind them."""

    train: list[str]
    val: list[str]
    fold: int
    folds: int
    groups: dict[str, str] = field(default_factory=dict)  # name -> group

    def as_dict(self) -> dict:
        val_groups = sorted({self.groups[n] for n in self.val})
        train_groups = sorted({self.groups[n] for n in self.train})
        return {
            "fold": self.fold,
            "folds": self.folds,
            "train": self.train,
            "val": self.val,
            "train_groups": train_groups,
            "val_groups": val_groups,
        }


def assign_folds(
    groups: dict[str, str], density: dict[str, float], folds: int, seed: int = 0
) -> dict[str, int]:
    """Fold index of every group: stratified by density, seeded, each group whole.

    Parameters
    ----------
    groups : dict
        Image name -> group (source frame).
    density : dict
        Image name -> beads per image (any density measure).
    folds : int
        Number of folds K (>= 2, at most the number of groups).
    seed : int
        Shuffle seed.
    """
    members = defaultdict(list)
    for name, g in groups.items():
        members[g].append(name)
    names = sorted(members)
    if len(names) < 2:
        raise ConfigError(
            f"a grouped split needs at least 2 source frames; found {len(names)} "
            f"({', '.join(names) or 'none'}); add tiles of another frame or name the tiles "
            "<frame>_grid_r<r>_c<c> so frames can be told apart"
        )
    if folds > len(names):
        raise ConfigError(
            f"split.folds = {folds} is more than the {len(names)} source frames; use at most {len(names)}"
        )
    gdens = np.array([np.mean([density[n] for n in members[g]]) for g in names])
    rng = np.random.default_rng(seed)
    order = np.argsort(gdens + rng.uniform(0, 1e-9, len(gdens)), kind="stable")
    fold_of = {}
    # walk the groups from sparse to dense in chunks of K, dealing one to each fold
    start = int(rng.integers(folds))
    for chunk_start in range(0, len(order), folds):
        chunk = order[chunk_start : chunk_start + folds]
        slots = rng.permutation(folds)[: len(chunk)]
        for gi, slot in zip(chunk, slots):
            fold_of[names[gi]] = int((slot + start) % folds)
    return fold_of


def grouped_split(
    groups: dict[str, str],
    density: dict[str, float],
    val_fraction: float = 0.2,
    folds: int | None = None,
    fold: int = 0,
    seed: int = 0,
) -> Split:
    """Split image names into train and validation, keeping each group on one side.

    With ``folds`` = K, fold ``fold`` is validation (K-fold cross-validation); otherwise
    K = round(1 / val_fraction) and fold 0 is validation.
    """
    n_groups = len(set(groups.values()))
    k = folds or max(2, min(int(round(1 / val_fraction)), n_groups))
    if fold >= k:
        raise ConfigError(f"split.fold = {fold} but there are {k} folds; use 0..{k - 1}")
    fold_of = assign_folds(groups, density, k, seed)
    val = sorted(n for n, g in groups.items() if fold_of[g] == fold)
    train = sorted(n for n, g in groups.items() if fold_of[g] != fold)
    if not val or not train:
        raise ConfigError("the split left one side empty; lower split.folds or add source frames")
    check_no_leak(train, val, groups)
    return Split(train, val, fold, k, dict(groups))


def check_no_leak(train: list[str], val: list[str], groups: dict[str, str]) -> None:
    """Raise if a group has images on both sides."""
    shared = {groups[n] for n in train} & {groups[n] for n in val}
    if shared:
        raise ConfigError(
            f"source frames on both sides of the split: {', '.join(sorted(shared))}; tiles of one frame "
            "must stay on one side: name them <frame>_grid_r<r>_c<c>, or validate on another folder "
            "(data.val_path)"
        )
