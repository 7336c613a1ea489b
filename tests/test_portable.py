"""What ships and what users share names no machine path: the installed package (code, shipped
weights and their records) and the copies beadseg writes to be shared (slim checkpoints, ONNX
files) name the data set's folders, never a developer's or user's directory layout."""

import json
import re
from pathlib import Path

import pytest

import beadseg
from beadseg.core.portable import strip_machine_paths

PACKAGE = Path(beadseg.__file__).parent
#: where machines keep people's and jobs' files (written independently of the implementation's
#: pattern, so the scan checks it rather than repeats it)
MACHINE_PATH = re.compile(
    r"(?<![\w.])(/work/|/tmp/|/home/|/Users/|/root/|/mnt/|/private/var/|/var/folders/|[A-Za-z]:\\+Users\\+)"
)
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".csv", ".md", ".txt", ".html", ".cfg", ".toml"}


def strings_in(obj):
    """Every string inside nested dicts/lists/tuples (keys too)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from strings_in(k)
            yield from strings_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from strings_in(v)


def checkpoint_strings(path):
    import torch

    yield from strings_in(torch.load(path, map_location="cpu", weights_only=True))


def onnx_strings(path):
    import onnx

    proto = onnx.load(str(path))
    yield proto.doc_string
    yield proto.graph.doc_string
    for prop in proto.metadata_props:
        yield prop.value
    for node in proto.graph.node:
        yield node.doc_string


def machine_paths(strings) -> list[str]:
    return [m.group() for s in strings for m in MACHINE_PATH.finditer(s)]


def package_files():
    return sorted(p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_nothing_under_the_package_names_a_machine_path():
    files = package_files()
    assert any(p.suffix == ".pt" for p in files) and any(p.suffix == ".onnx" for p in files)
    found, unread = {}, []
    for p in files:
        if p.suffix == ".pt":
            paths = machine_paths(checkpoint_strings(p))
        elif p.suffix == ".onnx":
            paths = machine_paths(onnx_strings(p))
        elif p.suffix in TEXT_SUFFIXES:
            paths = machine_paths([p.read_text()])
        else:
            unread.append(p.name)
            continue
        if paths:
            found[str(p.relative_to(PACKAGE))] = sorted(set(paths))
    assert not found, found
    assert not unread, f"files of unknown kind in the package (scan them too): {unread}"


def test_absolute_paths_become_folder_names_and_the_rest_is_kept():
    record = {
        "data": {"path": ["/home/ana/beads/real", "C:\\Users\\ana\\scans\\day 2"], "crop_size": 256},
        "trained_on": "['/scratch/job7/composites', 'relative/set']",
        "note": "see https://bioimage.io/models and use 1/2 of the crops",
        "threshold": 0.5,
    }
    out = strip_machine_paths(record)
    assert out["data"]["path"] == ["real", "day 2"]
    assert out["trained_on"] == "['composites', 'relative/set']"
    assert out["note"] == record["note"]
    assert out["data"]["crop_size"] == 256 and out["threshold"] == 0.5
    assert record["data"]["path"][0] == "/home/ana/beads/real"  # the input is not modified


@pytest.fixture
def checkpoint_with_paths(tmp_path):
    """A checkpoint as `beadseg train` writes it on a user's machine: absolute data paths in its
    config and meta."""
    import torch

    from beadseg.core.config import ModelConfig
    from beadseg.models import build_model
    from beadseg.models.checkpoint import CHECKPOINT_FORMAT, save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(base_channels=4, depth=2)
    paths = ["/home/ana/beads/real_all", "/tmp/pytest-of-ana/composites"]
    return save_checkpoint(
        tmp_path / "run" / "best.pt",
        {
            "format": CHECKPOINT_FORMAT,
            "model_state": build_model(cfg, 3).state_dict(),
            "ema_state": None,
            "epoch": 1,
            "history": [{"epoch": 1, "val_iou": 0.5}],
            "best": {"epoch": 1},
            "config": {"data": {"path": paths, "crop_size": 64}},
            "meta": {"model": cfg.model_dump(), "in_channels": 3, "threshold": 0.5, "trained_on": str(paths)},
        },
    )


def test_shared_copies_name_the_data_folders_not_the_machine(checkpoint_with_paths, tmp_path):
    import torch

    from beadseg.models.checkpoint import export_checkpoint, load_checkpoint
    from beadseg.models.onnx import export_onnx

    slim = export_checkpoint(checkpoint_with_paths, tmp_path / "share" / "model.pt")
    onnx_file = export_onnx(slim)
    assert machine_paths(checkpoint_strings(slim)) == []
    assert machine_paths(onnx_strings(onnx_file)) == []
    copy, source = load_checkpoint(slim), load_checkpoint(checkpoint_with_paths)
    assert copy["config"]["data"]["path"] == ["real_all", "composites"]
    assert "real_all" in copy["meta"]["trained_on"]
    meta = json.loads(dict(_onnx_props(onnx_file))["beadseg.meta"])
    assert meta["trained_on"] == "['real_all', 'composites']"
    for k, v in source["model_state"].items():  # the weights are the source's, bit for bit
        assert torch.equal(copy["model_state"][k], v)
    assert source["config"]["data"]["path"][0] == "/home/ana/beads/real_all"  # source untouched


def _onnx_props(path):
    import onnx

    return [(p.key, p.value) for p in onnx.load(str(path)).metadata_props]


def test_docstring_examples_hold():
    import doctest

    import beadseg.core.files

    assert doctest.testmod(beadseg.core.files).failed == 0


def test_bioimageio_package_names_the_data_folders_not_the_machine(checkpoint_with_paths, tmp_path):
    pytest.importorskip("bioimageio.spec")
    import zipfile

    from beadseg.integrations.export import export_model

    package = zipfile.ZipFile(export_model(checkpoint_with_paths, "bioimageio", tmp_path / "m.zip"))
    card, rdf = package.read("README.md").decode(), package.read("rdf.yaml").decode()
    assert "real_all" in card and "real_all" in rdf
    assert machine_paths([card, rdf]) == []
