"""`beadseg demo`: the whole pipeline on generated data, offline, with one report page.

synthetic set -> analyze -> predict with the shipped model -> evaluate -> fine-tune briefly ->
evaluate again -> predict a synthetic dilution series -> dilution fit -> index.html / index.md.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path

from .io import write_text


def _steps(quick: bool) -> dict:
    if quick:
        return {"n": 6, "size": 192, "epochs": 2, "crops": 32, "crop": 128,
                "dilutions": (160, 640, 2560), "frames": 1, "tiles": 2, "tile_size": 256}
    return {"n": 12, "size": 384, "epochs": 6, "crops": 96, "crop": 192,
            "dilutions": (160, 320, 640, 1280, 2560, 5120), "frames": 2, "tiles": 2,
            "tile_size": 384}


def run_demo(out: str | Path = "beadseg-demo", quick: bool = False, seed: int = 0,
             log: Callable[[str], None] = print) -> dict:
    """Run the demo and write ``out/index.html`` and ``out/index.md``.

    Returns
    -------
    dict
        Headline numbers of every step and the seconds each took.
    """
    from .analysis import analyze_dataset
    from .config import PredictConfig, load_config
    from .dilution import dilution_report
    from .evaluate import evaluate
    from .inference import predict_images
    from .synth import synth_dataset, synth_dilution_series
    from .training import train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = _steps(quick)
    times: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[name] = now - t
        t = now
        log(f"[demo] {name}: {times[name]:.1f} s")

    data = out / "data"
    synth_dataset(data, n=p["n"], size=p["size"], seed=seed, min_beads=5, max_beads=600)
    lap("synthetic data")
    summary = analyze_dataset(data, out / "analysis", workers=1)
    lap("analyze")
    pcfg = PredictConfig(mode="auto", tile_size=256)
    ev_default = evaluate("default", data, out / "evaluate-default", pcfg)
    lap("evaluate shipped model")
    cfg = load_config(None, [
        f"data.path={data}", f"data.crop_size={p['crop']}", f"data.crops_per_epoch={p['crops']}",
        f"train.epochs={p['epochs']}", "train.init_weights=default", "optim.lr=0.001",
        "schedule.warmup_epochs=0", f"train.seed={seed}", "split.val_fraction=0.34",
    ])
    res = train(cfg, out / "finetune", progress=False, log=lambda s: None)
    lap("fine-tune")
    ev_tuned = evaluate(out / "finetune", data, out / "evaluate-finetuned", pcfg)
    lap("evaluate fine-tuned model")
    series = out / "dilution-series"
    synth_dilution_series(series, dilutions=p["dilutions"], frames_per_dilution=p["frames"],
                          tiles_per_frame=p["tiles"], size=p["tile_size"], seed=seed + 1)
    predict_images("default", [series / "images"], out / "predict-series", pcfg, progress=False)
    dil = dilution_report(out / "predict-series" / "counts.csv", out / "dilution")
    lap("predict + dilution")
    result = {"analysis": summary["domains"][summary["training_domain"]],
              "evaluate_default": ev_default.overall.as_dict(), "finetune": res,
              "evaluate_finetuned": ev_tuned.overall.as_dict(),
              "dilution": dil["fit"], "seconds": times, "quick": quick}
    _write_report(out, result, summary)
    log(f"[demo] report: {out / 'index.html'}")
    return result


def _figures(result: dict, s: dict) -> list[tuple[str, str, str]]:
    a, d, f, e0, e1 = (result["analysis"], result["dilution"], result["finetune"],
                       result["evaluate_default"], result["evaluate_finetuned"])
    return [
        ("Dataset fingerprint", "analysis/distribution_analysis.png",
         f"`beadseg analyze` measured {a['n_images']} synthetic images at native resolution: "
         f"{a['mean_beads_per_image']:.0f} beads per image on average, foreground "
         f"{100 * a['mean_foreground_fraction']:.1f} %, median bead area "
         f"{a['median_object_area_px']:.0f} px."),
        ("Sample images", "analysis/sample_images.png",
         "Six images across the density range with mask outlines (yellow) and bead candidates "
         f"without a mask (red); {len(s['checks']['missing_labels']['flagged'])} images flagged "
         "for missing labels."),
        ("Shipped model, worst cases", "evaluate-default/worst_cases.png",
         f"The shipped model (trained on real tiles) on these synthetic images: object F1 "
         f"{e0['object']['f1']:.3f} (IoU 0.5), centroid F1 {e0['centroid']['f1']:.3f}, median "
         f"|count error| {100 * e0['counts']['median_abs_error']:.1f} %; truth green, "
         "prediction magenta."),
        ("Fine-tuning curves", "finetune/curves.png",
         f"{f['epochs_run']} epochs of fine-tuning on the synthetic set ({f['status']}), best "
         f"validation IoU {f['best_val_iou'] or 0:.3f}; afterwards object F1 "
         f"{e1['object']['f1']:.3f}, centroid F1 {e1['centroid']['f1']:.3f}."),
        ("Dilution series", "dilution/dilution.png",
         f"Counts of the shipped model on a synthetic dilution series (true slope -1): fitted "
         f"slope {d['slope']:.2f} (95 % CI {d['slope_ci95'][0]:.2f} to {d['slope_ci95'][1]:.2f}),"
         f" R2 {d['r2']:.2f}."),
    ]


def _write_report(out: Path, result: dict, summary: dict) -> None:
    figs = _figures(result, summary)
    rows = [(k, f"{v:.1f} s") for k, v in result["seconds"].items()]
    md = ["# beadseg demo\n",
          "Everything below was computed just now on generated data, offline.\n"]
    for title, path, text in figs:
        md += [f"## {title}\n", f"{text}\n", f"![{title}]({path})\n"]
    md += ["## Time per step\n", "| step | time |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in rows]
    md += ["", "Recommendations of the dataset doctor:", ""]
    md += [f"- {r['text']} (measured: {r['measurement']})" for r in summary["recommendations"]]
    write_text(out / "index.md", "\n".join(md) + "\n")
    body = ["<h1>beadseg demo</h1><p>Everything below was computed just now on generated data, "
            "offline.</p>"]
    for title, path, text in figs:
        body.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>"
                    f"<img src='{path}' style='max-width:100%'>")
    body.append("<h2>Time per step</h2><table border=1 cellpadding=4><tr><th>step</th>"
                "<th>time</th></tr>" + "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
                                               for k, v in rows) + "</table>")
    body.append("<h2>Recommendations</h2><ul>" + "".join(
        f"<li>{html.escape(r['text'])} <i>(measured: {html.escape(r['measurement'])})</i></li>"
        for r in summary["recommendations"]) + "</ul>")
    write_text(out / "index.html", "<!doctype html><html><head><meta charset='utf-8'>"
               "<title>beadseg demo</title></head><body style='font-family:sans-serif;"
               "max-width:1100px;margin:auto'>" + "".join(body) + "</body></html>\n")
