"""`beadseg demo`: the whole pipeline on generated data, offline, with one report page.

synthetic set -> analyze -> predict with the shipped model -> evaluate -> fine-tune briefly ->
evaluate again -> predict a synthetic dilution series -> dilution fit -> report.html / report.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def _steps(quick: bool) -> dict:
    if quick:
        return {
            "n": 6,
            "size": 192,
            "epochs": 2,
            "crops": 32,
            "crop": 128,
            "dilutions": (160, 640, 2560),
            "frames": 1,
            "tiles": 2,
            "tile_size": 256,
        }
    return {
        "n": 12,
        "size": 384,
        "epochs": 6,
        "crops": 96,
        "crop": 192,
        "dilutions": (160, 320, 640, 1280, 2560, 5120),
        "frames": 2,
        "tiles": 2,
        "tile_size": 384,
    }


def _finetune_config(data: Path, p: dict, seed: int):
    """Brief fine-tuning of the shipped model on the demo's synthetic set."""
    from ..core.config import load_config

    sets = {
        "data.path": data,
        "data.crop_size": p["crop"],
        "data.crops_per_epoch": p["crops"],
        "train.epochs": p["epochs"],
        "train.init_weights": "default",
        "optim.lr": 0.001,
        "schedule.warmup_epochs": 0,
        "train.seed": seed,
        "split.val_fraction": 0.34,
    }
    return load_config(None, [f"{k}={v}" for k, v in sets.items()])


def run_demo(
    out: str | Path = "beadseg-demo",
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = print,
    device: str | None = None,
) -> dict:
    """Run the demo and write ``out/report.html`` (self-contained) and ``out/report.md``.

    ``device`` (auto, cpu, cuda, cuda:N, mps; None: auto) runs every model step: evaluation,
    fine-tuning and prediction.

    Returns
    -------
    dict
        Headline numbers of every step and the seconds each took.
    """
    from ..analysis import analyze_dataset
    from ..core.config import PredictConfig
    from ..data.synth import synth_dataset, synth_dilution_series
    from ..evaluation.dilution_report import dilution_report
    from ..evaluation.evaluate import evaluate
    from ..inference import predict_images

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = _steps(quick)
    times: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str, found: str = "") -> None:
        nonlocal t
        now = time.perf_counter()
        times[name] = now - t
        t = now
        log(f"[demo] {name}: {times[name]:.1f} s" + (f" - {found}" if found else ""))

    data = out / "data"
    synth_dataset(data, n=p["n"], size=p["size"], seed=seed, min_beads=5, max_beads=600)
    lap("synthetic data")
    summary = analyze_dataset(data, out / "analysis", workers=1)
    a = summary["domains"][summary["training_domain"]]
    lap(
        "analyze",
        f"{a['mean_beads_per_image']:.0f} beads per image, {len(summary['recommendations'])} recommendations",
    )
    pcfg = PredictConfig(mode="auto", tile_size=256, device=device or "auto")
    ev_default = evaluate("default", data, out / "evaluate-default", pcfg)
    lap("evaluate shipped model", _scores(ev_default.overall))
    res, ev_tuned = _finetune(out, data, p, seed, device, pcfg, lap)
    series = out / "dilution-series"
    synth_dilution_series(
        series,
        dilutions=p["dilutions"],
        frames_per_dilution=p["frames"],
        tiles_per_frame=p["tiles"],
        size=p["tile_size"],
        seed=seed + 1,
    )
    predict_images("default", [series / "images"], out / "predict-series", pcfg, progress=False)
    dil = dilution_report(out / "predict-series" / "counts.csv", out / "dilution")
    fit = dil["fit"]
    lap("predict + dilution", f"slope {fit['slope']:.2f} (true -1), R2 {fit['r2']:.2f}")
    result = {
        "analysis": a,
        "evaluate_default": ev_default.overall.as_dict(),
        "finetune": res,
        "evaluate_finetuned": ev_tuned.overall.as_dict() if ev_tuned is not None else None,
        "dilution": dil["fit"],
        "seconds": times,
        "quick": quick,
    }
    _write_report(out, result, summary, ev_default.definitions)
    log(f"[demo] report: {out / 'report.html'}")
    return result


#: why the demo skips fine-tuning where torch is missing (a plain ``pip install beadseg``)
NO_TORCH = 'fine-tuning needs torch, which this installation lacks: pip install "beadseg[train]"'


def _finetune(out: Path, data: Path, p: dict, seed: int, device, pcfg, lap):
    """Fine-tune the shipped model briefly and evaluate it: (training result, evaluation), or
    (None, None) without torch (the rest of the demo runs on ONNX Runtime)."""
    from ..core.extras import installed
    from ..evaluation.evaluate import evaluate

    if not installed("torch"):
        lap("fine-tune", f"skipped: {NO_TORCH}")
        return None, None
    from ..training import train

    res = train(
        _finetune_config(data, p, seed), out / "finetune", progress=False, log=lambda s: None, device=device
    )
    lap("fine-tune", f"{res['epochs_run']} epochs, {res['status']}")
    ev_tuned = evaluate(out / "finetune", data, out / "evaluate-finetuned", pcfg)
    lap("evaluate fine-tuned model", _scores(ev_tuned.overall))
    return res, ev_tuned


def _scores(s) -> str:
    """Centroid F1 and count error of an evaluation's SetSummary, for the console."""
    return f"centroid F1 {s.centroids.f1:.3f}, median |count error| {100 * s.counts.median_abs_error:.1f} %"


def _figures(result: dict, s: dict) -> list[tuple[str, str, str]]:
    a, d, f, e0, e1 = (
        result["analysis"],
        result["dilution"],
        result["finetune"],
        result["evaluate_default"],
        result["evaluate_finetuned"],
    )
    tuned = (
        (
            "Fine-tuning curves",
            "finetune/curves.png",
            f"{f['epochs_run']} epochs of fine-tuning on the synthetic set ({f['status']}), best "
            f"validation IoU {f['best_val_iou'] or 0:.3f}; afterwards object F1 "
            f"{e1['object']['f1']:.3f}, centroid F1 {e1['centroid']['f1']:.3f}.",
        )
        if f is not None
        else ("Fine-tuning", None, f"Skipped: {NO_TORCH}.")
    )
    return [
        (
            "Dataset fingerprint",
            "analysis/distribution_analysis.png",
            f"`beadseg analyze` measured {a['n_images']} synthetic images at native resolution: "
            f"{a['mean_beads_per_image']:.0f} beads per image on average, foreground "
            f"{100 * a['mean_foreground_fraction']:.1f} %, median bead area "
            f"{a['median_object_area_px']:.0f} px.",
        ),
        (
            "Sample images",
            "analysis/sample_images.png",
            "Six images across the density range with mask outlines (yellow) and bead candidates "
            f"without a mask (red); {len(s['checks']['missing_labels']['flagged'])} images flagged "
            "for missing labels.",
        ),
        (
            "Shipped model, worst cases",
            "evaluate-default/worst_cases.png",
            "The shipped model (trained on the dev set: real tiles, composites of real beads, "
            "synthetic 80x tiles; never on these generated images): object F1 "
            f"{e0['object']['f1']:.3f} (IoU 0.5), centroid F1 {e0['centroid']['f1']:.3f}, median "
            f"|count error| {100 * e0['counts']['median_abs_error']:.1f} %; truth green, "
            "prediction magenta.",
        ),
        tuned,
        (
            "Dilution series",
            "dilution/dilution.png",
            f"Counts of the shipped model on a synthetic dilution series (true slope -1): fitted "
            f"slope {d['slope']:.2f} (95 % CI {d['slope_ci95'][0]:.2f} to {d['slope_ci95'][1]:.2f}),"
            f" R2 {d['r2']:.2f}.",
        ),
    ]


def _write_report(out: Path, result: dict, summary: dict, definitions: dict) -> None:
    """``report.md`` and the self-contained ``report.html``; ``definitions`` are the evaluation's
    (the terms its numbers use)."""
    from ..outputs.document import escape, markdown_table, write_report
    from ..outputs.terms import EVALUATION_NAMES, named_terms

    md = ["# beadseg demo\n", "Everything below was computed just now on generated data, offline.\n"]
    for title, path, text in _figures(result, summary):
        md += [f"## {title}\n", f"{text}\n"] + ([f"![{title}]({path})\n"] if path else [])
    rows = [[step, f"{sec:.1f} s"] for step, sec in result["seconds"].items()]
    md += ["## Time per step\n", markdown_table(["step", "time"], rows), ""]
    md += ["## Recommendations of the dataset doctor\n"]
    md += [f"- {r['text']} *(measured: {escape(r['measurement'])})*" for r in summary["recommendations"]]
    general = ["pixel IoU", "precision, recall, F1", "beads per MP", "dilution", "dilution slope"]
    terms = named_terms(definitions, EVALUATION_NAMES, general)
    terms["validation IoU"] = "pixel IoU on the images held out from fine-tuning, after each epoch"
    write_report(out, "\n".join(md), terms)


DEMO_OUTPUTS = (
    "data",
    "analysis",
    "evaluate-default",
    "finetune",
    "evaluate-finetuned",
    "dilution-series",
    "predict-series",
    "dilution",
    "report.md",
    "report.html",
    "provenance.json",
)


@dataclass(frozen=True)
class DemoResult:
    """What the demo found at each step, and the seconds each took."""

    out: Path
    steps: dict = field(repr=False)

    @property
    def seconds(self) -> dict:
        return self.steps["seconds"]

    def to_dict(self) -> dict:
        from ._common import plain

        return plain(self.steps)


def demo(
    out: str | Path | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    device: str | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """The whole pipeline on generated data with the shipped model (`beadseg demo`): synthetic
    tiles, the doctor, evaluation, fine-tuning, a dilution series predicted and fitted;
    ``out/report.html``."""
    from ..outputs.folder import OutputFolder, default_output
    from ._common import quiet

    out = Path(out) if out is not None else default_output("demo")
    with OutputFolder.claim(
        out, "demo", {"quick": quick, "seed": seed}, outputs=DEMO_OUTPUTS, overwrite=overwrite
    ):
        steps = run_demo(out, quick=quick, seed=seed, log=quiet(log), device=device)
    return DemoResult(out, steps)
