"""No import cycle inside `cadence/`, and the layers point one way.

Every import counts, at the top of a module or inside a function (a lazy import is still a
dependency); only those under `if TYPE_CHECKING:` do not (they are names for the type
checker). A module depends on a package through its `__init__`, and a package on its
modules only where its `__init__` imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cadence"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The cadence modules `name` imports (the longest known prefix of each name)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` depends on the module; `from module import
            # name` on the module
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            targets = []
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return out


def test_no_import_cycle() -> None:
    edges = graph()
    # a package's __init__ that re-exports its modules is where callers enter the package:
    # the modules inside do not go back through it
    assert _cycles(edges) == []


def test_the_walk_sees_imports() -> None:
    edges = graph()
    assert "cadence.engine.planner" in edges["cadence.engine"]
    assert "cadence.model" in edges["cadence.engine.planner"]


#: who may import whom: a module imports only from its own layer or those below it (the
#: number), so the flow reads one way: the command line, the daemon and the feedback side on
#: top, the use cases under them, the ledger, delivery and ingestion under those, the pure
#: planner under those, and the rules and the domain values at the bottom
LAYERS = {
    "cli": 5,
    "runtime": 4,
    "feedback": 4,
    "app": 3,
    "flows": 3,
    "report": 3,
    "printing": 3,
    "table_fit": 3,
    "ledger": 2,
    "delivery": 2,
    "ingest": 2,
    "starter": 2,
    "engine": 1,
    "rules": 0,
    "model": 0,
    "views": 0,
    "clock": 0,
    "instants": 0,
    "durations": 0,
    "jinja": 0,
    "config": 0,
    "config_file": 0,
    "config_errors": 0,
    "shipped": 0,
    "metrics": 0,
    "words": 0,
    "progress": 0,
    "collector": 0,
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_layers_point_one_way() -> None:
    wrong = []
    for module, deps in graph().items():
        here = _layer(module)
        if here in ("", "__main__"):
            continue  # the package itself and `python -m cadence`: the entry points
        assert here in LAYERS, f"{module}: which layer is it in?"
        for dep in deps:
            there = _layer(dep)
            if there != here and LAYERS.get(there, 0) > LAYERS[here]:
                wrong.append(f"{module} -> {dep}")
            if here in ("runtime", "feedback") and there == "cli":
                wrong.append(f"{module} -> {dep}")
    assert wrong == []
