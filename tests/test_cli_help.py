"""One command-line convention: every command's --help has an example, placeholders instead of
Python types, and the same option names (--out/-o, --quiet/-q, --device) wherever they apply;
a command run without --out writes its documented default folder."""

import json
import re
from pathlib import Path

import pytest
from helpers import run_cli

from beadseg.cli.app import app
from beadseg.data.synth import synth_dataset
from beadseg.outputs.folder import MANIFEST, default_output

#: commands that print progress while they run (bars, spinners or per-step lines)
PROGRESS = {"analyze", "train", "cv", "sweep", "predict", "demo", "synth", "evaluate", "export"}
#: commands that run a model
MODEL = {"train", "cv", "lr-find", "predict", "evaluate", "demo"}
#: commands whose product is printed, not written (hpc's --out names the folder its job writes)
PRINT_ONLY = {"models"}
COMMANDS = {
    "synth", "analyze", "train", "cv", "sweep", "hpc", "compare", "lr-find", "models", "predict",
    "merge", "evaluate", "export", "dilution", "fix-masks", "demo", "audit",
}  # fmt: skip
TYPE_PLACEHOLDER = re.compile(r"\b(TEXT|INTEGER|FLOAT|PATH|BOOLEAN)\b|<(str|int|float|path|bool)\b")


def _run(*args):
    """``beadseg ARGS`` in this process: (exit code, stdout, stderr)."""
    r = run_cli(*args)
    return r.returncode, r.stdout, r.stderr


def _names():
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def _help(monkeypatch, *cmd):
    monkeypatch.setenv("COLUMNS", "200")  # one option per line: nothing wrapped mid-name
    code, out, err = _run(*cmd, "--help")
    assert code == 0, err
    return out


def test_demo_is_the_first_command_listed(monkeypatch):
    """`beadseg --help` lists the newcomer's first command first."""
    text = _help(monkeypatch)
    listed = re.findall(r"^│ ([a-z][a-z-]+) ", text.split("Commands")[1], re.M)
    assert listed[0] == "demo" and set(listed) == COMMANDS, listed


def test_every_command_is_classified():
    # a new command must be added here, and so say whether it writes, runs a model, shows progress
    assert set(_names()) == COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_follows_the_convention(name, monkeypatch):
    text = _help(monkeypatch, name)
    flat = " ".join(text.split())
    assert "Examples:" in text and f"beadseg {name} " in flat
    assert not TYPE_PLACEHOLDER.search(text), TYPE_PLACEHOLDER.search(text).group(0)
    assert ("--quiet" in text and " -q " in text) == (name in PROGRESS)
    assert ("--device" in text) == (name in MODEL)
    assert ("--out " in text and " -o " in text) == (name not in PRINT_ONLY)
    assert ("--overwrite" in text) == (name not in PRINT_ONLY | {"hpc"})


@pytest.mark.parametrize("name", ["analyze", "predict", "evaluate", "dilution", "fix-masks", "demo", "audit"])
def test_help_shows_the_default_folder(name, monkeypatch):
    flat = " ".join(_help(monkeypatch, name).split())
    assert re.search(rf"\[default: \(?\./(<\w+ folder>|beadseg)-{name}\)?\]", flat)


def test_root_help_states_the_rule_without_types(monkeypatch):
    text = _help(monkeypatch)
    assert "./<input folder>-<command>" in " ".join(text.split())
    assert not TYPE_PLACEHOLDER.search(text)


def test_default_output_names():
    assert default_output("analyze", "data/microbeads") == Path("microbeads-analyze")
    assert default_output("dilution", "preds/counts.csv") == Path("preds-dilution")
    assert default_output("predict", ["frames/*.png", "more"]) == Path("frames-predict")
    assert default_output("predict", "*.png") == Path(f"{Path.cwd().name}-predict")
    assert default_output("demo") == Path("beadseg-demo")


def test_synth_without_out_writes_the_default_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run("synth", "--n", 2, "--size", 64, "--max-beads", 20)
    assert code == 0, err
    assert len(list((tmp_path / "beadseg-synth" / "images").glob("*.png"))) == 2
    assert "beadseg-synth" in out
    # the older positional form still works, and a second, different folder is refused
    code, _, err = _run("synth", "a", "--out", "b", "--n", 2, "--size", 64)
    assert code == 2 and "FOLDER a and --out b differ" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_analyze_default_folder_follows_the_output_folder_rule(tmp_path, monkeypatch):
    data = tmp_path / "tiny"
    synth_dataset(data, n=2, size=64, seed=1, min_beads=3, max_beads=12)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = _run("analyze", data, "--no-plots", "-q")
    assert code == 0, err
    folder = work / "tiny-analyze"
    assert json.loads((folder / MANIFEST).read_text())["command"] == "analyze"
    assert (folder / "summary.json").is_file()
    # the default folder is claimed like any --out: other settings are refused, --overwrite replaces
    code, _, err = _run("analyze", data, "-q")
    assert code == 2 and "tiny-analyze" in err and "--overwrite" in err
    code, _, err = _run("analyze", data, "-q", "--no-plots", "--overwrite", "-o", "other")
    assert code == 0, err
    assert (work / "other" / "summary.json").is_file()
