"""`beadseg cv`: K-fold cross-validation over source frames, mean +/- SD of every metric.

Each fold trains with ``split.folds = K`` and ``split.fold = k`` (grouped by source frame,
stratified by density) into ``OUT/fold_k``, then evaluates its best checkpoint on its own
held-out frames. Folds can run in one process or as separate jobs (``--fold k``), and
``--report-only`` gathers finished folds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core.config import Config, PredictConfig, load_config
from ..core.errors import ConfigError, InputError
from ..core.files import write_text
from ..outputs.provenance import write_json

#: scores of a fold's evaluation on its held-out images (also per domain)
EVALUATION_METRICS = [
    "iou_pooled",
    "iou_best_shift_mean",
    "object_f1",
    "centroid_f1",
    "median_abs_count_error",
    "total_count_error",
]
#: every metric of a fold: its training result's validation IoUs, then its evaluation
METRICS = ["best_val_iou", "best_val_iou_pooled", *EVALUATION_METRICS]


def _fold_metrics(run: Path) -> dict:
    from ..evaluation.evaluate import evaluate

    res = json.loads((run / "result.json").read_text())
    split = json.loads((run / "split.json").read_text())
    cfg = load_config(run / "config.yaml")
    ev = evaluate(
        run,
        cfg.data.path,
        run / "evaluation",
        PredictConfig(device=cfg.train.device),
        only=set(split["val"]),
        use_all_labels=cfg.data.use_all_labels,
    )
    return {
        "fold": split["fold"],
        "status": res["status"],
        "val_groups": split["val_groups"],
        "best_val_iou": res.get("best_val_iou"),
        "best_val_iou_pooled": res.get("best_val_iou_pooled"),
        **_scores(ev.overall.as_dict()),
        "per_domain": {k: _scores(v.as_dict()) for k, v in ev.per_domain.items()},
    }


def _scores(o: dict) -> dict:
    """The EVALUATION_METRICS of an evaluate ``SetSummary.as_dict()``."""
    return {
        "iou_pooled": o["iou_pooled"],
        "iou_best_shift_mean": o["iou_best_shift_mean"],
        "object_f1": o["object"]["f1"],
        "centroid_f1": o["centroid"]["f1"],
        "median_abs_count_error": o["counts"]["median_abs_error"],
        "total_count_error": o["counts"]["total_relative_error"],
    }


def _mean_sd(rows: list[dict], metrics: list[str]) -> tuple[dict, dict]:
    """Mean and sample SD (None below two values) of each metric over ``rows``."""
    mean, sd = {}, {}
    for m in metrics:
        vals = np.array([r[m] for r in rows if r.get(m) is not None], float)
        mean[m] = float(vals.mean()) if len(vals) else None
        sd[m] = float(vals.std(ddof=1)) if len(vals) > 1 else None
    return mean, sd


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _table(mean: dict, sd: dict) -> list[str]:
    lines = ["| metric | mean | SD |", "|---|---|---|"]
    for m, mu in mean.items():
        lines.append(f"| {m} | {_fmt(mu)} | {_fmt(sd[m])} |")
    return lines


def _per_domain(rows: list[dict]) -> dict:
    """Mean and SD per domain over the folds that held it out (empty when the folds held out
    one domain only: the overall scores are that domain's)."""
    domains = sorted({d for r in rows for d in r.get("per_domain", {})})
    if len(domains) < 2:
        return {}
    out = {}
    for d in domains:
        scored = [r["per_domain"][d] for r in rows if d in r.get("per_domain", {})]
        mean, sd = _mean_sd(scored, EVALUATION_METRICS)
        out[d] = {"folds": len(scored), "mean": mean, "sd": sd}
    return out


def _run_fold(cfg: Config, run: Path, folds: int, k: int, progress: bool, log) -> None:
    """Train fold ``k`` into ``run``, continuing it when a killed job left it unfinished.

    The fold's folder follows the output-folder rule (:mod:`beadseg.outputs.folder`): a fold
    trained with other settings is an error naming the difference, never "already done".
    """
    from ..outputs.folder import OutputFolder
    from ..training import train
    from .training import TRAIN_OUTPUTS

    fcfg = cfg.model_copy(deep=True)
    fcfg.split.folds, fcfg.split.fold = folds, k
    with OutputFolder.claim(run, "train", fcfg.model_dump(mode="json"), outputs=TRAIN_OUTPUTS) as claim:
        if claim.continued and (run / "result.json").exists():
            log(f"fold {k}: already done")
            return
        train(
            fcfg,
            run,
            resume=run if claim.continued else None,
            progress=progress,
            log=lambda s: log(f"[fold {k}] {s}"),
        )


def cross_validate(
    cfg: Config,
    folds: int | None = None,
    out: str | Path = "beadseg-cv",
    only_fold: int | None = None,
    report_only: bool = False,
    progress: bool = False,
    log=print,
) -> dict:
    """Train and evaluate the folds (or one of them), then summarise the finished ones.

    Parameters
    ----------
    cfg : Config
        The training config of every fold (``split.folds`` / ``split.fold`` are set per fold).
    folds : int, optional
        K; default ``cfg.split.folds``, else ``round(1 / split.val_fraction)`` (5 by default).
    out : path
        Folder of the fold runs ``fold_k``; ``cv.json`` and ``cv.md`` go here.
    only_fold : int, optional
        Train only this fold (one job of an array), then summarise what is finished.
    report_only : bool
        Train nothing; summarise the finished folds.

    Returns
    -------
    dict
        ``folds``, ``finished``, ``per_fold`` (one row per finished fold), ``mean`` and ``sd``
        (sample SD, None below two folds) of every metric, ``markdown``.

    Raises
    ------
    InputError
        No fold is finished.
    """
    folds = folds or cfg.split.folds or max(2, int(round(1 / cfg.split.val_fraction)))
    out = Path(out)
    if only_fold is not None and not 0 <= only_fold < folds:
        raise ConfigError(f"--fold {only_fold} is not one of the {folds} folds (0 to {folds - 1})")
    todo = [] if report_only else ([only_fold] if only_fold is not None else range(folds))
    for k in todo:
        _run_fold(cfg, out / f"fold_{k}", folds, k, progress, log)
    rows = [
        _fold_metrics(out / f"fold_{k}") for k in range(folds) if (out / f"fold_{k}" / "result.json").exists()
    ]
    if not rows:
        raise InputError(
            f"no finished fold in {out}; train the folds first (`beadseg cv` without --report-only)"
        )
    mean, sd = _mean_sd(rows, METRICS)
    summary = {"folds": folds, "finished": len(rows), "per_fold": rows, "mean": mean, "sd": sd}
    lines = _table(mean, sd)
    per_domain = _per_domain(rows)
    if per_domain:
        # a pooled mix of real and synthetic tiles describes neither: each domain on its own
        summary["per_domain"] = per_domain
        lines = ["All held-out images pooled (real and synthetic mixed; read per domain below):", ""]
        lines += _table(mean, sd)
        for d, v in per_domain.items():
            lines += ["", f"{d} images ({v['folds']} folds held some out):", "", *_table(v["mean"], v["sd"])]
    write_json(out / "cv.json", summary)
    write_text(out / "cv.md", "\n".join(lines) + "\n")
    summary["markdown"] = "\n".join(lines)
    return summary


CV_OUTPUTS = ("fold_*", "cv.json", "cv.md", "provenance.json")


@dataclass(frozen=True)
class CVResult:
    """K-fold cross-validation: one row per finished fold, mean and sample SD of every metric
    (:data:`METRICS`), per domain when the data mixes real and synthetic tiles."""

    out: Path
    folds: int
    finished: int
    per_fold: tuple[dict, ...]
    mean: dict
    sd: dict
    per_domain: dict = field(default_factory=dict)
    markdown: str = ""

    def to_dict(self) -> dict:
        from ._common import plain

        return plain({k: v for k, v in asdict(self).items() if k != "markdown"})


def cv(
    cfg: Config,
    out: str | Path | None = None,
    *,
    folds: int | None = None,
    fold: int | None = None,
    report_only: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    log=None,
) -> CVResult:
    """K-fold cross-validation over source frames (`beadseg cv`): train and evaluate every fold
    (or ``fold`` only: one job of an array; jobs may share ``out``), then mean +/- SD of every
    metric over the finished folds. Folds left unfinished by a killed job are continued; a
    folder of folds trained with other settings is refused (or ``overwrite``)."""
    from ..core.extras import require
    from ..outputs.folder import OutputFolder, default_output
    from ._common import quiet
    from .training import _data_paths, _first

    if not report_only:
        require("cross-validation (beadseg cv)")
    cfg = _data_paths(cfg)
    out = Path(out) if out is not None else default_output("cv", _first(cfg.data.path))
    settings = {"config": cfg.model_dump(mode="json"), "folds": folds}
    with OutputFolder.claim(
        out, "cv", settings, outputs=CV_OUTPUTS, overwrite=overwrite, inputs=[cfg.data.path], shared=True
    ):
        s = cross_validate(cfg, folds, out, fold, report_only, progress, quiet(log))
    return CVResult(
        out,
        s["folds"],
        s["finished"],
        tuple(s["per_fold"]),
        s["mean"],
        s["sd"],
        s.get("per_domain", {}),
        s["markdown"],
    )
