"""One frame through predict: read and infer (:func:`infer_file`, run ahead in a thread),
finish (instances, domain check) and write its files (masks, labels, overlays, beads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.config import InstanceConfig, PredictConfig
from ..core.domain import DomainSample, domain_sample
from ..core.files import write_columns_csv
from ..core.images import (
    read_pixel_size_um,
    read_raw_image,
    to_grey,
    to_unit_float,
    write_float_tiff,
    write_rgb_png,
)
from ..core.masks import write_labels, write_mask
from ..core.normalization import model_input
from .counts import ImageResult
from .overlay import colour_overlay, preview, zoom_crops
from .predictor import Predictor
from .records import record_path
from .segmentation import _domain, _instances, predict_maps


def write_overlays(
    out: Path, stem: str, image: np.ndarray, labels: np.ndarray, caption: str | None, mode: str = "auto"
) -> None:
    """``overlays/NAME.png`` (:func:`~beadseg.inference.overlay.colour_overlay`) and, for
    frames above 2 MP, ``overlays/NAME_preview.png`` (the whole frame, long side <= 1600 px)
    with ``overlays/NAME_zoom.png`` (native-resolution crops: densest, sparsest, largest clump,
    :func:`~beadseg.inference.overlay.zoom_crops`), as ``mode`` (``PredictConfig.overlays``)
    says: ``auto`` writes the full-size overlay only for frames without a preview."""
    if mode == "none":
        return
    rgb = colour_overlay(image, labels, caption)
    small = preview(rgb)
    if small is not None:
        write_rgb_png(out / "overlays" / f"{stem}_preview.png", small)
        zoom = zoom_crops(rgb, labels)
        if zoom is not None:
            write_rgb_png(out / "overlays" / f"{stem}_zoom.png", zoom)
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

    from ..core.labels import bead_table

    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = [
            pool.submit(write_overlays, out, stem, image, labels, caption, overlays),  # longest: first
            pool.submit(write_mask, out / "masks" / f"{stem}.png", labels > 0),
            pool.submit(write_labels, out / "labels" / f"{stem}.tif", labels, pixel_size_um),
        ]
        if save_probabilities:
            jobs.append(pool.submit(write_float_tiff, out / "probabilities" / f"{stem}.tif", prob))
        table = bead_table(labels, to_grey(image), prob, pixel_size_um)
        write_columns_csv(out / "beads" / f"{stem}.csv", table)
        for job in jobs:
            job.result()  # re-raises a writer's error here


@dataclass
class Inferred:
    """A frame after the network: what :func:`infer_file` hands to :func:`finish_file`."""

    path: Path
    image: np.ndarray  # for display (to_unit_float, as read_image): the overlay and the bead table
    normalized: DomainSample  # what the domain check reads of the network input, in float16
    probabilities: np.ndarray
    centres: np.ndarray | None
    timings: dict[str, float]
    pixel_size_um: float | None = None  # given, or the file's own (see io.read_pixel_size_um)


def infer_file(model: Predictor, path: Path, cfg: PredictConfig, image: np.ndarray | None = None) -> Inferred:
    """The first half of :func:`predict_file`: read the image (unless ``image``, the file as
    :func:`~beadseg.core.images.read_raw_image` reads it, is given), make the network input as
    training does (:func:`~beadseg.core.normalization.model_input`), run the network. It
    releases the GIL for most of its time (PNG decoding, ONNX Runtime or torch), so
    :func:`predict_images` runs it for the next frame while the current one is finished."""

    t0 = time.perf_counter()
    raw = read_raw_image(path) if image is None else image
    pixel_size = cfg.pixel_size_um if cfg.pixel_size_um is not None else read_pixel_size_um(path)
    image = to_unit_float(raw)
    t1 = time.perf_counter()
    norm = model_input(raw, model.normalization, model.in_channels, str(path))
    prob, centres = predict_maps(model, norm, cfg, normalized=True)
    # what the domain check reads (robust statistics of a subsample and the central window), in
    # float16 as when the whole input was kept: 0.3 MB of a 4K frame instead of 50 MB, and no
    # conversion of 25 M values (0.1 CPU-s)
    sample = domain_sample(norm, np.float16)
    del norm
    t2 = time.perf_counter()
    timings = {"read_s": t1 - t0, "probabilities_s": t2 - t1}
    return Inferred(Path(path), image, sample, prob, centres, timings, pixel_size)


def finish_file(
    model: Predictor,
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
    count, fraction = int(labels.max()), float((labels > 0).mean())
    by_area, interval = count_interval(model, labels, count, fraction)
    return ImageResult(
        stem,
        count,
        fraction,
        h,
        w,
        timings,
        labels if keep else None,
        prob if keep else None,
        not in_domain,
        domain_reason,
        inferred.pixel_size_um,
        interval.low if interval else None,
        interval.high if interval else None,
        interval.beyond if interval else None,
        by_area,
    )


def count_interval(model: Predictor, labels: np.ndarray, count: int, fraction: float):
    """(area-based count, the count's 95 % interval or None) of one frame: the interval from the
    model's count calibration (``meta["count_calibration"]``, :mod:`beadseg.core.intervals`),
    None for a model without one."""
    from ..core.beads import area_count
    from ..core.intervals import CountCalibration

    by_area = area_count(labels)
    cal = CountCalibration.from_dict(model.meta.get("count_calibration"))
    if cal is None:
        return by_area, None
    return by_area, cal.interval(count, fraction, labels.size, by_area)


def model_label(source: str | Path) -> str:
    """A model's short name for captions: the file's stem, with its run folder for the
    generic names a training run gives (``run3/best``)."""
    p = Path(str(source))
    return f"{p.parent.name}/{p.stem}" if p.stem in ("best", "last") and p.parent.name else p.stem


def predict_file(
    model: Predictor,
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


def start_finishing_imports():
    """Start importing what the instance step and the writers use (skimage's watershed,
    tifffile, Pillow's PNG codec: ~0.3-0.5 s) in a thread, while the first frame is in the
    network, which releases the GIL, so a one-frame run does not wait for them afterwards.
    Returns the thread: join it before finishing a frame.

    scipy.ndimage is imported here first, in the caller's thread: the first frame's
    normalisation needs it at once, and scipy imported by two threads at the same time can be
    seen partially initialised (``cannot import name 'PytestTester' from partially initialized
    module``, a predict in CI). Nothing the thread imports is imported by the caller before
    the join.
    """
    import threading

    import scipy.ndimage  # noqa: F401

    thread = threading.Thread(target=_import_finishing_modules, daemon=True)
    thread.start()
    return thread


def _import_finishing_modules() -> None:
    import PIL.PngImagePlugin  # noqa: F401
    import tifffile  # noqa: F401
    from skimage.segmentation import watershed  # noqa: F401 (lazily loaded: name it)

    from ..core import beads as instances  # noqa: F401


class FirstRead:
    """The frame of a one-frame run, read in a thread while the model loads (its PNG decoding
    and the model's imports and session overlap: 0.2-0.4 s of a 4K frame's ~3 s)."""

    def __init__(self, path: Path):
        from concurrent.futures import ThreadPoolExecutor

        self.path = path
        pool = ThreadPoolExecutor(1, thread_name_prefix="beadseg-read")
        self._future = pool.submit(read_raw_image, path)
        pool.shutdown(wait=False)  # the thread ends with the read; nothing waits for it here

    def image(self) -> np.ndarray:
        """The frame as :func:`~beadseg.core.images.read_raw_image` reads it (its read error raised here)."""
        return self._future.result()

    @staticmethod
    def of(files: list[Path], out: Path) -> FirstRead | None:
        """Start reading ``files[0]`` when it is the only file and has no record in ``out`` yet
        (whether a record can be reused is known only once the model is loaded); else None.

        Only for one frame: a frame decoded before the model's session exists raised the peak
        RSS of 20 streamed 4K frames from 1.16 to 1.31-1.36 GB (measured), and over many frames
        the 0.2-0.4 s saved once does not matter."""
        if len(files) != 1 or record_path(out, files[0].stem).is_file():
            return None
        return FirstRead(files[0])


class Lookahead:
    """Runs :func:`infer_file` of the next frame in a worker thread while the caller finishes the
    current one (instances, writes). At most two frames are in memory: the one being finished
    and the one being inferred. A frame that was not started ahead is inferred on :meth:`take`."""

    def __init__(self, model: Predictor, cfg: PredictConfig, first_read: FirstRead | None = None):
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
