"""Model export: a checkpoint as an ONNX file (:mod:`~beadseg.models.onnx`), beadseg's CPU runtime
and the format other tools read, and as a bioimage.io model package
(:mod:`~beadseg.integrations.export.bioimageio`) for deepImageJ, ilastik, BiaPy and the bioimage.io tools.

Both need torch (the network is traced); running an exported ONNX file does not (see
:mod:`beadseg.inference.onnx_model`).
"""

from __future__ import annotations

from pathlib import Path

from ...core.errors import ConfigError

FORMATS = ("onnx", "bioimageio")


def export_model(model: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Export a model (run folder, checkpoint or ``default``) as ``fmt``; returns what was written.

    Parameters
    ----------
    model : path or "default"
    fmt : {"onnx", "bioimageio"}
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
    if fmt == "onnx":
        from ...models.onnx import export_onnx

        return export_onnx(model, out)
    from .bioimageio import export_bioimageio

    return export_bioimageio(model, out)
