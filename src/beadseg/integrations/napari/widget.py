"""The "Segment beads" dock widget: segments the chosen image layer with a beadseg model and adds
its instance labels and bead centres as layers, with the count and beads per MP."""

from __future__ import annotations

from pathlib import Path

import napari
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton
from napari.layers import Image
from napari.qt.threading import FunctionWorker, create_worker
from napari.utils.notifications import show_error

from ...core.errors import BeadsegError
from .layers import Segmentation, bead_layers, image_from_array, plane_index, segment_array

MODEL_CHOICES = ("default", "run folder", "checkpoint")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class SegmentWidget(Container):
    """Segment the image layer shown with a beadseg model.

    Model: ``default`` (the shipped model), a run folder of `beadseg train` (its best.pt) or a
    checkpoint file; device ``auto`` picks CUDA, then MPS, then the CPU. Segmenting runs in a
    worker thread, so the viewer stays responsive; :meth:`run` returns the worker.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self._viewer = napari_viewer
        self._models: dict[tuple[str, str], object] = {}  # loaded once per (model, device)
        self.image = ComboBox(label="image", choices=self._image_layers, nullable=True)
        self.model = ComboBox(label="model", choices=MODEL_CHOICES, value="default")
        self.path = FileEdit(label="path", mode="d", visible=False)
        self.device = ComboBox(label="device", choices=DEVICE_CHOICES, value="auto")
        self.button = PushButton(text="Segment beads")
        self.result = Label(value="")
        super().__init__(widgets=[self.image, self.model, self.path, self.device, self.button, self.result])
        self.model.changed.connect(self._model_kind_changed)
        self.button.changed.connect(self.run)
        layers = napari_viewer.layers
        layers.events.inserted.connect(self.reset_choices)
        layers.events.removed.connect(self.reset_choices)
        layers.selection.events.active.connect(self._follow_active)
        self.reset_choices()
        self._follow_active()

    def _image_layers(self, _widget=None) -> list[Image]:
        return [layer for layer in self._viewer.layers if isinstance(layer, Image)]

    def _follow_active(self, _event=None) -> None:
        """Preselect the active layer when it is an image."""
        active = self._viewer.layers.selection.active
        if isinstance(active, Image) and active in self.image.choices:
            self.image.value = active

    def _model_kind_changed(self, kind: str) -> None:
        self.path.visible = kind != "default"
        self.path.mode = "d" if kind == "run folder" else "r"
        self.path.filter = None if kind == "run folder" else "*.pt"

    def model_source(self) -> str:
        """What :func:`beadseg.inference.load_model` gets: ``default`` or the chosen path."""
        if self.model.value == "default":
            return "default"
        path = self.path.value
        if path is None or str(path) in ("", "."):
            raise BeadsegError(f"choose a {self.model.value} for the model (or model: default)")
        return str(Path(path))

    def _plane(self, layer: Image):
        """The 2-D (grey or RGB) plane of ``layer`` the viewer shows."""
        data = layer.data[0] if layer.multiscale else layer.data
        n_leading = layer.ndim - 2
        if n_leading <= 0:
            return image_from_array(data, layer.rgb)
        index = plane_index(layer.world_to_data(self._viewer.dims.point), data.shape, n_leading)
        return image_from_array(data[index], layer.rgb)

    def _segment(self, image, source: str, device: str) -> Segmentation | str:
        """Runs in the worker thread. A user error (bad model file, unavailable device) comes
        back as its message: an exception would reach napari's handler as a traceback."""
        from ...inference import load_model

        try:
            key = (source, device)
            if key not in self._models:
                # a device name: the CPU runs the model's ONNX file without torch when it has one
                self._models[key] = load_model(source, device)
            return segment_array(self._models[key], image)
        except BeadsegError as exc:
            return str(exc)

    def run(self, _value=None) -> FunctionWorker | None:
        """Segment the chosen image in a worker thread; its layers are added when it returns.

        Returns the started worker (None when there is nothing to segment); a user error (bad
        model path, unavailable device, not a 2-D plane) is shown in the widget and as a
        one-line notification.
        """
        layer = self.image.value
        if layer is None:
            self.result.value = "open an image first"
            return None
        try:
            image = self._plane(layer)
            source = self.model_source()
        except BeadsegError as exc:
            self._show_error(str(exc))
            return None
        self.button.enabled = False
        self.result.value = f"segmenting {layer.name} ..."
        # a bug raised in the thread is shown by napari's notification manager, traceback included
        worker = create_worker(self._segment, image, source, self.device.value, _ignore_errors=True)
        worker.returned.connect(lambda found: self._show(layer, found))
        worker.finished.connect(lambda: setattr(self.button, "enabled", True))
        worker.start()
        return worker

    def _show_error(self, message: str) -> None:
        self.result.value = f"error: {message}"
        show_error(message)

    def _show(self, image: Image, found: Segmentation | str) -> None:
        if isinstance(found, str):
            self._show_error(found)
        else:
            self._add_layers(image, found)

    def _add_layers(self, image: Image, seg: Segmentation) -> None:
        """Add (or replace) the labels and centres layers of ``image``."""
        meta = {"count": seg.count, "beads_per_mp": seg.beads_per_mp, "model": seg.model,
                "threshold": seg.threshold}  # fmt: skip
        for data, kwargs, kind in bead_layers(
            seg.labels, seg.beads, image.name, meta, image.scale, image.translate
        ):
            if kwargs["name"] in self._viewer.layers:
                self._viewer.layers.remove(kwargs["name"])
            getattr(self._viewer, f"add_{kind}")(data, **kwargs)
        self._viewer.layers.selection.active = image
        self.result.value = seg.summary()
