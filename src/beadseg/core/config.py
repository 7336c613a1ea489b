"""Configuration: pydantic models (extra keys forbidden), YAML load/save, ``--set`` overrides.

Every run folder gets the resolved configuration as ``config.yaml`` so it can be rerun exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config_parsing import parse_overrides, read_yaml, validate
from .files import write_text
from .limits import physical_problem, shift_radius_problem
from .registration import REGISTRATION_RADIUS_PX

# Bead defaults that several settings share, each defined once (the concepts and why these
# values: core/beads.py; the list: docs/architecture.md, "Defaults and where they live")
MIN_DISTANCE_PX = 3  # closest two bead centres (px): markers of the splitting are this far apart
CLUMP_AREA_RATIO = 1.5  # above this many single-bead areas an object holds two beads or more
BLOB_AREA_RATIO = 4.0  # above this many, a clump outlined as one blob (the doctor's finding)

#: the largest seed: every generator beadseg seeds (numpy, torch, Python) takes it
MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    """Unknown keys refused; every float finite (no inf or NaN); assignments validated.

    Upper bounds are far beyond any sensible setting: they turn a typo (``1e308``, an extra
    digit) into one line naming the key instead of an overflow or a memory blow-up later.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _shift_radius(v: int) -> int:
    """A mask-shift search radius, bounded (see :mod:`beadseg.core.limits`)."""
    problem = shift_radius_problem(v)
    if problem:
        raise ValueError(problem)
    return v


class DataConfig(_Strict):
    """Where the training data is and how crops are drawn from it."""

    path: str | list[str] | None = Field(
        None,
        description="folder(s) with images/ and masks/ (labels/ and centres/ used when present)",
    )
    val_path: str | list[str] | None = Field(
        None, description="validation folder(s); when set, all of data.path trains (no split)"
    )
    normalization: Literal["background", "percentile", "dtype_max"] = Field(
        "background", description="input scaling, stored in the checkpoint (see normalization.py)"
    )
    crop_size: int = Field(
        256, ge=16, le=8192, description="training crop size in px, at native resolution (16-8192)"
    )
    crops_per_epoch: int = Field(512, gt=0, le=10**7, description="random crops drawn per training epoch")
    bead_crop_fraction: float = Field(
        0.5, ge=0, le=1, description="share of crops centred on a bead (oversampling)"
    )
    align_masks: bool = Field(
        False, description="re-register masks that sit off their beads (see `beadseg fix-masks`)"
    )
    align_radius_px: int = Field(
        REGISTRATION_RADIUS_PX, ge=1, description="largest mask shift searched when aligning"
    )
    use_all_labels: bool = Field(
        False,
        description="train on every label as it is; by default labels graded unusable by "
        "`beadseg.analysis.grade_labels` are left out and shifted ones re-registered (both "
        "listed in split.json)",
    )
    channels: int = Field(3, ge=1, le=4, description="input channels given to the model")
    centre_target: Literal["heatmap", "distance"] = Field(
        "heatmap", description="centre head target: Gaussians at centres, or distance to edge"
    )
    centre_sigma_px: float = Field(1.5, gt=0, le=100, description="SD of the centre heatmap's Gaussians")
    single_bead_area_px: float | None = Field(
        None, gt=0, le=1e8, description="area of one bead; default: median object area of the masks"
    )
    clump_area_ratio: float = Field(
        CLUMP_AREA_RATIO,
        gt=1,
        le=1e4,
        description="objects above this many bead areas are clumps (no centre loss)",
    )

    @field_validator("path", "val_path")
    @classmethod
    def _one_or_many(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("give at least one folder")
        return v

    @field_validator("align_radius_px")
    @classmethod
    def _bounded_search(cls, v: int) -> int:
        return _shift_radius(v)


class SplitConfig(_Strict):
    """Train/validation split: grouped by source frame, stratified by density."""

    val_fraction: float = Field(0.2, gt=0, lt=1)
    folds: int | None = Field(None, ge=2, le=10**4, description="K for K-fold cross-validation")
    fold: int = Field(0, ge=0, le=10**4, description="which fold is validation (0-based)")
    seed: int = Field(0, ge=0, le=MAX_SEED)


class ModelConfig(_Strict):
    """Architecture from the registry (`beadseg models`)."""

    name: str = "unet"
    base_channels: int = Field(8, ge=1, le=1024)
    depth: int = Field(3, ge=1, le=6)
    norm: Literal["batch", "group", "instance", "none"] = "batch"
    dropout: float = Field(0.0, ge=0, lt=1)
    upsample: Literal["transpose", "bilinear"] = "transpose"
    centre_head: bool = Field(
        False, description="a second output channel predicting bead centres (counts touching beads)"
    )


class LossConfig(_Strict):
    """Loss on logits."""

    name: Literal["dice", "bce", "bce_dice", "focal", "tversky"] = "bce_dice"
    bce_weight: float = Field(0.5, ge=0, le=1e4)
    dice_weight: float = Field(0.5, ge=0, le=1e4)
    focal_gamma: float = Field(2.0, ge=0, le=100)
    focal_alpha: float | None = Field(None, ge=0, le=1)
    tversky_alpha: float = Field(0.3, ge=0, le=1e4)
    tversky_beta: float = Field(0.7, ge=0, le=1e4)
    pos_weight: float | None = Field(None, gt=0, le=1e6, description="BCE weight of bead pixels")
    centre_weight: float = Field(1.0, ge=0, le=1e4, description="weight of the centre head's BCE")


class OptimConfig(_Strict):
    """AdamW."""

    lr: float = Field(3e-3, gt=0, le=1e4, description="peak learning rate (run `beadseg lr-find`)")
    weight_decay: float = Field(1e-4, ge=0, le=1e4)


class ScheduleConfig(_Strict):
    """Learning-rate schedule, stepped per batch (see :mod:`beadseg.training.schedules`).

    ``cosine``: linear warm-up over ``warmup_epochs``, then cosine decay to ``min_lr_ratio`` x
    the peak; ``cosine_long_warmup``: the same with a warm-up of at least 30 % of the run
    (older configs call it ``onecycle``, which still loads); ``constant``: warm-up, then flat.
    """

    name: Literal["cosine", "cosine_long_warmup", "constant"] = "cosine"
    warmup_epochs: float = Field(1.0, ge=0, le=1e6)
    min_lr_ratio: float = Field(0.02, ge=0, le=1)

    @field_validator("name", mode="before")
    @classmethod
    def _old_name(cls, v):
        # "onecycle" was never Smith's one-cycle policy (no momentum cycle, no low start)
        return "cosine_long_warmup" if v == "onecycle" else v


class AugmentConfig(_Strict):
    """Geometric augmentation (image and mask together) and photometric (image only)."""

    flips: bool = True
    rot90: bool = True
    scale: float = Field(0.1, ge=0, lt=0.5, description="max relative zoom, masks nearest")
    brightness: float = Field(0.08, ge=0, le=0.5, description="max additive shift, in [0,1] units")
    contrast: float = Field(0.25, ge=0, lt=1, description="max relative contrast change")
    gamma: float = Field(0.2, ge=0, lt=1, description="max relative gamma change")
    blur_prob: float = Field(0.2, ge=0, le=1)
    noise_sd: float = Field(0.015, ge=0, le=0.2, description="max Gaussian noise SD")


class TrainConfig(_Strict):
    """The training loop."""

    epochs: int = Field(40, ge=1, le=10**6)
    batch_size: int = Field(8, ge=1, le=10**5)
    grad_clip: float | None = Field(1.0, gt=0, le=1e12)
    ema_decay: float | None = Field(None, gt=0, lt=1, description="EMA of weights, e.g. 0.99")
    early_stop_patience: int | None = Field(10, ge=1, le=10**6)
    monitor: Literal["val_iou", "val_iou_pooled", "val_dice", "val_loss"] = "val_iou"
    collapse_patience: int = Field(2, ge=1, le=10**6, description="collapsed val epochs in a row to stop")
    collapse_min_epoch: int = Field(
        1, ge=0, le=10**6, description="epochs before the foreground-ratio collapse check starts"
    )
    threshold: float = Field(0.5, gt=0, lt=1)
    device: str = "auto"
    amp: bool = Field(True, description="mixed precision, used on CUDA only")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    max_minutes: float | None = Field(None, gt=0, le=1e7, description="stop after this wall time")
    num_threads: int | None = Field(None, ge=1, le=4096, description="torch CPU threads")
    num_workers: int = Field(
        0, ge=0, le=1024, description="processes preparing training crops (0: the training process)"
    )
    init_weights: str | None = Field(
        None, description="start from these weights (run folder, checkpoint or 'default')"
    )

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "mps") and not v.startswith("cuda"):
            raise ValueError(f"device {v!r} is not one of auto, cpu, cuda, cuda:N, mps")
        return v


class InstanceConfig(_Strict):
    """How a mask becomes separate beads.

    The probability threshold that makes the mask is the model's (``meta["threshold"]`` of its
    checkpoint: ``train.threshold``, or the one ``beadseg evaluate --calibrate`` chose), unless
    ``--threshold`` overrides it.

    ``method`` (see :mod:`beadseg.core.beads`): ``distance`` seeds the watershed at maxima of
    the mask's distance transform; ``probability_peaks`` at local maxima of the smoothed
    probability; ``centre_peaks`` at peaks of the centre head (models trained with
    ``model.centre_head``); ``auto`` takes ``centre_peaks`` when the model has the head, else
    ``distance``.
    """

    method: Literal["auto", "distance", "probability_peaks", "centre_peaks"] = "auto"
    min_area_px: int = Field(8, ge=0, le=10**9, description="smaller objects are dropped")
    max_area_px: int | None = Field(None, ge=1, le=10**12, description="larger objects are dropped")
    split_touching: bool = True
    min_distance_px: int = Field(
        MIN_DISTANCE_PX, ge=1, le=1000, description="closest two bead centres can be"
    )
    fill_holes: bool = True
    peak_distance_px: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="peak methods: a peak is the maximum of a (2d+1)^2 window; default per method",
    )
    peak_sigma_px: float | None = Field(
        None, ge=0, le=1000, description="peak methods: smoothing (px) of the map; default per method"
    )
    centre_threshold: float = Field(
        0.3, gt=0, lt=1, description="centre_peaks: lowest centre-head value of a bead centre"
    )
    peak_merge_px: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="peak methods: peaks closer than this (px) are one bead's (no two bead centres "
        "are that close); 0: off",
    )
    split_area_ratio: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="an object of this many single-bead areas (fewer when elongated) holding one "
        "centre is split into round(area / single area) beads (core/size_split.py); 0: off",
    )
    min_probability: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="an object whose highest bead probability stays below this is no bead (a faint "
        "smudge); 0: off",
    )
    min_centre: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="centre_peaks: an object whose highest centre-head value stays below this is no "
        "bead; 0: off",
    )
    border: Literal["by_centre", "keep"] = Field(
        "by_centre",
        description="beads cut by the image border: by_centre counts a bead in the image that holds "
        "its centre (slivers under half a bead are dropped; a bead on a seam between two tiles is "
        "counted once); keep: every piece",
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_unused_threshold(cls, data: Any) -> Any:
        # older versions had an `instances.threshold` that nothing read; checkpoints and
        # config.yaml files of those versions still load
        if isinstance(data, dict) and "threshold" in data:
            data = {k: v for k, v in data.items() if k != "threshold"}
        return data


class PredictConfig(_Strict):
    """Inference on images of any size."""

    mode: Literal["auto", "tiled", "full"] = "auto"
    tile_size: int | None = Field(
        None,
        ge=32,
        le=65536,
        description="largest tile side in px; default: the engine's (1024 ONNX Runtime, 512 torch; "
        "measured, see BENCHMARKS.md)",
    )
    overlap: int = Field(
        128,
        ge=0,
        le=65536,
        description="px shared by neighbouring tiles (> 2x the network's reach: exact; the shipped "
        "model reaches 44 px)",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=10**5,
        description="tiles per call; default: 1 with ONNX Runtime, ~0.26 MP per call with torch on "
        "CPU (cache-sized), 8 on GPU",
    )
    blend: Literal["cosine", "constant"] = Field(
        "cosine", description="cosine: raised-cosine ramp, zero near inner tile edges (exact); constant"
    )
    full_frame_max_mp: float = Field(
        1.0, gt=0, le=1e6, description="auto mode runs the whole frame in one call up to this size (MP)"
    )
    device: str = "auto"
    runtime: Literal["auto", "onnx", "torch"] = Field(
        "auto",
        description="auto: ONNX Runtime on the CPU when the model has an up-to-date .onnx file "
        "(no torch import), torch on GPUs and otherwise; onnx or torch: force one",
    )
    num_threads: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="CPU threads of the network (default: the cores this process may use)",
    )
    precision: Literal["auto", "float32", "int8"] = Field(
        "auto",
        description="auto: the model's int8 file with ONNX Runtime when it has an up-to-date one "
        "(beadseg export --format int8), float32 otherwise (GPUs, torch); float32 or int8: force one",
    )
    save_probabilities: bool = False
    overlays: Literal["auto", "full", "preview", "none"] = Field(
        "auto",
        description="QC overlays: auto = full size up to 2 MP, only the whole-frame preview above "
        "(a 4K frame's full-size colour PNG takes ~0.6 s and 13 MB); full = both; preview; none",
    )
    pixel_size_um: float | None = Field(
        None,
        description="pixel size in µm, 0.01-100 (µm columns, beads_per_mm2, calibrated label TIFFs); "
        "default: each TIFF input's resolution tags, none for other formats",
    )

    @field_validator("pixel_size_um")
    @classmethod
    def _plausible_pixel_size(cls, v: float | None) -> float | None:
        problem = None if v is None else physical_problem(v, "pixel_size_um")
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("blend", mode="before")
    @classmethod
    def _old_blend_name(cls, v: Any) -> Any:
        return "cosine" if v == "gaussian" else v  # the old name (it never was a Gaussian)


class AnalyzeConfig(_Strict):
    """Settings of the dataset doctor (`beadseg analyze`) and of :func:`beadseg.analysis.grade_labels`."""

    min_distance_px: int = Field(MIN_DISTANCE_PX, ge=1, description="closest bead centres, for splitting")
    peak_floor: float = Field(3.0, ge=0, le=1000, description="evidence (noise SDs) of a candidate peak")
    detector_floor: float = Field(5.0, ge=0, le=1000, description="lowest detector threshold (noise SDs)")
    detector_relative: float = Field(
        0.5, gt=0, le=1, description="threshold as a share of the labelled beads' median evidence"
    )
    label_tolerance_px: int = Field(3, ge=0, description="candidate counts as labelled this close")
    missing_max_fraction: float = Field(
        0.15, gt=0, lt=1, description="unlabelled-candidate share that flags a partial mask"
    )
    missing_min_count: int = Field(3, ge=1)
    unusable_unlabelled_fraction: float = Field(
        0.5, gt=0, le=1, description="unlabelled-candidate share that makes a label unusable"
    )
    registration_radius_px: int = Field(
        REGISTRATION_RADIUS_PX, ge=1, description="largest mask shift searched"
    )
    registration_min_shift_px: float = Field(2.0, gt=0, le=32)
    registration_min_gain: float = Field(0.15, ge=0, le=100)
    mask_fit_ratio: float = Field(
        0.4,
        gt=0,
        lt=1,
        description="a mask fits its image when its correlation with the bead evidence is at "
        "least this share of its source frame's (or domain's) median",
    )
    owner_search_radius_px: int = Field(
        REGISTRATION_RADIUS_PX, ge=0, description="shifts searched when matching a mask against every image"
    )
    blob_area_ratio: float = Field(
        BLOB_AREA_RATIO,
        gt=1,
        le=1e4,
        description="objects larger than this many single beads are clumps drawn as blobs "
        "(older configs call it clump_factor, which still loads)",
    )
    clump_max_fraction: float = Field(
        0.3, gt=0, le=1, description="share of mask area in clumps that is reported"
    )
    min_overlap_px: int = Field(8, ge=1)
    max_overlap_px: int = Field(128, ge=8)
    overlap_match_tol: float = Field(1.0, ge=0, le=255, description="grey levels, mean abs difference")
    speck_area_px: float | None = Field(None, gt=0, le=1e6, description="default: a quarter bead")
    density_bins: list[float] | None = Field(None, description="beads-per-image bin edges")

    @model_validator(mode="before")
    @classmethod
    def _old_blob_name(cls, data: Any) -> Any:
        # blob_area_ratio was clump_factor, a name that read like data.clump_area_ratio
        if isinstance(data, dict) and "clump_factor" in data and "blob_area_ratio" not in data:
            data = {("blob_area_ratio" if k == "clump_factor" else k): v for k, v in data.items()}
        return data

    @field_validator("registration_radius_px", "owner_search_radius_px")
    @classmethod
    def _bounded_search(cls, v: int) -> int:
        return _shift_radius(v)


class Config(_Strict):
    """The settings of every command, one section each; saved as ``config.yaml`` beside every
    output. ``beadseg train`` reads data, split, model, loss, optim, schedule, augment, train
    and instances; ``predict`` and ``evaluate`` read ``predict``; ``analyze`` reads ``analyze``.
    One file serves every command: ``--config FILE`` takes the same schema everywhere, ``--set
    section.key=value`` likewise.

    Training grades its labels with ``analyze`` (unless ``data.use_all_labels``): the labels left
    out and re-registered are the ones `beadseg analyze` reports with the same settings.
    """

    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    instances: InstanceConfig = InstanceConfig()
    predict: PredictConfig = PredictConfig()
    analyze: AnalyzeConfig = AnalyzeConfig()


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | dict | None = None,
    model: type[BaseModel] = Config,
):
    """Load a YAML config (or defaults) and apply overrides.

    Parameters
    ----------
    path : path, optional
        YAML file (UTF-8; UTF-16 with a byte-order mark is read too); missing keys take their
        defaults, an empty section (``model:``) is all defaults.
    overrides : list of "key=value" or dict, optional
        Applied on top of the file (CLI flags); a later "key=value" wins over an earlier one.
    model : pydantic model class
        The schema (default :class:`Config`).

    Raises
    ------
    ConfigError
        A file that is not UTF-8 text or not valid YAML, a key given twice, a value where a
        section is expected (``model: unet``), unknown keys (with the closest valid key), wrong
        types or out-of-range values (non-finite numbers included); the message names the file
        or ``--set`` and the key.
    """
    raw = read_yaml(path) if path is not None else {}
    extra = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    source = str(path) if path is not None else "config"
    return validate(model, raw, extra, source, "--set" if not isinstance(overrides, dict) else "command line")


def config_to_yaml(cfg: BaseModel) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def save_config(cfg: BaseModel, path: str | Path) -> Path:
    """Write the resolved config atomically as YAML."""
    return write_text(path, config_to_yaml(cfg))
