"""What the napari plugin shows, as plain data: arrays in, napari layer-data tuples out.

Nothing here imports napari or Qt, so the plugin's logic is tested (and usable) without them.
A layer-data tuple is ``(data, kwargs, layer_type)``, what ``viewer._add_layer_from_data`` and
npe2 readers take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.errors import InputError
from ...core.files import read_csv_rows
from ...core.images import canonical_image, read_image, to_unit_float
from ...core.masks import read_labels

LayerData = tuple[object, dict, str]

#: point colour of bead centres (the overlay outlines are yellow)
CENTRE_COLOUR = "#ff00ff"


@dataclass(frozen=True)
class Segmentation:
    """The beads found in one 2-D image.

    Attributes
    ----------
    labels : ndarray of int32, ``H x W``
        Instance labels, 0 = background, beads 1..count.
    beads : dict of str -> ndarray
        The per-bead table (:func:`beadseg.core.labels.bead_table` columns: id, centroid_x,
        centroid_y, area_px, ...), one row per bead.
    model : str
        The checkpoint that produced it.
    threshold : float
        The probability threshold used.
    seconds : float
        Time to segment, model loading excluded.
    """

    labels: np.ndarray
    beads: dict[str, np.ndarray]
    model: str
    threshold: float
    seconds: float

    @property
    def count(self) -> int:
        return int(len(self.beads["id"]))

    @property
    def beads_per_mp(self) -> float:
        h, w = self.labels.shape
        return self.count / (h * w / 1e6)

    def summary(self) -> str:
        """One line for the widget: count, density, model."""
        return (
            f"{self.count} beads, {self.beads_per_mp:.0f} beads/MP "
            f"({Path(self.model).name}, threshold {self.threshold:.2f}, {self.seconds:.1f} s)"
        )


def image_from_array(array, rgb: bool) -> np.ndarray:
    """A 2-D plane of a napari image layer as the canonical image of a file
    (:func:`beadseg.core.images.canonical_image`: ``H x W x C`` in its own dtype, alpha dropped),
    so that the widget's network input is the one ``beadseg predict`` makes of the same pixels.

    Parameters
    ----------
    array : array-like
        ``H x W`` (grey) or, with ``rgb``, ``H x W x 3`` / ``H x W x 4`` (alpha dropped).
    rgb : bool
        Whether the last axis holds colour channels (napari's ``layer.rgb``).

    Raises
    ------
    InputError
        Not a 2-D plane, no pixels, NaN or inf values.
    """
    arr = np.asarray(array)
    if not (arr.ndim == 2 or (rgb and arr.ndim == 3 and arr.shape[-1] in (3, 4))):
        raise InputError(f"the image plane has shape {arr.shape}; beadseg segments one 2-D grey or RGB plane")
    return np.ascontiguousarray(canonical_image(arr, "the image plane"))


def plane_index(position_data: tuple[float, ...], shape: tuple[int, ...], n_leading: int) -> tuple:
    """Indices of the displayed plane along the ``n_leading`` non-spatial axes, from a data
    position (``layer.world_to_data(viewer.dims.point)``), clipped to ``shape``."""
    return tuple(
        int(min(max(round(p), 0), n - 1)) for p, n in zip(position_data[:n_leading], shape[:n_leading])
    )


def segment_array(model, image: np.ndarray, cfg=None, threshold: float | None = None) -> Segmentation:
    """Segment one image with a loaded model.

    Parameters
    ----------
    model : beadseg.inference.LoadedModel
    image : ndarray, ``H x W x C``
        See :func:`image_from_array`; made the network input as predict makes it
        (:func:`beadseg.core.normalization.model_input`).
    cfg : PredictConfig, optional
        Tiling settings (default: :class:`beadseg.core.config.PredictConfig`).
    threshold : float, optional
        Default: the model's.
    """
    import time

    from ...core.labels import bead_table
    from ...inference import segment_image

    t0 = time.perf_counter()
    prob, labels, _ = segment_image(model, image, cfg, threshold)
    table = bead_table(labels, to_unit_float(image), prob)  # grey levels in [0, 1], as predict's
    thr = model.threshold if threshold is None else threshold
    return Segmentation(labels, table, model.source, thr, time.perf_counter() - t0)


def _points_size(beads: dict[str, np.ndarray]) -> float:
    """Marker size: a third of the median bead diameter (at least 2 px), so the bead under it
    stays visible."""
    d = beads.get("equivalent_diameter_px")
    median = float(np.median(d)) if d is not None and len(d) else 6.0
    return max(2.0, median / 3)


def bead_layers(
    labels: np.ndarray,
    beads: dict[str, np.ndarray],
    name: str,
    metadata: dict | None = None,
    scale=None,
    translate=None,
    visible: bool = True,
) -> list[LayerData]:
    """The labels layer (``NAME beads``) and the points layer of bead centres
    (``NAME centres``); both carry the per-bead table as features.

    ``scale`` and ``translate`` (of the last two axes) place them over their image layer.
    """
    beads = {k: np.asarray(v) for k, v in beads.items()}
    place = {}
    if scale is not None:
        place["scale"] = tuple(scale)[-2:]
    if translate is not None:
        place["translate"] = tuple(translate)[-2:]
    meta = dict(metadata or {})
    # napari maps a labels layer's features to label values through an "index" column
    features = {"index": beads["id"], **beads}
    centres = np.stack([beads["centroid_y"], beads["centroid_x"]], axis=1).reshape(-1, 2)
    return [
        (
            labels,
            {"name": f"{name} beads", "features": features, "metadata": meta, "opacity": 0.5,
             "visible": visible, **place},
            "labels",
        ),
        (
            centres,
            {"name": f"{name} centres", "features": beads, "metadata": meta, "size": _points_size(beads),
             "face_color": CENTRE_COLOUR, "border_width": 0, "visible": visible, **place},
            "points",
        ),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- prediction folders


def is_prediction_folder(path: str | Path) -> bool:
    """True for an output folder of `beadseg predict` (labels/ and counts.csv or settings.json)."""
    p = Path(path)
    return (
        p.is_dir()
        and (p / "labels").is_dir()
        and ((p / "counts.csv").is_file() or (p / "settings.json").is_file())
    )


def _read_table(path: Path) -> dict[str, np.ndarray]:
    """A per-bead CSV as numeric columns (an empty file: no columns)."""
    rows = read_csv_rows(path, what="bead table")
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def _counts(folder: Path) -> dict[str, dict]:
    if not (folder / "counts.csv").is_file():
        return {}
    return {r["image"]: r for r in read_csv_rows(folder / "counts.csv", ("image",), "counts table")}


def _bead_table(folder: Path, stem: str) -> dict[str, np.ndarray]:
    table = {}
    if (folder / "beads" / f"{stem}.csv").is_file():
        table = _read_table(folder / "beads" / f"{stem}.csv")
    if not table:  # no beads in the image: an empty table with the columns the layers use
        table = {
            k: np.zeros(0) for k in ("id", "centroid_x", "centroid_y", "area_px", "equivalent_diameter_px")
        }
    table["id"] = table["id"].astype(np.int64)
    return table


def _source_image(folder: Path, stem: str) -> tuple[np.ndarray, bool] | None:
    """The image ``stem`` was predicted from (its record names it) as napari shows it: the
    canonical array, colour last (``rgb`` True) or one plane; None when it is gone."""
    import json

    from ...core.images import read_raw_image

    record = folder / "records" / f"{stem}.json"
    try:
        source = Path(json.loads(record.read_text())["source"])
        raw = read_raw_image(source)
    except (OSError, ValueError, KeyError, TypeError, InputError):
        return None
    return (raw, True) if raw.shape[-1] == 3 else (raw[..., 0], False)


def prediction_layers(folder: str | Path) -> list[LayerData]:
    """Layers of a `beadseg predict` output folder: for each image one image layer and one
    labels layer, the bead outlines drawn once.

    The image layer is the image the run predicted (the path its ``records/NAME.json`` holds)
    and the labels layer colours its beads (napari's layer controls draw them as outlines:
    ``contour``), with the per-bead table (centroids, areas, ...) as features and the
    counts.csv row as metadata. Where the image is gone, the run's overlay (its outlines drawn
    in) stands in, under fainter labels. Only the first image's layers start visible.

    Raises
    ------
    InputError
        Not a prediction folder, or one without label images.
    """
    folder = Path(folder)
    if not is_prediction_folder(folder):
        raise InputError(f"{folder} is not a `beadseg predict` output folder (labels/ and counts.csv)")
    stems = sorted(p.stem for p in (folder / "labels").iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if not stems:
        raise InputError(f"{folder / 'labels'} holds no label images (NAME.tif)")
    counts = _counts(folder)
    layers: list[LayerData] = []
    for i, stem in enumerate(stems):
        labels = read_labels(next((folder / "labels").glob(f"{stem}.tif*")))
        meta = {"source": str(folder), **_metadata(counts.get(stem), labels)}
        shown = {"visible": i == 0, "metadata": meta}
        image = _source_image(folder, stem)
        overlay = folder / "overlays" / f"{stem}.png"
        opacity = 0.5
        if image is not None and image[0].shape[:2] == labels.shape:
            layers.append((image[0], {"name": stem, "rgb": image[1], **shown}, "image"))
        elif overlay.is_file():
            layers.append((read_image(overlay), {"name": f"{stem} overlay", "rgb": True, **shown}, "image"))
            opacity = 0.25  # the overlay has the outlines drawn in
        beads = _bead_table(folder, stem)
        features = {"index": beads["id"], **beads}  # napari maps features to labels by "index"
        kwargs = {"name": f"{stem} beads", "features": features, "opacity": opacity, **shown}
        layers.append((labels, kwargs, "labels"))
    return layers


def _metadata(row: dict | None, labels: np.ndarray) -> dict:
    """count and beads_per_mp of an image: its counts.csv row, else from the labels."""
    if row is not None:
        return {"count": int(row["count"]), "beads_per_mp": float(row["beads_per_mp"])}
    count = int(len(np.unique(labels[labels > 0])))
    return {"count": count, "beads_per_mp": count / (math.prod(labels.shape) / 1e6)}
