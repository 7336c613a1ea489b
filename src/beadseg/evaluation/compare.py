"""`beadseg compare`: the table of training runs our users used to build by hand."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import InputError
from ..core.files import read_csv_rows, write_csv, write_text

COLUMNS = [
    "run",
    "model",
    "loss",
    "lr",
    "data",
    "status",
    "best_val_iou",
    "best_epoch",
    "final_val_iou",
    "final_over_best",
    "epochs_run",
    "minutes",
    "parameters",
    "time_to_iou_075_min",
]


def _read_history(run: Path) -> list[dict]:
    path = run / "history.csv"
    fix = "it is damaged (not the numeric table `beadseg train` writes): give another run"
    try:
        return [
            {k: float(v) for k, v in row.items()}
            for row in read_csv_rows(path, ("seconds", "val_iou"), "training history", fix)
        ]
    except (ValueError, TypeError):
        raise InputError(f"{path} has a value that is not a number; {fix}") from None


def _read_result(run: Path) -> dict:
    path = run / "result.json"
    try:
        res = json.loads(path.read_text())
        if not isinstance(res, dict) or "model" not in res or "status" not in res:
            raise ValueError("keys")
        float(res.get("seconds") or 0)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InputError(
            f"{path} is damaged (not the JSON `beadseg train` writes); give another run"
        ) from None
    return res


def _recipe(run: Path) -> dict:
    """Loss, learning rate and data (folder names) of a run, from its config.yaml ("-" where
    the run did not record them)."""
    import yaml

    try:
        cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        cfg = {}
    section = lambda name: cfg.get(name) if isinstance(cfg.get(name), dict) else {}  # noqa: E731
    path = section("data").get("path")
    folders = path if isinstance(path, list) else [path] if path else []
    return {
        "loss": section("loss").get("name", "-"),
        "lr": section("optim").get("lr", "-"),
        "data": "+".join(Path(str(p)).name for p in folders) or "-",
    }


def run_label(row: dict) -> str:
    """A run as the legend of compare.png names it: folder, model, loss, learning rate, data."""
    lr = row["lr"] if isinstance(row["lr"], str) else f"{row['lr']:.2g}"
    return f"{row['run']}: {row['model']}, {row['loss']}, lr {lr}, {row['data']}"


def run_row(run: str | Path) -> tuple[dict, list[dict]]:
    """One table row (and the history) of a run folder."""
    run = Path(run)
    if not (run / "result.json").is_file() or not (run / "history.csv").is_file():
        raise InputError(
            f"{run} is not a finished run folder (no result.json/history.csv); "
            "give folders written by `beadseg train`"
        )
    res = _read_result(run)
    hist = _read_history(run)
    elapsed, t075 = 0.0, None
    for h in hist:
        elapsed += h["seconds"]
        if t075 is None and h["val_iou"] >= 0.75:
            t075 = elapsed / 60
    return {
        "run": run.name,
        "model": res["model"],
        **_recipe(run),
        "status": res["status"],
        "best_val_iou": res.get("best_val_iou"),
        "best_epoch": res.get("best_epoch"),
        "final_val_iou": res.get("final_val_iou"),
        "final_over_best": res.get("final_over_best"),
        "epochs_run": res.get("epochs_run"),
        "minutes": res.get("seconds", 0) / 60,
        "parameters": res.get("parameters"),
        "time_to_iou_075_min": t075,
    }, hist


def _fmt(v, column: str = "") -> str:
    if v is None:
        return "-"
    if column == "lr" and isinstance(v, (int, float)):
        return f"{v:.2g}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown_table(rows: list[dict]) -> str:
    """Rows as a Markdown table."""
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "|".join("---" for _ in COLUMNS) + "|\n"
    return head + "".join("| " + " | ".join(_fmt(r[c], c) for c in COLUMNS) + " |\n" for r in rows)


def compare_runs(runs: list[str | Path], out: str | Path | None = None) -> list[dict]:
    """Tabulate runs; with ``out`` write compare.csv, compare.md and compare.png."""
    if not runs:
        raise InputError("give at least one run folder")
    rows, hists = [], []
    for r in runs:
        row, hist = run_row(r)
        rows.append(row)
        hists.append((run_label(row), hist))
    if out is not None:
        from ..outputs.figures import plot_compare

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "compare.csv", rows, COLUMNS)
        write_text(out / "compare.md", markdown_table(rows))
        plot_compare(hists, out / "compare.png")
    return rows
