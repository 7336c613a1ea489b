"""The count audit of a prediction run: crops for a person to click beads in, and what the
clicks say about the model's counts on that person's own images.

1. :func:`sample_crops` tiles every predicted frame into square crops, bins the crops that hold
   beads by the foreground fraction the model found in them (quantile bins: every density of
   the run is sampled, the densest crops included) and draws the same number from each bin.
2. :func:`write_sheet` writes them for clicking: ``crops.tif`` (a stack, crop x row x col x
   RGB, opened by napari with a slider), ``crops/crop_NNN.png``, ``crops.csv`` (the sheet: which
   frame and where each crop is, its density bin) and ``points.csv``, an empty napari Points
   layer (columns ``index, axis-0, axis-1, axis-2``: crop, row, col) to click in and save.
   The model's own beads are in ``predicted_points.csv`` (same format), to look at only after
   clicking: a click is a bead whose centre lies in the crop (more than half of it shows).
3. :func:`score_clicks` compares the clicks with the model's beads centred in each crop: per
   density bin the measured bias (pooled predicted / clicked - 1) and a count calibration
   (:func:`beadseg.core.intervals.calibrate` over the crops, the random part scaled to a
   frame's area); :func:`corrected_counts` applies it to the run's counts.csv.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError

#: columns of napari's Points-layer CSV for points in a crop stack (crop, row, col)
NAPARI_COLUMNS = ["index", "axis-0", "axis-1", "axis-2"]


@dataclass(frozen=True)
class Crop:
    """One audit crop: ``size`` px square at ``(x0, y0)`` of ``image``; the model's beads
    centred in it and its foreground fraction; its density bin (0: sparsest)."""

    crop: int
    image: str
    x0: int
    y0: int
    size: int
    foreground_fraction: float
    predicted: int
    density_bin: int


def _run_frames(run: Path) -> list[dict]:
    """The frames of a predict folder: name, source image (its record) and output files."""
    counts = run / "counts.csv"
    if not counts.is_file():
        raise InputError(f"{run} has no counts.csv; give the output folder of `beadseg predict`")
    with open(counts, newline="", encoding="utf-8") as f:
        names = [r["image"] for r in csv.DictReader(f)]
    frames = []
    for name in names:
        record, labels = run / "records" / f"{name}.json", run / "labels" / f"{name}.tif"
        beads = run / "beads" / f"{name}.csv"
        if not (record.is_file() and labels.is_file() and beads.is_file()):
            continue
        frames.append({"name": name, "source": json.loads(record.read_text())["source"], "labels": labels})
    if not frames:
        raise InputError(
            f"{run} holds no frame with records/, labels/ and beads/ files; audit the folder "
            "`beadseg predict` wrote (not a merged one)"
        )
    return frames


def bead_centres(run: Path, name: str) -> np.ndarray:
    """``N x 2`` (row, col) centroids of the beads the model found in one frame."""
    with open(run / "beads" / f"{name}.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r["centroid_y"]), float(r["centroid_x"])] for r in rows]).reshape(-1, 2)


def in_crop(points: np.ndarray, x0: float, y0: float, size: int) -> np.ndarray:
    """Which points (row, col) a crop owns: the crop's pixels cover ``[x0 - 0.5, x0 + size -
    0.5)`` (as :func:`beadseg.core.beads.centre_inside`)."""
    from ..core.beads import centre_inside

    return centre_inside(np.asarray(points, float).reshape(-1, 2) - [y0, x0], (size, size))


def _candidates(run: Path, frames: list[dict], size: int, rng) -> list[Crop]:
    """Every non-overlapping crop of every frame holding at least one bead (at most 400 per
    frame, drawn at random)."""
    from ..core.masks import read_labels

    out = []
    for fr in frames:
        labels = read_labels(fr["labels"])
        pts = bead_centres(run, fr["name"])
        h, w = labels.shape
        spots = [(y, x) for y in range(0, h - size + 1, size) for x in range(0, w - size + 1, size)]
        if len(spots) > 400:
            spots = [spots[i] for i in rng.choice(len(spots), 400, replace=False)]
        for y, x in spots:
            n = int(in_crop(pts, x, y, size).sum())
            if n:
                frac = float((labels[y : y + size, x : x + size] > 0).mean())
                out.append(Crop(-1, fr["name"], x, y, size, round(frac, 5), n, -1))
    return out


def sample_crops(
    run: str | Path, size: int = 64, per_bin: int = 6, bins: int = 4, seed: int = 0
) -> list[Crop]:
    """Crops of a predict run across its densities (see the module docstring).

    Raises
    ------
    InputError
        Not a predict folder, frames smaller than ``size``, or no crop holding a bead.
    """
    run = Path(run)
    rng = np.random.default_rng(seed)
    frames = _run_frames(run)
    cands = _candidates(run, frames, size, rng)
    if not cands:
        raise InputError(
            f"no {size}-px crop of {run} holds a bead the model found; give a smaller --size "
            "(frames must be at least that large) or a run with beads"
        )
    frac = np.array([c.foreground_fraction for c in cands])
    edges = np.quantile(frac, np.linspace(0, 1, bins + 1)[1:-1]) if bins > 1 else np.zeros(0)
    which = np.searchsorted(edges, frac, side="right")
    chosen = []
    for b in range(bins):
        members = np.flatnonzero(which == b)
        if len(members) == 0:
            continue
        take = rng.choice(members, min(per_bin, len(members)), replace=False)
        if b == bins - 1 and int(np.argmax(frac)) not in take:
            take[-1] = int(np.argmax(frac))  # the densest crop of the run is always audited
        chosen += [(b, int(i)) for i in sorted(take)]
    return [
        Crop(k, c.image, c.x0, c.y0, size, c.foreground_fraction, c.predicted, b)
        for k, (b, c) in enumerate((b, cands[i]) for b, i in chosen)
    ]


def write_sheet(out: Path, run: str | Path, crops: list[Crop]) -> None:
    """``crops.tif``, ``crops/``, ``crops.csv``, ``points.csv`` (empty napari Points layer),
    ``predicted_points.csv`` and ``instructions.txt`` (see the module docstring)."""
    import tifffile

    from ..core.files import atomic_path, write_csv, write_text
    from ..core.images import read_image, write_image

    run, out = Path(run), Path(out)
    sources = {fr["name"]: fr["source"] for fr in _run_frames(run)}
    stack, predicted = [], []
    cache: dict[str, np.ndarray] = {}
    for c in crops:
        if c.image not in cache:
            cache = {c.image: np.atleast_3d(read_image(sources[c.image]))}  # one frame at a time
        img = cache[c.image][c.y0 : c.y0 + c.size, c.x0 : c.x0 + c.size]
        rgb = np.round(np.clip(np.repeat(img, 3, -1) if img.shape[-1] == 1 else img[..., :3], 0, 1) * 255)
        stack.append(rgb.astype(np.uint8))
        write_image(out / "crops" / f"crop_{c.crop:03d}.png", stack[-1])
        pts = bead_centres(run, c.image)
        for y, x in pts[in_crop(pts, c.x0, c.y0, c.size)]:
            predicted.append([c.crop, round(y - c.y0, 2), round(x - c.x0, 2)])
    with atomic_path(out / "crops.tif") as tmp:
        tifffile.imwrite(tmp, np.stack(stack), photometric="rgb")
    write_csv(out / "crops.csv", [asdict(c) for c in crops], list(Crop.__dataclass_fields__))
    write_csv(out / "points.csv", [], NAPARI_COLUMNS)
    rows = [dict(zip(NAPARI_COLUMNS, [i, *p])) for i, p in enumerate(predicted)]
    write_csv(out / "predicted_points.csv", rows, NAPARI_COLUMNS)
    size = crops[0].size if crops else 0
    write_text(out / "instructions.txt", INSTRUCTIONS.format(n=len(crops), size=size))


INSTRUCTIONS = """Count audit: {n} crops of {size} x {size} px from your frames, sampled across densities.

1. Open crops.tif in napari (one crop per slider step) and add a Points layer (or drag in
   points.csv, an empty one).
2. In every crop, click the centre of every bead whose centre lies inside the crop (a bead cut
   by the crop's edge counts when more than half of it shows). Do not look at
   predicted_points.csv (the model's beads) before you are done.
3. Save the Points layer as CSV (File > Save Selected Layers... > clicks.csv); or write a CSV
   with columns crop, x, y (px inside the crop).
4. beadseg audit RUN --points clicks.csv --out AUDIT2
   reports the model's bias and a count interval per density on your images, and writes the
   run's counts corrected by them (counts_corrected.csv) and, with dilutions, the fit of both.
"""


def read_clicks(path: str | Path, crops: list[Crop]) -> dict[int, np.ndarray]:
    """The clicks per crop (``N x 2`` row, col inside the crop) of a napari Points CSV
    (``axis-0`` crop, ``axis-1`` row, ``axis-2`` col) or a CSV with ``crop, x, y``.

    Raises
    ------
    InputError
        Neither format, a value that is not a number, or a crop number the sheet does not have.
    """
    from ..core.files import read_csv_rows

    fix = "save napari's Points layer as CSV (axis-0, axis-1, axis-2) or write columns crop, x, y"
    rows = read_csv_rows(path, (), "points table", fix)
    header = set(rows[0]) if rows else set()
    napari = {"axis-0", "axis-1", "axis-2"} <= header
    if rows and not napari and not {"crop", "x", "y"} <= header:
        raise InputError(f"{path} has columns {', '.join(sorted(header))}; {fix}")
    known = {c.crop for c in crops}
    out: dict[int, list] = {k: [] for k in known}
    for i, r in enumerate(rows, start=2):
        try:
            k, y, x = (
                (float(r["axis-0"]), float(r["axis-1"]), float(r["axis-2"]))
                if napari
                else (float(r["crop"]), float(r["y"]), float(r["x"]))
            )
        except ValueError:
            raise InputError(f"{path} line {i}: a value is not a number; {fix}") from None
        if round(k) not in known or abs(k - round(k)) > 0.01:
            raise InputError(
                f"{path} line {i}: crop {k:g} is not one of the sheet's crops 0-{len(crops) - 1}"
            )
        out[int(round(k))].append([y, x])
    return {k: np.array(v, float).reshape(-1, 2) for k, v in out.items()}


@dataclass(frozen=True)
class AuditScores:
    """What the clicks say: one row per crop, one per density bin, and the count calibration
    they give (:class:`beadseg.core.intervals.CountCalibration`, ``area_model`` "crops")."""

    crops: tuple[dict, ...]
    bins: tuple[dict, ...]
    calibration: object

    def to_dict(self) -> dict:
        return {"crops": list(self.crops), "bins": list(self.bins), "calibration": self.calibration.to_dict()}


def score_clicks(crops: list[Crop], clicks: dict[int, np.ndarray]) -> AuditScores:
    """The model's beads against the clicks, crop by crop and per density bin: the bias (pooled
    predicted / clicked - 1) and its 95 % interval (t over the crops' log ratios)."""
    from ..core.dilution import t_quantile
    from ..core.intervals import calibrate, log_ratio

    rows = []
    for c in crops:
        pts = clicks.get(c.crop, np.zeros((0, 2)))
        n_true = int(in_crop(pts, 0, 0, c.size).sum())
        rows.append({**asdict(c), "clicked": n_true, "error": c.predicted - n_true})
    bins = []
    for b in sorted({c.density_bin for c in crops}):
        sel = [r for r in rows if r["density_bin"] == b]
        pred, true = sum(r["predicted"] for r in sel), sum(r["clicked"] for r in sel)
        lr = log_ratio([r["predicted"] for r in sel], [r["clicked"] for r in sel])
        n = len(sel)
        half = t_quantile(0.975, n - 1) * lr.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        bins.append(
            {
                "density_bin": b,
                "n_crops": len(sel),
                "foreground_fraction_max": max(r["foreground_fraction"] for r in sel),
                "clicked": true,
                "predicted": pred,
                "bias": pred / true - 1 if true else None,
                # the factor that corrects the model's counts, and its 95 % interval
                "correction": float(np.exp(lr.mean())),
                "correction_ci95": [float(np.exp(lr.mean() - half)), float(np.exp(lr.mean() + half))],
            }
        )
    cal = calibrate(
        [r["predicted"] for r in rows],
        [r["clicked"] for r in rows],
        [r["foreground_fraction"] for r in rows],
        [r["size"] ** 2 for r in rows],
        min_per_bin=max(2, min(b["n_crops"] for b in bins)),
        source="beadseg audit: clicks on crops of this run",
        area_model="crops",
    )
    return AuditScores(tuple(rows), tuple(bins), cal)


def corrected_counts(counts_rows: list[dict], calibration) -> list[dict]:
    """counts.csv rows with the count multiplied by the calibration's correction at each
    frame's foreground fraction (``count_corrected``) and its 95 % interval (``count_low``,
    ``count_high``; ``count`` keeps the model's own count)."""
    out = []
    for r in counts_rows:
        count, frac = float(r["count"]), float(r["foreground_fraction"])
        area = float(r["height"]) * float(r["width"])
        b = calibration.bin_of(frac)
        iv = calibration.interval(count, frac, area)
        out.append({**r, "count_corrected": round(count * float(np.exp(b.mean)), 1), "count_low": iv.low,
                    "count_high": iv.high, "beyond_calibration": iv.beyond})  # fmt: skip
    return out
