"""The model card of an exported model is generated from records: the checkpoint, the files
beside it and, for the shipped model, BENCHMARKS.md (through default_benchmarks.json, kept
equal to it). No machine path, no raw JSON, the current numbers."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from beadseg.integrations.export.bioimageio import _where_normalised
from beadseg.integrations.export.model_card import benchmark_record, model_card, parse_benchmarks
from beadseg.models.checkpoint import DEFAULT_MODEL, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
#: an absolute path of some machine: /home/..., /work/..., C:\...
MACHINE_PATH = re.compile(r"(?<![\w.])(/(home|work|root|tmp|Users|mnt|data|scratch|opt)\b|[A-Za-z]:\\)")


def _card(src=DEFAULT_MODEL) -> str:
    return model_card(src, load_checkpoint(src), 16, 8, _where_normalised)


def test_the_shipped_record_equals_benchmarks_md():
    record = benchmark_record(DEFAULT_MODEL)
    assert record == parse_benchmarks(BENCHMARKS.read_text()), (
        "BENCHMARKS.md changed: run `python benchmarks/model_card.py` to refresh default_benchmarks.json"
    )
    assert len(record["rows"]) >= 3 and record["machine"].startswith("Machine")
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "model_card.py"), "--check"], capture_output=True
    )
    assert r.returncode == 0, r.stdout


def test_the_card_quotes_the_current_benchmarks_and_holds_no_path():
    card = _card()
    for row in parse_benchmarks(BENCHMARKS.read_text())["rows"]:  # the numbers as BENCHMARKS.md has them now
        assert row["measured"] in card, row["measured"]
    assert not MACHINE_PATH.search(card), MACHINE_PATH.search(card)
    assert "{" not in card  # no JSON dumped (truncated or not)
    assert "14-24 %" not in card  # the old model's limitation is gone
    held = json.loads((DEFAULT_MODEL.parent / "default_heldout_metrics.json").read_text())["overall"]
    assert f"centroid F1 {held['centroid']['f1']:.3f}" in card
    history = load_checkpoint(DEFAULT_MODEL)["history"]
    assert f"epoch {history[-1]['epoch']} of {len(history)}" in card  # the weights shipped: the last epoch
    # its instance settings split pairs by size: a user of the package elsewhere must know
    assert "2.15 single-bead areas (fewer when elongated)" in card


def test_a_run_without_benchmarks_gets_its_own_record_only(tmp_path):
    ckpt = tmp_path / "run" / "best.pt"
    ckpt.parent.mkdir()
    shutil.copy(DEFAULT_MODEL, ckpt)
    card = _card(ckpt)
    assert "## Benchmarks" not in card and "## Validation" in card and "Validation at epoch" in card
    assert not MACHINE_PATH.search(card)
