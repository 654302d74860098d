"""Structure: data flows one way through the package, no import cycles, no module too big to read."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "brandkit"

# The stages in the order data flows, each layer allowed to import only the layers before it.
# Faces (the CLI, the pipeline driver, the notebooks' helpers and widgets) sit on top and may use any.
LAYERS = [
    {"config"},
    {"figures"},
    {"collect"},
    {"clean"},
    {"examples"},
    {"hardware", "chat"},
    {"models"},
    {"presets"},
    {"readiness"},
    {"head_loss", "fused_lora", "cpu_memory"},
    {"peft_backend", "unsloth_backend"},
    {"train"},
    {"compare"},
    {"export", "report", "writer"},
    {"pipeline"},
    {"widgets", "course", "lessons", "colab"},
    {"cli"},
]
MAX_LINES = 600


def room(module: str) -> str:
    """The top-level room of a dotted module name inside the package ("clean.dedupe" -> "clean")."""
    return module.split(".")[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__init__"


def imports_of(path: Path) -> set[str]:
    """Every brandkit module this file imports, at the top or inside a function."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
                if not node.module:  # from . import unsloth_backend
                    found.update(".".join([*base, alias.name]).strip(".") for alias in node.names)
                    continue
            elif node.module and node.module.startswith("brandkit."):
                target = node.module.removeprefix("brandkit.")
            else:
                continue
            found.add(target.strip("."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("brandkit.") for a in node.names if a.name.startswith("brandkit."))
    return {f for f in found if f and f != name}


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_room_has_a_layer():
    rooms = {room(m) for m in modules()} - {"__init__"}
    placed = set().union(*LAYERS)
    assert rooms <= placed, f"put these in LAYERS: {sorted(rooms - placed)}"


def test_no_room_imports_a_later_stage():
    layer_of = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    wrong = []
    for name, path in modules().items():
        if name == "__init__":
            continue
        for target in imports_of(path):
            if room(target) != room(name) and layer_of[room(target)] >= layer_of[room(name)]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, wrong


def test_no_import_cycles():
    graph = {name: {t for t in imports_of(path) if t in modules()} for name, path in modules().items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_modules_stay_readable():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def test_every_module_says_what_room_it_is():
    missing = [name for name, path in modules().items() if ast.get_docstring(ast.parse(path.read_text())) is None]
    assert not missing, missing


def test_a_new_import_cycle_would_be_found(tmp_path, monkeypatch):
    """The cycle check is not vacuous: two files importing each other fail it."""
    import pytest

    (tmp_path / "a.py").write_text('"""a"""\nfrom .b import x\n')
    (tmp_path / "b.py").write_text('"""b"""\nfrom .a import y\n')
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", tmp_path)
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycles()
