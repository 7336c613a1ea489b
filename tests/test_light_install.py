"""A plain `pip install beadseg` (no extras: no torch, no onnx, no Optuna, no bioimageio.spec)
segments, counts, analyses and exports ONNX; what needs an extra says which, in one line.

The commands run in a child process in which those packages cannot be imported (their
``sys.modules`` entries are None), so the test holds on a machine where they are installed.
.ci/light_install does the same in a fresh venv made with `pip install .`.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("torch", "onnx", "optuna", "bioimageio", "bioimageio.spec")


def _run_without_extras(commands: list[list[str]], cwd: Path) -> list[dict]:
    """Run beadseg commands in one child process without the optional packages; per command its
    exit code, stderr and whether torch got imported."""
    script = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        for name in {OPTIONAL!r}:
            sys.modules[name] = None
        from beadseg.cli import main
        results = []
        for argv in {commands!r}:
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    main(argv)
                    code = 0
                except SystemExit as e:
                    code = e.code or 0
            results.append({{"argv": argv, "code": code, "stderr": err.getvalue()}})
        print(json.dumps(results))
        """
    )
    import beadseg

    # the child imports this beadseg, whatever its working folder
    paths = [str(Path(beadseg.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_torch_is_an_extra_not_a_dependency():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in project["dependencies"]]
    assert "torch" not in names and "onnx" not in names and "onnxruntime" in names
    extras = project["optional-dependencies"]
    assert any(d.startswith("torch") for d in extras["train"])
    for extra in ("hpc", "bioimageio", "dev"):  # each needs torch too
        assert "beadseg[train]" in extras[extra], extra


def test_plain_install_segments_counts_analyses_and_exports_onnx(tmp_path):
    ok = [
        ["synth", "data", "--n", "3", "--size", "128", "--seed", "1"],
        ["synth", "series", "--dilution-series", "--size", "96"],
        ["analyze", "data", "--out", "analysis", "-q"],
        ["predict", "default", "data/images", "--out", "pred", "-q"],
        ["evaluate", "pred", "data", "--out", "ev"],
        ["evaluate", "default", "data", "--out", "ev-model"],
        ["predict", "default", "series/images", "--out", "pred-series", "-q"],
        ["dilution", "pred-series", "--out", "dil"],
        ["export", "default", "--format", "onnx", "--out", "model.onnx"],
        ["predict", "model.onnx", "data/images", "--out", "pred-onnx", "-q"],
    ]
    for r in _run_without_extras(ok, tmp_path):
        assert r["code"] == 0, (r["argv"], r["stderr"][-2000:])
    for path in (
        "analysis/report.html",
        "pred/counts.csv",
        "ev/report.html",
        "dil/report.html",
        "model.onnx",
    ):
        assert (tmp_path / path).is_file(), path
    shipped = Path(__import__("beadseg").__file__).parent / "models" / "weights" / "default.onnx"
    assert (tmp_path / "model.onnx").read_bytes() == shipped.read_bytes()  # the up-to-date file, copied


@pytest.mark.parametrize(
    "argv, extra",
    [
        (["train", "data", "--out", "run", "--epochs", "1"], "train"),
        (["lr-find", "data", "--out", "lr"], "train"),
        (["cv", "data", "--folds", "2", "--out", "cv"], "train"),
        (["models"], "train"),
        (["evaluate", "default", "data", "--out", "ev", "--calibrate"], "train"),
        (["export", "default", "--format", "bioimageio", "--out", "m.zip"], "bioimageio"),
        (["export", "solo.pt", "--format", "onnx", "--out", "solo.onnx"], "train"),
        (["predict", "solo.pt", "data/images", "--out", "p"], "train"),
        (["sweep", "space.yaml", "--out", "sweep"], "hpc"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else v,
)
def test_what_needs_an_extra_says_which_in_one_line(tmp_path, argv, extra):
    from beadseg.data.synth import synth_dataset
    from beadseg.models.checkpoint import DEFAULT_MODEL

    synth_dataset(tmp_path / "data", n=3, size=64, seed=0)
    (tmp_path / "solo.pt").write_bytes(DEFAULT_MODEL.read_bytes())  # a checkpoint without its .onnx
    (tmp_path / "space.yaml").write_text("params: {optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}}\n")
    (r,) = _run_without_extras([argv], tmp_path)
    lines = r["stderr"].strip().splitlines()
    assert r["code"] == 2 and len(lines) == 1, r["stderr"][-2000:]
    assert f'pip install "beadseg[{extra}]"' in lines[0] and "lacks" in lines[0]
    assert not any(
        p.name in ("run", "lr", "cv", "sweep", "ev", "p") for p in tmp_path.iterdir()
    )  # nothing written
