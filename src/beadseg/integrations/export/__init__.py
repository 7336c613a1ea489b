"""Model export: a checkpoint as an ONNX file (:mod:`~beadseg.models.onnx`), beadseg's CPU runtime
and the format other tools read, as its int8 ONNX file (:mod:`~beadseg.integrations.export.int8`,
calibrated on real images; predict runs it on CPUs), and as a bioimage.io model package
(:mod:`~beadseg.integrations.export.bioimageio`) for deepImageJ, ilastik, BiaPy and the bioimage.io tools.

A model that has its up-to-date ONNX file beside it (the shipped model, every run of
``beadseg train``) exports to ONNX by copying that file, which needs no torch; a checkpoint
without one is traced with torch (``pip install "beadseg[train]"``), and so is every bioimage.io
package (TorchScript weights). Running an exported ONNX file needs only ONNX Runtime (see
:mod:`beadseg.inference.onnx_model`).
"""

from __future__ import annotations

from pathlib import Path

from ...core.errors import ConfigError

FORMATS = ("onnx", "int8", "bioimageio")


def export_model(model: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Export a model (run folder, checkpoint or ``default``) as ``fmt``; returns what was written.

    Parameters
    ----------
    model : path or "default"
    fmt : {"onnx", "int8", "bioimageio"}
        ``int8`` needs calibration images: see :func:`export_int8`.
    out : path, optional
        The file to write; default: ``<checkpoint stem>.onnx`` beside the checkpoint (onnx; in
        the working folder for the shipped model, whose folder belongs to the installation) or
        ``<checkpoint stem>.bioimageio.zip`` in the working folder (bioimageio).

    Raises
    ------
    ConfigError
        Unknown format.
    InputError
        Not a usable checkpoint, or ``out`` would overwrite it.
    """
    from ...models.checkpoint import is_shipped, resolve_model_path

    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    src = resolve_model_path(model)
    if out is None and fmt == "onnx" and is_shipped(src):
        out = Path.cwd() / f"{src.stem}.onnx"  # the installed folder is not the user's to write
    if fmt == "int8":
        return export_int8(model, [], out).path
    if fmt == "onnx":
        return _export_onnx(model, src, out)
    from ...core.extras import require

    require(
        "a bioimage.io package (TorchScript and ONNX weights traced from the checkpoint)",
        "torch",
        "onnx",
        "bioimageio.spec",
        install='pip install "beadseg[bioimageio]"',
    )
    from .bioimageio import export_bioimageio

    return export_bioimageio(model, out)


def _export_onnx(model: str | Path, src: Path, out: str | Path | None) -> Path:
    """The checkpoint's up-to-date ONNX file, copied to ``out`` (no torch); else a new export
    (torch)."""
    from ...core.extras import require
    from ...inference.runtime import _onnx_beside
    from ...models.checkpoint import onnx_path
    from ...models.onnx import export_onnx

    if src.suffix.lower() == ".onnx":
        return export_onnx(model, out)  # refused: already an ONNX file
    if _onnx_beside(src, threads=1, warn=False) is not None:
        beside = onnx_path(src)
        out = beside if out is None else Path(out)
        if out.resolve() != beside.resolve():
            import shutil

            from ...core.files import atomic_path

            with atomic_path(out) as tmp:
                shutil.copyfile(beside, tmp)
        return out
    require(
        f"exporting {src} to ONNX (it has no up-to-date ONNX file beside it to copy; torch traces one)",
        "torch",
        "onnx",
    )
    return export_onnx(model, out)


def export_int8(model: str | Path, calibration: list[str | Path], out: str | Path | None = None):
    """Write the int8 ONNX file of a model (run folder, checkpoint or ``default``), calibrated on
    the images of ``calibration`` (files, folders or globs); default: ``<checkpoint>.int8.onnx``
    beside the checkpoint, where predict finds it (in the working folder for the shipped model).
    Returns the :class:`~beadseg.integrations.export.int8.QuantizeResult`.

    Raises
    ------
    InputError
        No calibration image, or no up-to-date ONNX file beside the checkpoint.
    """
    from ...core.errors import InputError
    from ...core.extras import require
    from ...core.files import find_images
    from ...models.checkpoint import int8_path, is_shipped, resolve_model_path

    require("an int8 ONNX file (ONNX Runtime's quantisation reads the model with onnx)", "onnx")
    from .int8 import quantize_model

    images = [f for item in calibration for f in find_images(item)]
    if not images:
        raise InputError(
            "--format int8 needs --calibration IMAGES: real images of the model's domain (files, "
            "folders or globs), e.g. its training images"
        )
    src = resolve_model_path(model)
    if out is None and is_shipped(src):
        out = Path.cwd() / int8_path(src).name  # the installed folder is not the user's to write
    return quantize_model(model, images, out)
