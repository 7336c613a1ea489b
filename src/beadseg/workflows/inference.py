"""Workflows that use a model or its counts: ``predict``, ``merge``, ``evaluate``, ``dilution``,
``export``.

Each holds its output folder by the output-folder rule
(:class:`~beadseg.outputs.folder.OutputFolder`) and returns a frozen result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.config import PredictConfig
from ..core.errors import InputError
from ..outputs.folder import OutputFolder, check_free_space, default_output
from ._common import absolute, plain, quiet

PREDICT_OUTPUTS = (
    "masks",
    "labels",
    "overlays",
    "beads",
    "probabilities",
    "records",
    "counts.csv",
    "beads.csv",
    "errors.csv",
    "settings.json",
    "summary.json",
    "config.yaml",
    "provenance.json",
)
MERGE_OUTPUTS = ("counts.csv", "errors.csv", "beads.csv", "settings.json", "provenance.json")
EVALUATE_OUTPUTS = (
    "metrics.csv",
    "metrics.json",
    "config.yaml",
    "worst_cases.png",
    "report.md",
    "report.html",
    "calibrated.pt",
    "calibrated.onnx",
    "provenance.json",
)
DILUTION_OUTPUTS = (
    "dilution.json",
    "dilution.csv",
    "dilution.png",
    "report.md",
    "report.html",
    "provenance.json",
)
#: what predict writes per megapixel of input at most (mask, labels, overlay preview, beads table;
#: measured on 4K frames: ~1.6 MB per 8.3 MP frame without probabilities, ~35 MB with them)
_BYTES_PER_MP = {False: 0.5e6, True: 4.5e6}


def _model_name(model) -> str | None:
    """A model argument as recorded in settings: ``default``, a path made absolute, or the name
    of a model loaded in memory."""
    if isinstance(model, (str, Path)):
        return str(model) if str(model) == "default" else absolute(model)
    return f"loaded:{getattr(model, 'source', type(model).__name__)}"


def predict(
    model,
    inputs: list[str | Path] | str | Path,
    out: str | Path | None = None,
    *,
    config: PredictConfig | None = None,
    threshold: float | None = None,
    shard: tuple[int, int] | None = None,
    instances: dict | None = None,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
):
    """Segment images and count their beads (`beadseg predict`), one frame in memory at a time.

    Parameters
    ----------
    model : path, ``"default"`` or a loaded model
        A run folder, a checkpoint or ONNX file, the shipped model, or what
        :func:`beadseg.load_model` returned.
    inputs : paths
        Image files, folders (their ``images/`` when present) or globs.
    out : path, optional
        Output folder; default ``./<input folder>-predict``. The same model, settings and inputs
        into the same folder resume (a frame is predicted again when its file changed);
        anything else is refused (or ``overwrite``).
    config : PredictConfig, optional
        Tiling, engine, overlays, pixel size (a config file's ``predict:``).
    threshold : float, optional
        Probability threshold (default: the model's).
    shard : (i, N), optional
        Process every N-th input from the i-th (job arrays; join the shards with :func:`merge`).
    instances : dict, optional
        Instance settings changed from the model's (:class:`~beadseg.core.config.InstanceConfig`
        keys, e.g. ``{"split_area_ratio": 0}``); the others stay the model's.

    Returns
    -------
    PredictSummary
        Counts per image, errors, timings (also ``summary.json``).
    """
    from ..core.limits import check_threshold
    from ..inference.records import predict_settings
    from ..inference.runner import collect_inputs, predict_images

    cfg = config or PredictConfig()
    check_threshold(threshold)
    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out = Path(out) if out is not None else default_output("predict", inputs)
    settings = predict_settings(model, cfg, threshold, [str(i) for i in inputs], shard, instances)
    model_input = model if isinstance(model, (str, Path)) and str(model) != "default" else None
    with OutputFolder.claim(
        out, "predict", settings, outputs=PREDICT_OUTPUTS, overwrite=overwrite, inputs=[*inputs, model_input]
    ):
        files = collect_inputs(inputs)
        mp = sum(_megapixels(f) for f in files) / (shard[1] if shard else 1)
        check_free_space(out, mp * _BYTES_PER_MP[cfg.save_probabilities], f"predicting {len(files)} images")
        return predict_images(
            model,
            [str(i) for i in inputs],
            out,
            cfg,
            threshold,
            progress=progress,
            log=quiet(log),
            shard=shard,
            instances=instances,
        )


def _megapixels(path: Path) -> float:
    """An image file's size in megapixels from its header (0 when it cannot be read: the frame
    is then skipped with its error)."""
    from ..core.images import image_shape

    try:
        h, w = image_shape(path)[:2]
    except InputError:
        return 0.0
    return h * w / 1e6


def merge(
    runs: list[str | Path],
    out: str | Path | None = None,
    *,
    incomplete: bool = False,
    overwrite: bool = False,
):
    """Join the counts.csv / errors.csv / beads.csv of prediction runs made with one model and one
    set of settings, e.g. the shards of a job array (`beadseg merge`).

    Returns
    -------
    MergeSummary
    """
    from ..inference.merge import merge_runs

    out = Path(out) if out is not None else default_output("merge", runs)
    settings = {"runs": [absolute(r) for r in runs], "incomplete": incomplete}
    with OutputFolder.claim(out, "merge", settings, outputs=MERGE_OUTPUTS, overwrite=overwrite, inputs=runs):
        return merge_runs(runs, out, incomplete=incomplete)


def evaluate(
    source,
    data: str | Path,
    out: str | Path | None = None,
    *,
    config: PredictConfig | None = None,
    threshold: float | None = None,
    shift_radius_px: int | None = None,
    centroid_px: float | None = None,
    calibrate: bool = False,
    all_labels: bool = False,
    overwrite: bool = False,
    progress: bool = False,
):
    """Score predictions or a model against a labelled set (`beadseg evaluate`): pixel, object and
    count metrics per image, source frame, dilution and domain; report.html.

    Parameters
    ----------
    source : path, ``"default"`` or a loaded model
        A prediction folder, a run folder, a checkpoint, the shipped model.
    data : path
        Labelled data: ``images/`` and ``masks/`` (``labels/``, ``centres/`` used when present).
    calibrate : bool
        Pick the F1-best threshold and write the model with it to ``out/calibrated.pt``.
    all_labels : bool
        Score against every label, also those the doctor grades unusable.

    Returns
    -------
    Evaluation
    """
    from ..evaluation.evaluate import evaluate as score

    if calibrate:
        from ..core.extras import require

        require("evaluate --calibrate (it writes calibrated.pt)")
    cfg = config or PredictConfig()
    out = (
        Path(out)
        if out is not None
        else default_output("evaluate", source if isinstance(source, (str, Path)) else data)
    )
    given = {"shift_radius_px": shift_radius_px, "centroid_px": centroid_px}
    settings = {
        "source": _model_name(source),
        "data": absolute(data),
        "predict": cfg.model_dump(exclude={"device"}),
        "threshold": threshold,
        **given,
        "calibrate": calibrate,
        "all_labels": all_labels,
    }
    source_input = source if isinstance(source, (str, Path)) and str(source) != "default" else None
    with OutputFolder.claim(
        out, "evaluate", settings, outputs=EVALUATE_OUTPUTS, overwrite=overwrite, inputs=[data, source_input]
    ):
        return score(
            source,
            data,
            out,
            cfg,
            threshold,
            calibrate=calibrate,
            use_all_labels=all_labels,
            progress=progress,
            **{k: v for k, v in given.items() if v is not None},
        )


@dataclass(frozen=True)
class DilutionResult:
    """A dilution series fitted (the content of ``dilution.json``): ``fit`` (slope, its 95 % CI,
    R2, over source frames), ``stock`` (concentration with its 95 % interval, outlier frames)."""

    out: Path
    report: dict = field(repr=False)

    @property
    def fit(self) -> dict:
        return self.report["fit"]

    @property
    def stock(self) -> dict | None:
        return self.report.get("stock")

    def lines(self) -> list[str]:
        from ..evaluation.dilution_report import console_lines

        return console_lines(self.report, self.out)

    def to_dict(self) -> dict:
        return plain(self.report)


def dilution(
    counts: str | Path,
    out: str | Path | None = None,
    *,
    samples: str | Path | None = None,
    pixel_size_um: float | None = None,
    depth_um: float | None = None,
    overwrite: bool = False,
) -> DilutionResult:
    """Density vs dilution over source frames, stock concentration with its 95 % interval
    (`beadseg dilution`). ``counts``: a predict folder or its counts.csv; ``samples``: a sheet
    giving the dilutions; ``pixel_size_um`` and ``depth_um`` (both or neither): concentrations
    per microlitre."""
    from ..core.dilution import microlitre_per_mp
    from ..evaluation.dilution_report import dilution_report
    from ..evaluation.samples import counts_file

    microlitre_per_mp(pixel_size_um, depth_um)  # bad sizes fail before the folder is touched
    counts_csv = counts_file(counts)
    out = Path(out) if out is not None else default_output("dilution", counts_csv)
    settings = {
        "counts": absolute(counts_csv),
        "samples": absolute(samples),
        "pixel_size_um": pixel_size_um,
        "depth_um": depth_um,
    }
    with OutputFolder.claim(
        out, "dilution", settings, outputs=DILUTION_OUTPUTS, overwrite=overwrite, inputs=[counts_csv, samples]
    ):
        report = dilution_report(counts_csv, out, pixel_size_um, depth_um, samples=samples)
    return DilutionResult(out, report)


@dataclass(frozen=True)
class ExportResult:
    """The file :func:`export` wrote (``int8``: with how it was calibrated and how close it
    stays to the float network on the calibration crops, ``QuantizeResult.to_dict()``)."""

    path: Path
    format: str
    int8: dict | None = None

    def to_dict(self) -> dict:
        return plain(asdict(self))


def export(
    model: str | Path,
    fmt: str = "onnx",
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    calibration: list[str | Path] | None = None,
) -> ExportResult:
    """Export a model (`beadseg export`): ONNX (settings in its metadata), its int8 ONNX file
    (calibrated on the images, files, folders or globs, of ``calibration``) or a bioimage.io
    package. ``out`` is the file to write; an existing file is replaced only with
    ``overwrite``; a folder is refused."""
    from ..integrations.export import export_int8, export_model

    if out is not None:
        out = Path(out)
        if out.is_dir():
            name = {"onnx": "model.onnx", "int8": "model.int8.onnx"}.get(fmt, "model.bioimageio.zip")
            raise InputError(
                f"--out {out} is a folder; export writes one file: give a file name such as {out / name}"
            )
        if out.exists() and not overwrite:
            raise InputError(f"{out} exists; give another --out, or overwrite (--overwrite) to replace it")
    if fmt == "int8":
        r = export_int8(model, calibration or [], out)
        return ExportResult(r.path, fmt, r.to_dict())
    return ExportResult(Path(export_model(model, fmt, out)), fmt)
