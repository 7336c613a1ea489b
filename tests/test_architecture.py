"""The layering of docs/architecture.md, checked on the source tree: imports run one way (down
the layers), no module imports itself back through others, and no module outgrows 500 lines."""

import ast
import re
from pathlib import Path

import beadseg

ROOT = Path(beadseg.__file__).parent

# docs/architecture.md: a package may import only from its own layer or a lower one
LAYERS = {
    "__init__": 0, "core": 0,
    "outputs": 1,
    "data": 2, "analysis": 2,
    "models": 3,
    "training": 4, "inference": 4,
    "evaluation": 5,
    "integrations": 6,
    "workflows": 7,
    "cli": 8, "__main__": 8,
}  # fmt: skip
MAX_LINES = 500


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    """beadseg module -> the beadseg modules it imports (anywhere in the file; a name imported
    from a package counts as its submodule when one of that name exists)."""
    modules = {_module(p) for p in ROOT.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        here = _module(path)
        pkg = here if path.name == "__init__.py" else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            out.setdefault(here, set()).update(
                t for t in targets if t == "beadseg" or t.startswith("beadseg.")
            )
    return out


def test_every_package_has_a_layer():
    tops = {_top(_module(p)) for p in ROOT.glob("*.py")}
    tops |= {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(tops - set(LAYERS))
    assert not missing, f"add {missing} to the layer table of docs/architecture.md and LAYERS"


def test_imports_run_one_way():
    wrong = sorted(
        f"{a} (layer {LAYERS[_top(a)]}) imports {b} (layer {LAYERS[_top(b)]})"
        for a, targets in _imports().items()
        for b in targets
        if LAYERS[_top(b)] > LAYERS[_top(a)]
    )
    assert not wrong, "; ".join(wrong)


def test_no_module_imports_itself_back():
    graph = _imports()
    cycles = []

    def visit(node, stack, on_stack, done):
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_stack:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in done and nxt != node:
                visit(nxt, stack, on_stack, done)
        on_stack.discard(stack.pop())
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [], set(), done)
    # a package's face (__init__) naming its own modules is no cycle
    real = [c for c in cycles if not all(part.startswith(c.split(" -> ")[0]) for part in c.split(" -> "))]
    assert not real, "; ".join(real[:5])


def test_no_module_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules: {long}"


def test_no_function_over_80_lines():
    long = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # from `def` (a command's decorator is its help)
                if n > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} ({n})")
    assert not long, f"split these functions: {long}"


def test_every_concept_of_the_architecture_page_names_a_module_that_exists():
    page = (ROOT.parent.parent / "docs" / "architecture.md").read_text()
    table = page.split("## Concepts and their one home", 1)[1].split("\n## ", 1)[0]
    homes = re.findall(
        r"`((?:core|outputs|data|analysis|models|training|inference|evaluation|integrations|workflows|cli)/[\w/]*\.py|(?:core|outputs|data|analysis|models|training|inference|evaluation|integrations|workflows|cli)/)`",
        table,
    )
    assert len(homes) > 20
    for home in homes:
        assert (ROOT / home).exists(), home
