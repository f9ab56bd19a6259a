"""The package layout keeps its promises (docs/architecture.md): no import
cycles between modules, the pure core imports no storage or edge, and no
module grows past the size a reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "threadline"
MAX_LINES = 800
CORE = ("threadline.model", "threadline.deltas", "threadline.planner", "threadline.merge")
EDGES = ("threadline.cli", "threadline.sync", "threadline.viewer", "threadline.importers")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_at_load(name: str, path: Path, known: set[str]) -> set[str]:
    """The threadline modules ``name`` imports while it is being loaded:
    module-level imports, not those under ``TYPE_CHECKING`` or inside functions."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join([*base, *([node.module] if node.module else [])])

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and _type_checking(node):
                visit(node.orelse)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                if isinstance(node, ast.Try):
                    for handler in node.handlers:
                        visit(handler.body)
                    visit(node.finalbody)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name in known)
            elif isinstance(node, ast.ImportFrom):
                target = resolve(node)
                for alias in node.names:
                    if f"{target}.{alias.name}" in known:
                        found.add(f"{target}.{alias.name}")
                    elif target in known:
                        found.add(target)

    visit(ast.parse(path.read_text()).body)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    names = set(known)
    edges = {name: imports_at_load(name, path, names) for name, path in known.items()}
    # A package's __init__ re-exporting its own modules is not a cycle: loading
    # ``a.b`` loads ``a`` first either way.
    for name in edges:
        edges[name] = {t for t in edges[name] if not name.startswith(t + ".")}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := walk(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles() -> None:
    edges = graph()
    assert "threadline.files.log" in edges["threadline.recorders.roles"]  # the graph is real
    assert find_cycle(edges) is None


def test_the_core_imports_no_storage_and_no_edge() -> None:
    edges = graph()
    for core in CORE:
        reached: set[str] = set()
        todo = [core]
        while todo:
            for target in edges[todo.pop()]:
                if target not in reached:
                    reached.add(target)
                    todo.append(target)
        outside = {m for m in reached if m.startswith(("threadline.recorders", *EDGES))}
        assert not outside, f"{core} loads {sorted(outside)}"


def test_no_module_is_over_the_limit() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
