"""The README's code blocks run as written: every ```bash and ```python block not marked
``<!-- not run: REASON -->`` on the line before it runs, in order, in one folder that stands
for the root of a fresh clone (its configs/ copied in), with `beadseg` and `python` of this
environment. The marked ones (GPU, cluster, real data, installs) are few and say why."""

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import beadseg

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:^<!--\s*(not run:[^>]*?)\s*-->\s*\n)?^```(\w*)\n(.*?)^```", re.M | re.S)


def blocks(text: str) -> list[tuple[str, str, str | None]]:
    """(language, code, reason it is not run or None) of every fenced block."""
    return [(m.group(2), m.group(3), m.group(1)) for m in BLOCK.finditer(text)]


def test_the_not_run_convention_is_used_sparingly():
    found = blocks(README.read_text())
    skipped = [(lang, reason) for lang, _, reason in found if reason]
    run = [lang for lang, _, reason in found if not reason and lang in ("bash", "python")]
    assert all(lang in ("bash", "python") for lang, _ in skipped)
    assert len(run) >= 4 and len(skipped) <= 8, (run, skipped)
    assert all(len(reason) > len("not run: ") for _, reason in skipped)  # each says why


def _environment(tmp_path: Path) -> dict:
    """PATH with a `beadseg` and a `python` of this interpreter; this beadseg importable."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, argv in (("beadseg", f'"{sys.executable}" -m beadseg'), ("python", f'"{sys.executable}"')):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    src = str(Path(beadseg.__file__).parents[1])
    path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": path}


def test_every_readme_block_runs_as_written(tmp_path):
    pytest.importorskip("torch", reason="the README's walkthrough fine-tunes (pip install -e '.[train]')")
    pytest.importorskip("bioimageio.spec", reason="the README exports a bioimage.io package (.[bioimageio])")
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "configs", clone / "configs")
    env = _environment(tmp_path)
    for i, (lang, code, reason) in enumerate(blocks(README.read_text())):
        if reason or lang not in ("bash", "python"):
            continue
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        r = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (
            f"README block {i} ({lang}) failed:\n{code}\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}"
        )
    for made in (
        "analysis/report.html",
        "evaluation/report.html",
        "dilution/report.html",
        "beads.zip",
        "runs/api",
    ):
        assert (clone / made).exists(), made
