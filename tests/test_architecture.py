"""The one-way dependency rule of docs/architecture.md, checked on the source tree."""

import ast
from pathlib import Path

import beadseg

ROOT = Path(beadseg.__file__).parent

# docs/architecture.md: a module may import only from its own layer or a lower-numbered one
LAYERS = {
    "errors": 0, "__init__": 0,
    "io": 1, "output_folder": 1, "naming": 1, "config": 1, "provenance": 1, "plots": 1, "fastfilters": 1,
    "normalization": 1, "memory": 1,
    "devices": 2, "checkpoint": 2, "models": 2, "losses": 2, "metrics": 2, "instances": 2,
    "registration": 2, "synth": 2, "composite": 2, "dilution": 2, "domain": 2, "reporting": 2,
    "data": 3, "training": 3, "inference": 3, "analysis": 3, "classical": 3, "export": 3,
    "evaluate": 4,
    "experiments": 5, "demo": 5,
    "cli": 6, "__main__": 6, "napari_plugin": 6,
}  # fmt: skip


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    """Top-level beadseg module -> the top-level beadseg modules it imports."""
    out: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        here = _top(".".join(parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = list(parts)[: len(parts) - node.level + (path.name == "__init__.py")]
                    targets = [".".join(base + ([node.module] if node.module else []))]
                else:
                    targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t == "beadseg" or t.startswith("beadseg."):
                    out.setdefault(here, set()).add(_top(t) if t != "beadseg" else "__init__")
    return out


def test_every_module_has_a_layer():
    tops = {_top(".".join(p.relative_to(ROOT.parent).with_suffix("").parts)) for p in ROOT.glob("*.py")}
    tops |= {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(tops - set(LAYERS))
    assert not missing, f"add {missing} to the layer table of docs/architecture.md and LAYERS"


def test_imports_run_one_way():
    wrong = [
        f"{a} (layer {LAYERS[a]}) imports {b} (layer {LAYERS[b]})"
        for a, targets in _imports().items()
        for b in targets
        if a in LAYERS and b in LAYERS and LAYERS[b] > LAYERS[a]
    ]
    assert not wrong, "; ".join(wrong)
