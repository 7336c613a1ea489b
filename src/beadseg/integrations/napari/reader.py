"""npe2 reader: a `beadseg predict` output folder opens as, per image, the image it predicted and
its instance labels drawn as outlines, with the per-bead table as layer features (two layers
per image)."""

from __future__ import annotations

from collections.abc import Callable

from .layers import LayerData, is_prediction_folder, prediction_layers


def get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """The reader function for a prediction folder; None for any other path (napari then asks
    its other readers)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return read_prediction_folder if is_prediction_folder(path) else None


def read_prediction_folder(path: str | list[str]) -> list[LayerData]:
    """Layer data of a prediction folder (see :func:`.layers.prediction_layers`)."""
    return prediction_layers(path[0] if isinstance(path, list) else path)
