"""`beadseg predict`: probabilities, masks, bead instances, counts for images of any size.

Inference runs either on the whole frame in one call or on tiles in batches. Tiles start on a
grid aligned with the network's pooling (multiples of ``2**depth``), overlap by ``overlap`` px
and are blended on *probabilities* before any threshold: each tile's weight is zero near edges
inside the image (where a tile lacks context) and rises with a raised-cosine ramp half-way into
the overlap, so every pixel comes from tile interiors. With an overlap of twice the network's
reach (the default UNet sees 44 px to each side; default overlap 96) the result equals
full-frame inference away from the frame border.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, model_from_checkpoint, resolve_model_path
from .config import InstanceConfig, PredictConfig
from .devices import resolve_device
from .errors import BeadsegError, InputError
from .instances import bead_table, instances_from_mask
from .io import (
    find_images,
    read_image,
    to_channels,
    write_csv,
    write_float_tiff,
    write_indexed_png,
    write_labels,
    write_mask,
)
from .naming import parse_name
from .provenance import write_json, write_provenance


@dataclass
class LoadedModel:
    """A network ready for inference with the settings it was trained/calibrated with."""

    net: torch.nn.Module
    in_channels: int
    depth: int
    threshold: float
    instances: InstanceConfig
    source: str
    meta: dict = field(default_factory=dict)


def load_model(model: str | Path, device: torch.device | None = None) -> LoadedModel:
    """Load a model for inference (see :func:`resolve_model_path`)."""
    from .models import fuse_for_inference

    path = resolve_model_path(model)
    state = load_checkpoint(path)
    net = fuse_for_inference(model_from_checkpoint(state, path))
    meta = state["meta"]
    device = device or torch.device("cpu")
    net = net.to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)  # 2-3x faster convolutions on CPU
    return LoadedModel(net, meta["in_channels"], meta["model"]["depth"],
                       float(meta.get("threshold", 0.5)),
                       InstanceConfig(**meta.get("instances", {})), str(path), meta)


# ----------------------------------------------------------------------------- probabilities


def _tile_starts(size: int, tile: int, overlap: int, align: int) -> list[int]:
    """Evenly spaced tile origins, multiples of ``align``, neighbours sharing >= ``overlap`` px
    (less at most ``align``); the last tile may run up to ``align`` px past the end (padded)."""
    if size <= tile:
        return [0]
    n = int(np.ceil((size - overlap) / (tile - overlap)))
    last = size - tile
    return sorted({int(round(i * last / max(n - 1, 1) / align)) * align for i in range(n)})


def _ramp(tile: int, overlap: int, align: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    """1-D tile weight: zero in a dead margin at edges inside the image, then a raised-cosine ramp.

    The ramp (``max(overlap // 4, align)`` px) is centred ``overlap / 2`` px from the tile edge, so
    a pixel is taken only from tiles where it lies at least ``overlap / 2 - ramp / 2`` px from
    the edge, where the tile's missing context no longer reaches it.
    """
    w = np.ones(tile, np.float32)
    ramp = max(overlap // 4, align)
    dead = max(overlap // 2 - ramp // 2, 0)
    up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
    prof = np.concatenate([np.zeros(dead), up]).astype(np.float32)[:tile]
    if taper_start:
        w[: len(prof)] = prof
    if taper_end:
        w[tile - len(prof):] = np.minimum(w[tile - len(prof):], prof[::-1])
    return w


def _forward(net, batch: np.ndarray, device) -> np.ndarray:
    x = torch.from_numpy(batch).to(device)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return torch.sigmoid(net(x)).float().cpu().numpy()[:, 0]


def predict_probabilities(model: LoadedModel, image: np.ndarray, cfg: PredictConfig | None = None,
                          device: torch.device | None = None) -> np.ndarray:
    """Bead probability of every pixel of an ``H x W x C`` image in [0, 1].

    Parameters
    ----------
    model : LoadedModel
    image : ndarray
        float32 ``H x W x C``; channels are adapted to the model (grey <-> RGB).
    cfg : PredictConfig
        ``mode`` auto/full/tiled, ``tile_size``, ``overlap``, ``batch_size``, ``blend``.

    Returns
    -------
    ndarray of float32, ``H x W``
    """
    cfg = cfg or PredictConfig()
    device = device or next(model.net.parameters(), torch.empty(0)).device
    image = to_channels(image, model.in_channels)
    h, w = image.shape[:2]
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), np.float32)
    mode = cfg.mode
    if mode == "auto":
        mode = "full" if h * w / 1e6 <= cfg.full_frame_max_mp else "tiled"
    if mode == "full":
        return _forward(model.net, chw[None], device)[0]
    align = 2 ** model.depth
    tile = int(min(cfg.tile_size, -(-max(h, w) // align) * align))
    tile -= tile % align
    overlap = min(cfg.overlap, tile // 2)
    ys = _tile_starts(h, tile, overlap, align)
    xs = _tile_starts(w, tile, overlap, align)
    ph, pw = max(ys[-1] + tile, h), max(xs[-1] + tile, w)
    if ph > h or pw > w:
        mode_pad = "reflect" if ph - h < h and pw - w < w else "edge"
        chw = np.pad(chw, ((0, 0), (0, ph - h), (0, pw - w)), mode=mode_pad)
    acc = np.zeros((ph, pw), np.float32)
    wsum = np.zeros((ph, pw), np.float32)
    constant = cfg.blend == "constant"
    positions = [(y, x) for y in ys for x in xs]
    # On CPU a call should touch ~0.26 MP: measured here, 512-px tiles run at 13.3 MP/s one at a
    # time but 6.1 MP/s four at a time (the activations no longer fit in cache).
    batch = cfg.batch_size or (8 if device.type == "cuda" else max(1, 262144 // (tile * tile)))
    weights: dict[tuple[bool, ...], np.ndarray] = {}  # computed once per edge pattern
    for b in range(0, len(positions), batch):
        chunk = positions[b:b + batch]
        probs = _forward(model.net, np.stack([chw[:, y:y + tile, x:x + tile] for y, x in chunk]),
                         device)
        for (y, x), p in zip(chunk, probs):
            key = (y > 0, y + tile < h, x > 0, x + tile < w)
            if key not in weights:
                if constant:
                    weights[key] = np.ones((tile, tile), np.float32)
                else:
                    wy = _ramp(tile, overlap, align, key[0], key[1])
                    wx = _ramp(tile, overlap, align, key[2], key[3])
                    weights[key] = wy[:, None] * wx[None, :]
            wt = weights[key]
            acc[y:y + tile, x:x + tile] += p * wt
            wsum[y:y + tile, x:x + tile] += wt
    return (acc[:h, :w] / np.maximum(wsum[:h, :w], 1e-8)).astype(np.float32)


# ----------------------------------------------------------------------------- one image


@dataclass
class ImageResult:
    """What predict found in one image."""

    name: str
    count: int
    foreground_fraction: float
    height: int
    width: int
    timings: dict
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None


def segment_image(model: LoadedModel, image: np.ndarray, cfg: PredictConfig | None = None,
                  threshold: float | None = None,
                  instances: InstanceConfig | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Probabilities -> mask -> instances. Returns (probabilities, labels, timings in s)."""
    t0 = time.perf_counter()
    prob = predict_probabilities(model, image, cfg)
    t1 = time.perf_counter()
    thr = model.threshold if threshold is None else threshold
    inst = instances or model.instances
    labels = instances_from_mask(prob > thr, prob, inst)
    t2 = time.perf_counter()
    return prob, labels, {"probabilities_s": t1 - t0, "instances_s": t2 - t1}


OUTLINE_INDEX = 255
OVERLAY_PALETTE = np.array([(i, i, i) for i in range(255)] + [(255, 230, 0)], np.uint8)


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour of another label: ``find_boundaries(mode="inner")`` of
    scikit-image (tested equal), with array shifts instead of morphology, ~4x faster on 4K."""
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, bool)
    dv = lab[1:] != lab[:-1]
    dh = lab[:, 1:] != lab[:, :-1]
    edge[1:] |= dv
    edge[:-1] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    return edge & (lab > 0)


def overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Overlay as palette indices: the grey image in 0-254, bead outlines = 255 (yellow in
    :data:`OVERLAY_PALETTE`). Written as an indexed PNG, which is far quicker than RGB.
    ``image`` may be H x W x C or grey H x W."""
    grey = image.mean(-1) if image.ndim == 3 else image
    out = np.round(np.clip(grey, 0, 1) * 254).astype(np.uint8)
    out[inner_boundaries(labels)] = OUTLINE_INDEX
    return out


def _table_rows(table: dict[str, np.ndarray]) -> list[dict]:
    """Column arrays -> rows, floats rounded to 3 decimals."""
    keys = list(table)
    return [{k: round(float(v), 3) if isinstance(v, (float, np.floating)) else int(v)
             for k, v in zip(keys, row)} for row in zip(*(table[k] for k in keys))]


def predict_file(model: LoadedModel, path: Path, out: Path, cfg: PredictConfig,
                 threshold: float | None = None, keep: bool = False,
                 write_outputs: bool = True) -> ImageResult:
    """Predict one image file and write its outputs into ``out``."""
    t0 = time.perf_counter()
    image = read_image(path)
    t_read = time.perf_counter() - t0
    prob, labels, timings = segment_image(model, image, cfg, threshold)
    timings["read_s"] = t_read
    stem = Path(path).stem
    if write_outputs:
        t1 = time.perf_counter()
        mask = labels > 0
        grey = image.mean(-1) if image.ndim == 3 else image  # once, for overlay and table
        write_mask(out / "masks" / f"{stem}.png", mask)
        write_labels(out / "labels" / f"{stem}.tif", labels)
        if cfg.save_probabilities:
            write_float_tiff(out / "probabilities" / f"{stem}.tif", prob)
        write_indexed_png(out / "overlays" / f"{stem}.png", overlay(grey, labels),
                          OVERLAY_PALETTE)
        table = bead_table(labels, grey, prob)
        write_csv(out / "beads" / f"{stem}.csv", _table_rows(table), list(table))
        timings["write_s"] = time.perf_counter() - t1
    h, w = labels.shape
    return ImageResult(stem, int(labels.max()), float((labels > 0).mean()), h, w, timings,
                       labels if keep else None, prob if keep else None)


# ----------------------------------------------------------------------------- many images


def collect_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files, folders (or their images/ subfolder) and globs, sorted and de-duplicated."""
    if not inputs:
        raise InputError("no input given; name image files, folders or globs")
    files: list[Path] = []
    for item in inputs:
        files += find_images(item)
    seen, out = set(), []
    for f in sorted(files):
        if f.resolve() not in seen:
            seen.add(f.resolve())
            out.append(f)
    return out


COUNT_FIELDS = ["image", "source_frame", "dilution", "count", "foreground_fraction", "height",
                "width", "area_mp", "beads_per_mp"]


def count_row(r: ImageResult) -> dict:
    """One row of counts.csv."""
    name = parse_name(r.name)
    mp = r.height * r.width / 1e6
    return {"image": r.name, "source_frame": name.source_frame, "dilution": name.dilution,
            "count": r.count, "foreground_fraction": round(r.foreground_fraction, 6),
            "height": r.height, "width": r.width, "area_mp": round(mp, 6),
            "beads_per_mp": round(r.count / mp, 3)}


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


def _record_path(out: Path, stem: str) -> Path:
    return out / "records" / f"{stem}.json"


def predict_images(model: str | Path, inputs: list[str | Path], out: str | Path,
                   cfg: PredictConfig | None = None, threshold: float | None = None,
                   progress: bool = True, log: Callable[[str], None] | None = None,
                   shard: tuple[int, int] | None = None) -> dict:
    """Predict every input image, one in memory at a time, and write run-level tables.

    Frames that cannot be read are skipped and listed in ``errors.csv``; the others are still
    processed. With ``shard=(i, N)`` only every N-th of the sorted inputs, starting at i, is
    processed, so N cluster jobs cover the inputs with no coordination. A frame whose outputs are
    complete (its ``records/<name>.json``, written last, exists) is not predicted again: a killed
    job resumes where it stopped.

    Returns
    -------
    dict
        ``{"n_images", "n_errors", "counts": [...], "timings": {...}}`` (also in summary.json).
    """
    import json

    cfg = cfg or PredictConfig()
    files = collect_inputs(inputs)
    if shard is not None:
        files = files[shard[0]::shard[1]]
    device = resolve_device(cfg.device)
    m = load_model(model, device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "model": m.source,
        "model_meta": {k: v for k, v in m.meta.items() if k != "instances"},
        "threshold": m.threshold if threshold is None else threshold,
        "instances": m.instances.model_dump(),
        "predict": cfg.model_dump(exclude={"device"}),
        "shard": list(shard) if shard else None,
    }
    rows, errors = [], []
    totals: dict[str, float] = {}
    mp_total = 0.0
    resumed = 0
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("predicting", total=len(files))
    try:
        for f in files:
            record = _record_path(out, f.stem)
            try:
                if record.is_file():
                    rows.append(json.loads(record.read_text()))
                    resumed += 1
                    continue
                r = predict_file(m, f, out, cfg, threshold)
            except BeadsegError as exc:
                errors.append({"image": str(f), "error": str(exc)})
                if log:
                    log(f"skipped {f}: {exc}")
                continue
            finally:
                if bar:
                    bar.update(task, advance=1)
            row = count_row(r)
            write_json(record, row)  # last: its presence marks the frame complete
            rows.append(row)
            mp_total += r.height * r.width / 1e6
            for k, v in r.timings.items():
                totals[k] = totals.get(k, 0.0) + v
    finally:
        if bar:
            bar.stop()
    write_csv(out / "counts.csv", rows, COUNT_FIELDS)
    write_csv(out / "errors.csv", errors, ["image", "error"])
    write_json(out / "settings.json", {**settings, "device": str(device)})
    summary = {"n_images": len(rows), "n_errors": len(errors), "n_resumed": resumed,
               "megapixels": mp_total, "timings_s": totals,
               "mp_per_s": {k: mp_total / v for k, v in totals.items() if v > 0},
               "counts": rows}
    write_json(out / "summary.json", summary)
    write_provenance(out, "predict")
    if not rows and errors:
        raise InputError(f"no image could be predicted; see {out / 'errors.csv'}")
    return summary


def merge_runs(runs: list[str | Path], out: str | Path) -> dict:
    """Join the counts.csv / errors.csv of prediction runs (e.g. the shards of a job array).

    Refuses runs made with different models or settings, and images predicted twice.
    """
    import json

    if not runs:
        raise InputError("give the prediction folders to merge")
    ref_key, ref_run = None, None
    rows, errors = [], []
    for run in map(Path, runs):
        sfile = run / "settings.json"
        if not sfile.is_file() or not (run / "counts.csv").is_file():
            raise InputError(f"{run} is not a finished `beadseg predict` folder (no settings.json "
                             "or counts.csv)")
        settings = json.loads(sfile.read_text())
        key = {k: v for k, v in settings.items() if k not in ("shard", "device")}
        if ref_key is None:
            ref_key, ref_run = key, run
        elif key != ref_key:
            diff = sorted(k for k in key if key.get(k) != ref_key.get(k))
            raise InputError(f"{run} was made with other settings than {ref_run} ({', '.join(diff)}"
                             "); merge only runs of one model and one set of settings")
        with open(run / "counts.csv") as f:
            rows += list(csv.DictReader(f))
        with open(run / "errors.csv") as f:
            errors += list(csv.DictReader(f))
    names = [r["image"] for r in rows]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"images predicted in more than one run: {', '.join(dup[:5])}")
    rows.sort(key=lambda r: r["image"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "counts.csv", rows, COUNT_FIELDS)
    write_csv(out / "errors.csv", errors, ["image", "error"])
    write_json(out / "settings.json", {**ref_key, "merged_from": [str(r) for r in runs]})
    return {"n_images": len(rows), "n_errors": len(errors)}
