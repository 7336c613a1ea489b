"""`beadseg predict`: probabilities, masks, bead instances and counts for images of any size.

One image: normalisation (the model's, :mod:`beadseg.normalization`) -> :func:`predict_maps`
(whole frame in one call, or tiles, see :mod:`beadseg.inference.tiling`) -> threshold ->
instances (:func:`beadseg.instances.segment_instances`: seeded at the centre head's peaks for
models that have one) -> domain check (:mod:`beadseg.domain`). Many images:
:func:`predict_images` streams them one at a time, writes per-image outputs and the run's
``counts.csv`` and ``beads.csv``; :func:`merge_runs` joins the runs of a job array.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import InstanceConfig, PredictConfig, save_config
from ..errors import BeadsegError, BeadsegWarning, InputError
from ..io import (
    find_images,
    read_image,
    read_pixel_size_um,
    to_channels,
    write_columns_csv,
    write_csv,
    write_float_tiff,
    write_labels,
    write_mask,
    write_rgb_png,
)
from ..naming import parse_name
from ..normalization import normalize_image
from ..provenance import write_json, write_provenance
from .bead_tables import BEADS_CSV, concat_bead_tables, merge_bead_tables
from .overlay import colour_overlay, preview
from .runtime import load_model
from .tiling import predict_tiled

if TYPE_CHECKING:  # either engine: an OnnxModel has the same attributes
    from .model import LoadedModel

# ----------------------------------------------------------------------------- one image


def _batch_size(cfg: PredictConfig, model: LoadedModel, tile_px: int) -> int:
    return cfg.batch_size or model.default_batch_size(tile_px)


def predict_maps(
    model: LoadedModel, image: np.ndarray, cfg: PredictConfig | None = None, normalized: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Bead probability (and, for a centre-head model, bead-centre map) of every pixel.

    Parameters
    ----------
    model : LoadedModel
    image : ndarray, ``H x W`` or ``H x W x C``, any dtype
        Normalised here as the model was trained (``model.normalization``) unless
        ``normalized``; channels are adapted to the model (grey <-> RGB).
    cfg : PredictConfig
        ``mode`` (auto: whole frame up to ``full_frame_max_mp``, else tiles), ``tile_size``
        (default: the model's engine's), ``overlap``, ``batch_size``, ``blend``.
    normalized : bool
        ``image`` is already the model's normalised float32 ``H x W x C``.

    Returns
    -------
    probabilities : ndarray of float32, ``H x W``
    centres : ndarray of float32, ``H x W``, or None
    """
    cfg = cfg or PredictConfig()
    if not normalized:
        image = normalize_image(image, model.normalization)
    image = to_channels(image, model.in_channels)
    h, w = image.shape[:2]
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), np.float32)
    mode = cfg.mode
    if mode == "auto":
        mode = "full" if h * w / 1e6 <= cfg.full_frame_max_mp else "tiled"
    if mode == "full":
        out = model(chw[None])[0]
    else:
        align = model.align
        size = cfg.tile_size or model.default_tile_size
        tile = max(size - size % align, align)
        tile_px = min(tile, h + (-h) % align) * min(tile, w + (-w) % align)
        out = predict_tiled(model, chw, tile, cfg.overlap, align, _batch_size(cfg, model, tile_px), cfg.blend)
    return (out[0], out[1]) if out.ndim == 3 else (out, None)


def predict_probabilities(
    model: LoadedModel, image: np.ndarray, cfg: PredictConfig | None = None
) -> np.ndarray:
    """Bead probability of every pixel of an image (see :func:`predict_maps`): ``H x W``
    float32. ``image`` is ``H x W`` or ``H x W x C`` of any dtype."""
    return predict_maps(model, image, cfg)[0]


@dataclass
class Segmentation:
    """One image through the model: what it saw, what it output, the beads, the domain check."""

    image: np.ndarray  # normalised, H x W x C float32
    probabilities: np.ndarray
    centres: np.ndarray | None
    labels: np.ndarray
    in_domain: bool
    domain_reason: str
    timings: dict[str, float]


def segment(
    model: LoadedModel,
    image: np.ndarray,
    cfg: PredictConfig | None = None,
    threshold: float | None = None,
    instances: InstanceConfig | None = None,
) -> Segmentation:
    """Normalise -> probabilities (and centres) -> mask -> instances -> domain check.

    ``image`` is ``H x W`` or ``H x W x C`` of any dtype; ``threshold`` and ``instances``
    default to the model's (``instances.method`` auto: the centre head's peaks when the model
    has one, else the distance watershed).
    """
    from ..normalization import normalize_image

    t0 = time.perf_counter()
    norm = normalize_image(image, model.normalization)
    prob, centres = predict_maps(model, norm, cfg, normalized=True)
    t1 = time.perf_counter()
    labels = _instances(model, prob, centres, threshold, instances)
    t2 = time.perf_counter()
    ok, why = _domain(model, norm, labels)
    t3 = time.perf_counter()
    timings = {"probabilities_s": t1 - t0, "instances_s": t2 - t1, "domain_s": t3 - t2}
    return Segmentation(norm, prob, centres, labels, ok, why, timings)


def _instances(
    model: LoadedModel,
    prob: np.ndarray,
    centres: np.ndarray | None,
    threshold: float | None,
    instances: InstanceConfig | None,
) -> np.ndarray:
    """Threshold (the model's unless given) -> instance labels (the model's settings unless
    given; seeded at the centre map's peaks when there is one)."""
    from ..instances import segment_instances  # scipy.ndimage: not for `beadseg merge`

    thr = model.threshold if threshold is None else threshold
    return segment_instances(prob, centres, instances or model.instances, thr)


def _domain(model: LoadedModel, norm: np.ndarray, labels: np.ndarray) -> tuple[bool, str]:
    """(in the model's training domain, why not) of one normalised image and its beads."""
    from ..domain import domain_check

    return domain_check(model.fingerprint, norm, labels)


def segment_image(
    model: LoadedModel,
    image: np.ndarray,
    cfg: PredictConfig | None = None,
    threshold: float | None = None,
    instances: InstanceConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Segment one image array: (probabilities, instance labels, timings in s).

    ``image`` is ``H x W`` (grey) or ``H x W x C``, of any dtype: it is normalised as the
    model was trained. ``threshold`` and ``instances`` default to the model's. See
    :func:`segment` for the centre map and the domain check.
    """
    s = segment(model, image, cfg, threshold, instances)
    return s.probabilities, s.labels, s.timings


@dataclass
class ImageResult:
    """What predict found in one image."""

    name: str
    count: int
    foreground_fraction: float
    height: int
    width: int
    timings: dict[str, float]
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    out_of_domain: bool = False
    domain_reason: str = ""
    pixel_size_um: float | None = None


def _grey(image: np.ndarray) -> np.ndarray:
    """Channel mean of an ``H x W x C`` image (a grey ``H x W`` image is returned as is)."""
    if image.ndim == 2:
        return image
    # a matrix-vector product: ~3x faster than image.mean(-1) over a 3-long last axis
    return image @ np.full(image.shape[-1], 1 / image.shape[-1], image.dtype)


def write_overlays(
    out: Path, stem: str, image: np.ndarray, labels: np.ndarray, caption: str | None, mode: str = "auto"
) -> None:
    """``overlays/NAME.png`` (:func:`~beadseg.inference.overlay.colour_overlay`) and, for
    frames above 2 MP, ``overlays/NAME_preview.png`` (the whole frame, long side <= 1600 px),
    as ``mode`` (``PredictConfig.overlays``) says: ``auto`` writes the full-size overlay only for
    frames without a preview."""
    if mode == "none":
        return
    rgb = colour_overlay(image, labels, caption)
    small = preview(rgb)
    if small is not None:
        write_rgb_png(out / "overlays" / f"{stem}_preview.png", small)
    if mode == "full" or small is None:
        write_rgb_png(out / "overlays" / f"{stem}.png", rgb)


def write_outputs_of(
    out: Path,
    stem: str,
    image: np.ndarray,
    prob: np.ndarray,
    labels: np.ndarray,
    save_probabilities: bool = False,
    pixel_size_um: float | None = None,
    caption: str | None = None,
    overlays: str = "auto",
) -> None:
    """Write one image's outputs: ``masks/``, ``labels/``, ``overlays/``, ``beads/`` (and
    ``probabilities/``), each atomically; returns when all are written.

    With ``pixel_size_um`` the bead table has µm columns and the label TIFF its calibration;
    ``caption`` is written into the overlay's corner; ``overlays`` is
    ``PredictConfig.overlays``. The PNG and TIFF encoders (zlib)
    release the GIL, so the files are encoded by worker threads while this thread measures
    the beads: ~2.5x less wall time on a 4K frame.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..instances import bead_table

    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = [
            pool.submit(write_overlays, out, stem, image, labels, caption, overlays),  # longest: first
            pool.submit(write_mask, out / "masks" / f"{stem}.png", labels > 0),
            pool.submit(write_labels, out / "labels" / f"{stem}.tif", labels, pixel_size_um),
        ]
        if save_probabilities:
            jobs.append(pool.submit(write_float_tiff, out / "probabilities" / f"{stem}.tif", prob))
        table = bead_table(labels, _grey(image), prob, pixel_size_um)
        write_columns_csv(out / "beads" / f"{stem}.csv", table)
        for job in jobs:
            job.result()  # re-raises a writer's error here


@dataclass
class Inferred:
    """A frame after the network: what :func:`infer_file` hands to :func:`finish_file`."""

    path: Path
    image: np.ndarray  # as read, [0, 1] by dtype: for the overlay and the bead table
    normalized: np.ndarray  # as the model saw it (float16): for the domain check
    probabilities: np.ndarray
    centres: np.ndarray | None
    timings: dict[str, float]
    pixel_size_um: float | None = None  # given, or the file's own (see io.read_pixel_size_um)


def infer_file(
    model: LoadedModel, path: Path, cfg: PredictConfig, image: np.ndarray | None = None
) -> Inferred:
    """The first half of :func:`predict_file`: read the image (unless ``image``, the file as
    read already, is given), run the network. It releases the GIL for most of its time (PNG
    decoding, ONNX Runtime or torch), so :func:`predict_images` runs it for the next frame while
    the current one is finished."""
    from ..normalization import normalize_image

    t0 = time.perf_counter()
    image = read_image(path) if image is None else image
    pixel_size = cfg.pixel_size_um if cfg.pixel_size_um is not None else read_pixel_size_um(path)
    t1 = time.perf_counter()
    norm = normalize_image(image, model.normalization)
    prob, centres = predict_maps(model, norm, cfg, normalized=True)
    # kept for the domain check only (robust statistics): half the memory of a frame waiting
    # to be finished while the next one is in the network
    norm = norm.astype(np.float16)
    t2 = time.perf_counter()
    timings = {"read_s": t1 - t0, "probabilities_s": t2 - t1}
    return Inferred(Path(path), image, norm, prob, centres, timings, pixel_size)


def finish_file(
    model: LoadedModel,
    inferred: Inferred,
    out: Path,
    cfg: PredictConfig,
    threshold: float | None = None,
    keep: bool = False,
    write_outputs: bool = True,
    instances: InstanceConfig | None = None,
) -> ImageResult:
    """The second half of :func:`predict_file`: instances, the domain check, then the files of
    the frame; ``instances`` defaults to the model's."""
    prob, timings = inferred.probabilities, dict(inferred.timings)
    t0 = time.perf_counter()
    labels = _instances(model, prob, inferred.centres, threshold, instances)
    t1 = time.perf_counter()
    in_domain, domain_reason = _domain(model, inferred.normalized, labels)
    timings |= {"instances_s": t1 - t0, "domain_s": time.perf_counter() - t1}
    stem = inferred.path.stem
    if write_outputs:
        t1 = time.perf_counter()
        caption = f"{int(labels.max())} beads | {model_label(model.source)}"
        write_outputs_of(
            out,
            stem,
            inferred.image,
            prob,
            labels,
            cfg.save_probabilities,
            inferred.pixel_size_um,
            caption,
            cfg.overlays,
        )
        timings["write_s"] = time.perf_counter() - t1
    h, w = labels.shape
    return ImageResult(
        stem,
        int(labels.max()),
        float((labels > 0).mean()),
        h,
        w,
        timings,
        labels if keep else None,
        prob if keep else None,
        not in_domain,
        domain_reason,
        inferred.pixel_size_um,
    )


def model_label(source: str | Path) -> str:
    """A model's short name for captions: the file's stem, with its run folder for the
    generic names a training run gives (``run3/best``)."""
    p = Path(str(source))
    return f"{p.parent.name}/{p.stem}" if p.stem in ("best", "last") and p.parent.name else p.stem


def predict_file(
    model: LoadedModel,
    path: Path,
    out: Path,
    cfg: PredictConfig,
    threshold: float | None = None,
    keep: bool = False,
    write_outputs: bool = True,
    inferred: Inferred | None = None,
    instances: InstanceConfig | None = None,
) -> ImageResult:
    """Predict one image file and write its outputs into ``out`` (masks/, labels/, overlays/,
    beads/, and probabilities/ with ``cfg.save_probabilities``); ``inferred``: its
    :func:`infer_file` when it has run already (see :class:`Lookahead`); ``instances`` defaults
    to the model's."""
    inferred = inferred if inferred is not None else infer_file(model, path, cfg)
    return finish_file(model, inferred, out, cfg, threshold, keep, write_outputs, instances)


def _import_finishing_modules() -> None:
    """Import what the instance step and the writers use (scipy.ndimage, skimage's watershed,
    tifffile, Pillow's PNG codec: ~0.3-0.5 s). Run in a thread while the first frame is in the
    network, which releases the GIL, so a one-frame run does not wait for them afterwards."""
    import PIL.PngImagePlugin  # noqa: F401
    import tifffile  # noqa: F401
    from skimage.segmentation import watershed  # noqa: F401 (lazily loaded: name it)

    from .. import instances  # noqa: F401


class FirstRead:
    """The frame of a one-frame run, read in a thread while the model loads (its PNG decoding
    and the model's imports and session overlap: 0.2-0.4 s of a 4K frame's ~3 s)."""

    def __init__(self, path: Path):
        from concurrent.futures import ThreadPoolExecutor

        self.path = path
        pool = ThreadPoolExecutor(1, thread_name_prefix="beadseg-read")
        self._future = pool.submit(read_image, path)
        pool.shutdown(wait=False)  # the thread ends with the read; nothing waits for it here

    def image(self) -> np.ndarray:
        """The frame as :func:`~beadseg.io.read_image` reads it (its read error raised here)."""
        return self._future.result()

    @staticmethod
    def of(files: list[Path], out: Path) -> FirstRead | None:
        """Start reading ``files[0]`` when it is the only file and has no record in ``out`` yet
        (whether a record can be reused is known only once the model is loaded); else None.

        Only for one frame: a frame decoded before the model's session exists raised the peak
        RSS of 20 streamed 4K frames from 1.16 to 1.31-1.36 GB (measured), and over many frames
        the 0.2-0.4 s saved once does not matter."""
        if len(files) != 1 or _record_path(out, files[0].stem).is_file():
            return None
        return FirstRead(files[0])


class Lookahead:
    """Runs :func:`infer_file` of the next frame in a worker thread while the caller finishes the
    current one (instances, writes). At most two frames are in memory: the one being finished
    and the one being inferred. A frame that was not started ahead is inferred on :meth:`take`."""

    def __init__(self, model: LoadedModel, cfg: PredictConfig, first_read: FirstRead | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self._model, self._cfg = model, cfg
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="beadseg-infer")
        self._ahead: tuple[Path, object] | None = None
        self._first_read = first_read

    def start(self, path: Path) -> None:
        """Begin reading and inferring ``path`` (the frame after the one being finished)."""
        if self._ahead is None:
            self._ahead = (path, self._pool.submit(infer_file, self._model, path, self._cfg))

    def take(self, path: Path) -> Inferred:
        """The inferred frame ``path`` (its read or network errors raised here)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == path:
            return ahead[1].result()
        if ahead is not None:
            ahead[1].cancel()
        first, self._first_read = self._first_read, None
        image = first.image() if first is not None and first.path == path else None
        return infer_file(self._model, path, self._cfg, image)

    def __enter__(self) -> Lookahead:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- many images


def collect_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files, folders (or their images/ subfolder) and globs, sorted and de-duplicated.

    Raises
    ------
    InputError
        No input, or two different files with the same stem (their outputs, named by the
        stem, would overwrite each other).
    """
    if not inputs:
        raise InputError("no input given; name image files, folders or globs")
    files: list[Path] = []
    for item in inputs:
        files += find_images(item)
    seen, out, by_stem = set(), [], {}
    for f in sorted(files):
        if f.resolve() in seen:
            continue
        if f.stem in by_stem:
            raise InputError(
                f"{by_stem[f.stem]} and {f} have the same name {f.stem!r}; outputs are named by "
                "it: rename one, or predict them into separate --out folders"
            )
        seen.add(f.resolve())
        by_stem[f.stem] = f
        out.append(f)
    return out


def check_threshold(threshold: float | None) -> None:
    """A probability threshold must lie strictly between 0 and 1 (None: the model's)."""
    if threshold is not None and not 0 < threshold < 1:
        raise InputError(
            f"--threshold {threshold} is not a probability between 0 and 1 (exclusive); "
            "e.g. 0.5, or leave it out to use the model's"
        )


def model_identity(source: str | Path) -> str:
    """The SHA-256 of a model file's bytes (a model is its content, not its path); a model
    that is not a file (built in memory) is identified by its name."""
    from ..checkpoint import file_sha256

    return file_sha256(source) if Path(source).is_file() else f"name:{source}"


def predict_settings(
    model: str | Path,
    cfg: PredictConfig,
    threshold: float | None = None,
    inputs: list[str | Path] | None = None,
    shard: tuple[int, int] | None = None,
) -> dict:
    """What decides a prediction folder's content: the model's bytes, the threshold, the
    predict settings that change outputs (not the device, engine, threads or batch size), the inputs and the
    shard. ``beadseg predict`` records it for its output folder; each frame's record carries
    the hash of the part that concerns one frame (:func:`record_hash`)."""
    from ..checkpoint import resolve_model_path

    return {
        "model": str(model),
        "model_sha256": model_identity(resolve_model_path(model)),
        "threshold": threshold,
        "predict": cfg.model_dump(exclude=_NOT_COMPARED | {"batch_size"}),
        "inputs": [os.path.abspath(str(i)) for i in inputs or []],  # globs too, as given
        "shard": list(shard) if shard else None,
    }


def record_hash(settings: dict) -> str:
    """The hash stored in every frame's record: model bytes, threshold, predict settings and
    instance settings when not the model's (a record made otherwise is predicted again, never
    reused)."""
    import hashlib

    key = {k: settings[k] for k in ("model_sha256", "threshold", "predict", "instances") if k in settings}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CountRow:
    """One row of ``counts.csv``: the beads of one image."""

    image: str
    source_frame: str | None
    dilution: int | None
    count: int
    foreground_fraction: float
    height: int
    width: int
    area_mp: float
    beads_per_mp: float
    out_of_domain: bool = False  # unlike the model's training images (see beadseg.domain)
    domain_reason: str = ""
    pixel_size_um: float | None = None  # None (an empty cell): not known
    beads_per_mm2: float | None = None

    @classmethod
    def of(cls, r: ImageResult) -> CountRow:
        name = parse_name(r.name)
        mp = r.height * r.width / 1e6
        px = r.pixel_size_um
        area_mm2 = r.height * r.width * (px / 1000) ** 2 if px is not None else None
        return cls(
            r.name,
            name.source_frame,
            name.dilution,
            r.count,
            round(r.foreground_fraction, 6),
            r.height,
            r.width,
            round(mp, 6),
            round(r.count / mp, 3),
            r.out_of_domain,
            r.domain_reason,
            px,
            round(r.count / area_mm2, 3) if area_mm2 else None,
        )

    def as_dict(self) -> dict:
        return asdict(self)


COUNT_FIELDS = [f.name for f in fields(CountRow)]
#: counts.csv columns older runs did not write (read as empty)
_NEWER_COUNT_FIELDS = ("pixel_size_um", "beads_per_mm2")
ERROR_FIELDS = ["image", "error"]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` -> (i, N) with 0 <= i < N; None stays None."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r} is not i/N (e.g. --shard 0/8)") from None
    if not (n >= 1 and 0 <= i < n):
        raise InputError(f"--shard {text}: need N >= 1 and 0 <= i < N (e.g. 0/4, 1/4, 2/4, 3/4)")
    return i, n


@dataclass
class PredictSummary:
    """What a prediction run did (also written as ``summary.json``)."""

    n_images: int = 0
    n_errors: int = 0
    n_resumed: int = 0
    megapixels: float = 0.0
    timings_s: dict[str, float] = field(default_factory=dict)
    counts: list[CountRow] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    @property
    def mp_per_s(self) -> dict[str, float]:
        return {k: self.megapixels / v for k, v in self.timings_s.items() if v > 0}

    @property
    def total_count(self) -> int:
        return sum(r.count for r in self.counts)

    def add(self, row: CountRow, result: ImageResult | None) -> None:
        """Count a predicted image (``result``) or a resumed one (``result`` None)."""
        self.counts.append(row)
        self.n_images += 1
        if result is None:
            self.n_resumed += 1
            return
        self.megapixels += result.height * result.width / 1e6
        for k, v in result.timings.items():
            self.timings_s[k] = self.timings_s.get(k, 0.0) + v

    def as_dict(self) -> dict:
        """The ``summary.json`` content."""
        return {
            "n_images": self.n_images,
            "n_errors": self.n_errors,
            "n_resumed": self.n_resumed,
            "megapixels": self.megapixels,
            "timings_s": self.timings_s,
            "mp_per_s": self.mp_per_s,
            "counts": [r.as_dict() for r in self.counts],
        }


def _record_path(out: Path, stem: str) -> Path:
    return out / "records" / f"{stem}.json"


#: settings that may differ between runs whose results are merged (same model, same numbers)
_NOT_COMPARED = {"device", "runtime", "num_threads"}


def _run_settings(
    m: LoadedModel,
    cfg: PredictConfig,
    threshold: float | None,
    shard: tuple[int, int] | None,
    instances: InstanceConfig | None = None,
) -> dict:
    """What makes two runs comparable (``settings.json``; :func:`merge_runs` checks it)."""
    from ..instances import resolve_method

    inst = instances or m.instances
    return {
        "model": m.source,
        "model_meta": {k: v for k, v in m.meta.items() if k not in ("instances", "fingerprint")},
        "threshold": m.threshold if threshold is None else threshold,
        "instances": inst.model_dump(),
        "instance_method": resolve_method(inst, m.centre_head),
        "predict": cfg.model_dump(exclude=_NOT_COMPARED),
        "shard": list(shard) if shard else None,
    }


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar (or nothing); yields the function that advances it."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("predicting", total=total)
    with bar:
        yield lambda: bar.update(task, advance=1)


def predict_images(
    model: str | Path,
    inputs: list[str | Path],
    out: str | Path,
    cfg: PredictConfig | None = None,
    threshold: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    shard: tuple[int, int] | None = None,
    instances: InstanceConfig | None = None,
) -> PredictSummary:
    """Predict every input image, one in memory at a time, and write run-level tables.

    Frames that cannot be read are skipped and listed in ``errors.csv``; the others are still
    processed. With ``shard=(i, N)`` only every N-th of the sorted inputs, starting at i, is
    processed, so N cluster jobs cover the inputs with no coordination. A frame whose outputs are
    complete (its ``records/<name>.json``, written last, exists) is not predicted again: a killed
    job resumes where it stopped.

    Writes ``counts.csv``, ``beads.csv`` (every bead, an ``image`` column first), ``errors.csv``,
    ``settings.json``, ``summary.json``, ``config.yaml`` (the resolved
    :class:`~beadseg.config.PredictConfig`) and the per-image outputs of :func:`predict_file`.
    ``cfg.pixel_size_um`` (else each TIFF's resolution tags) adds the µm columns and
    beads_per_mm2; it is part of the settings, so a run with another one reuses no record.
    ``instances`` (default: the model's settings) picks how beads are separated (``method``:
    the centre head's peaks for models that have one, else the distance watershed, see
    :class:`~beadseg.config.InstanceConfig`).

    Raises
    ------
    InputError
        No input, or no input could be predicted.
    """
    cfg = cfg or PredictConfig()
    check_threshold(threshold)
    files = collect_inputs(inputs)
    if shard is not None:
        files = files[shard[0] :: shard[1]]
    _fewer_malloc_arenas()  # before the engine's and the lookahead's threads exist
    first_read = FirstRead.of(files, Path(out))  # decoded while the model loads
    m = load_model(model, cfg.device, cfg.runtime, cfg.num_threads)
    digest = _frame_digest(m, cfg, threshold, instances)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = _run_settings(m, cfg, threshold, shard, instances)
    summary = PredictSummary()
    threading.Thread(target=_import_finishing_modules, daemon=True).start()
    with _progress(progress, len(files)) as advance, Lookahead(m, cfg, first_read) as ahead:
        for i, f in enumerate(files):
            record = _record_path(out, f.stem)
            try:
                done = _reusable_record(record, f, digest)
                if done is not None:
                    summary.add(done, None)
                    continue
                inferred = ahead.take(f)
                following = _next_to_predict(files[i + 1 :], out, digest)
                if following is not None:
                    ahead.start(following)  # its network runs while this frame is finished
                r = predict_file(m, f, out, cfg, threshold, inferred=inferred, instances=instances)
            except BeadsegError as exc:
                summary.errors.append({"image": str(f), "error": str(exc)})
                if log:
                    log(f"skipped {f}: {exc}")
                continue
            finally:
                advance()
            row = CountRow.of(r)
            # last: its presence marks the frame complete, for this source file and settings
            write_json(record, {**row.as_dict(), "source": str(f.resolve()), "settings_hash": digest})
            summary.add(row, r)
    summary.n_errors = len(summary.errors)
    _warn_out_of_domain(summary.counts, m)
    _write_run_tables(out, summary, {**settings, "device": m.device_type, "runtime": m.runtime}, cfg)
    if not summary.counts and summary.errors:
        first = summary.errors[0]["error"]
        more = f" (and {len(summary.errors) - 1} more)" if len(summary.errors) > 1 else ""
        raise InputError(f"no image could be predicted: {first}{more}")
    return summary


def _fewer_malloc_arenas() -> bool:
    """Let glibc's malloc keep at most 2 arenas in this process. Each thread that allocates
    (network, lookahead, writers) otherwise gets its own arena, and freed frame-sized buffers
    stay spread over them: streaming 100 4K frames peaked at 1.50 GB RSS with the default and at
    1.19 GB with 2 arenas, in the same time (203 vs 207 s; measured, BENCHMARKS.md). True where
    applied (glibc only)."""
    from ..memory import mallopt

    return mallopt(M_ARENA_MAX=2)


def _frame_digest(m, cfg: PredictConfig, threshold: float | None, instances: InstanceConfig | None) -> str:
    """The :func:`record_hash` every frame record of this run carries."""
    return record_hash(
        {
            "model_sha256": model_identity(m.source),
            "threshold": threshold,
            "predict": cfg.model_dump(exclude=_NOT_COMPARED | {"batch_size"}),
            # instance settings other than the model's are part of what a record holds
            **({"instances": instances.model_dump()} if instances else {}),
        }
    )


def _write_run_tables(out: Path, summary: PredictSummary, settings: dict, cfg: PredictConfig) -> None:
    """The run-level files: counts.csv, beads.csv (every bead, sorted by image; resumed frames'
    from their beads/NAME.csv), errors.csv, settings.json, summary.json, config.yaml,
    provenance.json."""
    write_csv(out / "counts.csv", [r.as_dict() for r in summary.counts], COUNT_FIELDS)
    images = sorted(r.image for r in summary.counts)
    concat_bead_tables(out / BEADS_CSV, [(name, out / "beads" / f"{name}.csv") for name in images])
    write_csv(out / "errors.csv", summary.errors, ERROR_FIELDS)
    write_json(out / "settings.json", settings)
    write_json(out / "summary.json", summary.as_dict())
    save_config(cfg, out / "config.yaml")
    write_provenance(out, "predict")


def _next_to_predict(files: list[Path], out: Path, digest: str) -> Path | None:
    """The first of ``files`` whose record cannot be reused (None: all are done)."""
    return next((g for g in files if _reusable_record(_record_path(out, g.stem), g, digest) is None), None)


def _reusable_record(record: Path, source: Path, digest: str) -> CountRow | None:
    """The counts of a frame already predicted from this very file with these settings (None:
    predict it). Records of older versions (no hash), of another file with the same name or of
    other settings are never reused."""
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except ValueError:
        return None  # damaged: predict again
    if data.get("settings_hash") != digest or data.get("source") != str(source.resolve()):
        return None
    try:
        return CountRow(**{k: data[k] for k in COUNT_FIELDS if k in data})
    except TypeError:
        return None  # fields missing: predict again


def _warn_out_of_domain(rows: list[CountRow], m: LoadedModel) -> None:
    """One warning line per run naming the images unlike the model's training data."""
    import warnings

    odd = [r.image for r in rows if r.out_of_domain]
    if odd:
        shown = ", ".join(odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        warnings.warn(
            f"{len(odd)} of {len(rows)} images look unlike the training data of {m.source} "
            f"({shown}); their counts may be wrong (counts.csv: out_of_domain, domain_reason)",
            BeadsegWarning,
            stacklevel=3,
        )


# ----------------------------------------------------------------------------- merging runs


@dataclass(frozen=True)
class MergeSummary:
    """What :func:`merge_runs` joined (``missing_shards``: shards left out with ``incomplete``)."""

    n_images: int
    n_errors: int
    missing_shards: list[str] = field(default_factory=list)


def _comparable_settings(settings: dict) -> dict:
    """Settings minus what may differ between shards, in today's form (old runs wrote
    ``blend: gaussian`` and ``instances.threshold``; both read as today's settings)."""
    # instance_method follows from model and instances (older runs did not write it)
    drop = ("shard", "device", "runtime", "instance_method")
    key = {k: v for k, v in settings.items() if k not in drop}
    if isinstance(key.get("predict"), dict):
        key["predict"] = PredictConfig(**key["predict"]).model_dump(exclude=_NOT_COMPARED)
    if isinstance(key.get("instances"), dict):
        key["instances"] = InstanceConfig(**key["instances"]).model_dump()
    return key


def _read_run(run: Path) -> tuple[dict, list[dict], list[dict]]:
    """settings.json, counts.csv and errors.csv of a finished prediction folder."""
    sfile = run / "settings.json"
    if not sfile.is_file() or not (run / "counts.csv").is_file():
        raise InputError(f"{run} is not a finished `beadseg predict` folder (no settings.json or counts.csv)")
    try:
        settings = json.loads(sfile.read_text())
        if not isinstance(settings, dict):
            raise ValueError("not a mapping")
    except (ValueError, UnicodeDecodeError):
        raise InputError(
            f"{sfile} is damaged (not the JSON `beadseg predict` writes); predict that shard again"
        ) from None
    tables = []
    for name, columns in (("counts.csv", COUNT_FIELDS), ("errors.csv", ERROR_FIELDS)):
        path = run / name
        if name == "errors.csv" and not path.is_file():
            tables.append([])
            continue
        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                header = reader.fieldnames or []
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(
                f"{path} cannot be read ({type(exc).__name__}); predict that shard again"
            ) from None
        required = [c for c in columns if c not in _NEWER_COUNT_FIELDS]
        missing = [c for c in required if c not in header] if rows or header else []
        if missing or any(None in r or None in r.values() for r in rows):
            raise InputError(
                f"{path} is damaged ({'missing columns ' + ', '.join(missing) if missing else 'ragged rows'}"
                "); predict that shard again"
            )
        tables.append(rows)
    return settings, tables[0], tables[1]


def _is_shard(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)


def _missing_shards(settings: list[dict]) -> tuple[int, list[int]] | None:
    """(N, the shard indices missing) when the runs are shards i/N and not all N are given."""
    shards = [tuple(s["shard"]) for s in settings if _is_shard(s.get("shard"))]
    if not shards:
        return None
    n = shards[0][1]
    missing = sorted(set(range(n)) - {i for i, _ in shards})
    return (n, missing) if missing else None


def merge_runs(runs: list[str | Path], out: str | Path, incomplete: bool = False) -> MergeSummary:
    """Join the counts.csv / errors.csv of prediction runs (e.g. the shards of a job array),
    and their beads.csv (sorted by image) when every run has one.

    Parameters
    ----------
    runs : paths
        Finished prediction folders of one model and one set of settings.
    out : path
        The merged folder (not one of ``runs``).
    incomplete : bool
        Merge although shards of the array are missing; the merged settings.json then lists
        them (``missing_shards``) and the run is marked incomplete.

    Raises
    ------
    InputError
        A folder is not a finished prediction run or is damaged, runs were made with different
        models, settings or shard counts, an image was predicted in more than one run, shards
        are missing (without ``incomplete``), or ``out`` is one of ``runs``.
    """
    if not runs:
        raise InputError("give the prediction folders to merge")
    out = Path(out)
    if any(out.resolve() == Path(r).resolve() for r in runs):
        raise InputError(f"--out {out} is one of the folders being merged; give a new folder")
    ref_key, ref_run = None, None
    rows, errors, all_settings = [], [], []
    for run in map(Path, runs):
        settings, counts, errs = _read_run(run)
        all_settings.append(settings)
        try:
            key = _comparable_settings(settings)
        except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
            raise InputError(
                f"{run / 'settings.json'} is damaged (settings beadseg cannot read); predict that shard again"
            ) from None
        if ref_key is None:
            ref_key, ref_run = key, run
        elif key != ref_key:
            diff = sorted(k for k in key.keys() | ref_key.keys() if key.get(k) != ref_key.get(k))
            raise InputError(
                f"{run} was made with other settings than {ref_run} ({', '.join(diff)}"
                "); merge only runs of one model and one set of settings"
            )
        rows += counts
        errors += errs
    dup = sorted(n for n, k in Counter(r["image"] for r in rows).items() if k > 1)
    if dup:
        raise InputError(f"images predicted in more than one run: {', '.join(dup[:5])}")
    counts_by_n = {s["shard"][1] for s in all_settings if _is_shard(s.get("shard"))}
    if len(counts_by_n) > 1:
        raise InputError(
            f"the runs are shards of arrays of different sizes ({sorted(counts_by_n)}); merge one array"
        )
    gap = _missing_shards(all_settings)
    if gap and not incomplete:
        n, missing = gap
        raise InputError(
            f"shards {', '.join(f'{i}/{n}' for i in missing)} are missing ({len(runs)} of {n} "
            "given); give every shard's folder, or --incomplete to merge what is there"
        )
    rows.sort(key=lambda r: r["image"])
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "counts.csv", rows, COUNT_FIELDS)
    write_csv(out / "errors.csv", errors, ERROR_FIELDS)
    tables = [Path(r) / BEADS_CSV for r in runs]
    if all(t.is_file() for t in tables):  # runs of older versions have none
        merge_bead_tables(out / BEADS_CSV, tables)
    record = {**ref_key, "merged_from": [str(r) for r in runs], "complete": not gap}
    if gap:
        record["missing_shards"] = [f"{i}/{gap[0]}" for i in gap[1]]
    write_json(out / "settings.json", record)
    return MergeSummary(len(rows), len(errors), [f"{i}/{gap[0]}" for i in gap[1]] if gap else [])
