"""The model card of an exported model (the bioimage.io package's ``README.md``), generated from
records only, so it stays true when the model changes:

- the checkpoint: architecture, normalisation, threshold and instance settings, training config,
  the training-data fingerprint, the history row of the epoch whose weights it holds;
- beside it, when present: ``<stem>_heldout_metrics.json`` (``beadseg evaluate`` on held-out
  frames) and, for the shipped model, ``<stem>_benchmarks.json``: the summary table of
  BENCHMARKS.md (:func:`parse_benchmarks`; ``python benchmarks/model_card.py`` writes it, and a
  test fails while it differs from BENCHMARKS.md). Targets the benchmarks did not meet are the
  card's limitations.

No path of the machine that trained or exported the model is written (folder names only).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ... import __version__
from ...core.portable import strip_machine_paths
from ...models.onnx import input_normalization, output_channels

#: the section of BENCHMARKS.md whose table the shipped model's card quotes
BENCHMARK_SECTION = "Summary against the targets"


def parse_benchmarks(markdown: str, section: str = BENCHMARK_SECTION) -> dict:
    """The table of ``section`` of BENCHMARKS.md as records, and the machine it was measured on.

    Returns
    -------
    dict
        ``machine``: the first sentence of the file ("Machine for every number below: ...");
        ``rows``: one ``{"target", "measured", "met"}`` per table row, Markdown emphasis and the
        issue numbers (``(15)``) taken out of the text.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", markdown) if p.strip()]
    first = next((" ".join(p.split()) for p in paragraphs if not p.startswith("#")), "")
    machine = _plain(re.split(r"(?<=\.)\s+(?=[A-Z])", first)[0])  # its first sentence
    match = re.search(rf"^##\s+{re.escape(section)}\s*$(.*?)(?=^##\s|\Z)", markdown, re.M | re.S)
    if match is None:
        raise ValueError(f"BENCHMARKS.md has no section {section!r}")
    rows = []
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) != 3 or set(cells[0]) <= {"-", ":", " "} or cells[0].lower().startswith("target"):
            continue
        target, measured, met = (_plain(c) for c in cells)
        rows.append({"target": re.sub(r"\s*\(\d+\)$", "", target), "measured": measured, "met": met})
    return {"source": "BENCHMARKS.md", "section": section, "machine": machine, "rows": rows}


def _plain(text: str) -> str:
    """Markdown emphasis and code marks out of a table cell."""
    return re.sub(r"\*\*(.+?)\*\*|`(.+?)`", lambda m: m.group(1) or m.group(2), text).strip()


def _number(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else str(value)


def _names(path) -> str:
    """Training folders as names (never a machine's paths)."""
    items = path if isinstance(path, list) else [path] if path else []
    return ", ".join(Path(str(p)).name for p in items) or "not recorded"


def _fingerprint(fp: dict | None) -> list[str]:
    """The training-data fingerprint in words: the middle 90 % of each feature."""
    if not fp:
        return []
    words = {
        "bead_area_px": ("bead area", "px", 0),
        "foreground_fraction": ("foreground fraction", "", 3),
        "contrast": ("bead contrast", "", 2),
        "intensity_p50": ("median intensity (normalised)", "", 2),
        "noise": ("noise (normalised)", "", 3),
    }
    parts = [
        f"{label} {f['p5']:.{nd}f}-{f['p95']:.{nd}f}{' ' + unit if unit else ''}"
        for key, (label, unit, nd) in words.items()
        if (f := fp.get("features", {}).get(key))
    ]
    return [
        f"- Training-data fingerprint ({fp.get('n_images', '?')} images, 5th to 95th percentile): "
        + "; ".join(parts)
        + ". `predict` flags images outside it as out of domain."
    ]


def _kept_epoch(state: dict) -> list[str]:
    """The validation scores of the epoch whose weights the checkpoint holds."""
    history = state.get("history") or []
    index = state.get("epoch")
    if not history or not isinstance(index, int) or not 0 <= index < len(history):
        return []
    row = history[index]
    keys = ("val_iou", "val_iou_pooled", "val_dice")
    scores = ", ".join(f"{k} {row[k]:.3f}" for k in keys if isinstance(row.get(k), (int, float)))
    best = (state.get("best") or {}).get("epoch")
    note = f" (best validation IoU was at epoch {best})" if best and best != row.get("epoch") else ""
    return [
        f"- Validation at epoch {row.get('epoch')} of {len(history)}, the weights shipped{note}: {scores}."
    ]


def _heldout(src: Path) -> list[str]:
    held = src.with_name(f"{src.stem}_heldout_metrics.json")
    if not held.is_file():
        return []
    record = strip_machine_paths(json.loads(held.read_text()))
    o = record["overall"]
    who = f" Model: {record['model']}." if record.get("model") else ""
    return [
        f"- Held-out frames, {o['n_images']} tiles against their annotations: pixel IoU "
        f"{o['iou_mean']:.3f}, shift-tolerant IoU {o['iou_best_shift_mean']:.3f}, centroid F1 "
        f"{o['centroid']['f1']:.3f}, object F1 (IoU 0.5) {o['object']['f1']:.3f}, median |count "
        f"error| {100 * o['counts']['median_abs_error']:.1f} %.{who}"
    ]


def benchmark_record(src: Path) -> dict | None:
    """``<stem>_benchmarks.json`` beside the checkpoint (the shipped model's), or None."""
    path = src.with_name(f"{src.stem}_benchmarks.json")
    return json.loads(path.read_text()) if path.is_file() else None


def _benchmarks(bench: dict | None) -> list[str]:
    if not bench:
        return []
    lines = ["## Benchmarks", "", f"From {bench['source']} ({bench['section']}). {bench['machine']}", ""]
    lines += ["| target | measured | met? |", "|---|---|---|"]
    lines += [f"| {r['target']} | {r['measured']} | {r['met']} |" for r in bench["rows"]]
    return [*lines, ""]


def _limitations(bench: dict | None) -> list[str]:
    lines = [
        "## Limitations",
        "",
        "- Trained for dark beads of ~6-8 px in brightfield frames at one magnification; other "
        "objects, magnifications or modalities need a model trained on them (`beadseg train`).",
        "- Annotated masks outline clumps of beads as blobs; pixel scores against such masks are "
        "capped by them, and object scores measure blobs, not beads.",
    ]
    lines += [
        f"- {r['target']}: measured {r['measured']}; met: {r['met']}."
        for r in (bench or {}).get("rows", [])
        if _accuracy_not_met(r)
    ]
    return [*lines, ""]


def _accuracy_not_met(row: dict) -> bool:
    """A benchmark row on how well the model segments or counts whose target was missed,
    wholly or in part ("no", "yes (touching); no at dense ...")."""
    about_accuracy = re.search(r"count|F1|IoU|\bCV\b|accura", row["target"], re.I)
    return bool(about_accuracy and re.search(r"\bno\b", row["met"], re.I))


def _split_note(inst: dict) -> str:
    """The split by size in words (core/size_split.py), when the model's settings use it."""
    ratio = float(inst.get("split_area_ratio") or 0)
    if ratio <= 0:
        return ""
    return (
        f", and an object of {ratio:g} single-bead areas (fewer when elongated) holding one centre "
        "is split into round(area / single area) beads"
    )


def model_card(src: Path, state: dict, halo: int, align: int, describe_norm) -> str:
    """The model card (Markdown) of the checkpoint ``src`` with its loaded ``state``.

    ``halo`` and ``align`` are the package's tiling numbers; ``describe_norm(norm)`` says where
    the input normalisation happens in the package.
    """
    meta, cfg = strip_machine_paths(state["meta"]), strip_machine_paths(state.get("config") or {})
    m, inst = meta["model"], meta.get("instances", {})
    data, train = cfg.get("data", {}), cfg.get("train", {})
    bench = benchmark_record(src)
    norm = input_normalization(meta)
    lines = [
        f"# beadseg {m['name']} (base {m['base_channels']}, depth {m['depth']})",
        "",
        "Segments microbeads (dark discs ~6-8 px across) in brightfield microscopy images: a per-pixel "
        "bead probability, from which beadseg derives bead instances, counts and densities.",
        "",
        "## Intended use",
        "",
        "Counting and measuring beads in brightfield frames of bead suspensions (dilution series, "
        "concentration estimates), with `beadseg predict` or any tool that runs this package.",
        "",
        "## Inputs and outputs",
        "",
        f"- Input `image`: {meta['in_channels']} channel(s), H and W multiples of {align}; "
        f"normalisation `{norm.get('method')}`: {describe_norm(norm)}.",
        f"- Output `probabilities`: sigmoid probabilities, channels {', '.join(output_channels(meta))}; "
        f"crop a halo of {halo} px when tiling.",
        f"- In beadseg, a bead is foreground > {float(meta.get('threshold', 0.5))}; touching beads "
        f"are split ({inst.get('method', 'auto')}: at the centre channel's peaks when there is one, "
        f"else by a distance-transform watershed){_split_note(inst)}; objects below "
        f"{inst.get('min_area_px', '?')} px are dropped. This package holds the network only.",
        "",
        "## Training data",
        "",
        f"- Data: {_names(data.get('path'))}; validation: {_names(data.get('val_path'))}.",
        f"- {train.get('epochs', '?')} epochs of {data.get('crops_per_epoch', '?')} crops of "
        f"{data.get('crop_size', '?')} px at native resolution; split by source frame.",
        *_fingerprint(meta.get("fingerprint")),
        "",
        "## Validation",
        "",
        *(_kept_epoch(state) + _heldout(src) or ["- No validation record in this checkpoint."]),
        "",
        *_benchmarks(bench),
        *_limitations(bench),
        f"Exported by beadseg {__version__} (`beadseg export MODEL --format bioimageio`).",
    ]
    return "\n".join(lines) + "\n"
