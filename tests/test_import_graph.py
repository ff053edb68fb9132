"""No import circle among fashion_course's modules, counting imports inside functions too.

A circle (a imports b, b imports a) works only as long as the imports happen in a lucky order;
it breaks as soon as someone moves an import to the top of a file. Read from the source with
``ast``, so nothing is imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fashion_course"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: {modules of the package it imports}}``, wherever in the module they are."""
    paths = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the module's own package, one level up per dot
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from . import exercises` imports a submodule; `from .data import CLASSES` a name
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                           for a in node.names]
            for target in targets:
                while target and target not in paths:  # `import fashion_course.x.y` -> closest
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (depth-first search, colouring the nodes)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_graph_sees_the_imports_it_should():
    graph = import_graph()
    assert "fashion_course.data" in graph["fashion_course.loaders"]  # top-level relative import
    assert "fashion_course.exercises" in graph["fashion_course"]  # `from . import exercises`
    assert "fashion_course.export" in graph["fashion_course.cli"]  # inside a function
    assert "fashion_course.training" in graph["fashion_course.export"]  # inside load_any


def test_there_is_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}, ["b", "b2", "b"]),
])
def test_find_cycle_knows_a_circle_when_it_sees_one(graph, expected):
    assert find_cycle(graph) == expected


def test_the_old_circle_would_be_found(tmp_path):
    """predict importing a loader from cli, which imports predict: the circle this guards."""
    package = tmp_path / "fashion_course"
    package.mkdir()
    (package / "__init__.py").write_text("from .predict import load_classifier\n")
    (package / "predict.py").write_text("def load_classifier():\n    from .cli import _load_any\n")
    (package / "cli.py").write_text("def main():\n    from .predict import classify_images\n")
    cycle = find_cycle(import_graph(package))
    assert cycle == ["fashion_course.predict", "fashion_course.cli", "fashion_course.predict"]
