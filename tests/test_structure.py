"""The layers stay layers: no circle between umr's packages, lazy (function-level) imports included.

Read with `ast` from the source, so an import inside a function counts as much as one at the top: a circle there
still ties the packages together (issue 30: models → train → mine → retrieval → models was one)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "umr"


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "umr"


def package_graph() -> dict[str, dict[str, set[str]]]:
    """package → imported package → the modules that import it."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in SRC.rglob("*.py"):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name == "umr" or name.startswith("umr."):
                    src, dst = _package(module), _package(name)
                    if dst not in (src, "umr"):
                        graph.setdefault(src, {}).setdefault(dst, set()).add(module)
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in list(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_circle_between_packages() -> None:
    graph = package_graph()
    cycle = find_cycle(graph)
    detail = [f"{a} → {b} ({', '.join(sorted(graph[a][b]))})" for a, b in zip(cycle, cycle[1:])] if cycle else []
    assert cycle is None, "import circle: " + "; ".join(detail)


def test_the_checker_finds_a_circle() -> None:
    assert find_cycle({"a": {"b": {"umr.a.x"}}, "b": {"c": {"umr.b.y"}}, "c": {"a": {"umr.c.z"}}}) == [
        "a", "b", "c", "a"]
    assert find_cycle({"a": {"b": {"umr.a.x"}}, "b": {}}) is None


def test_models_do_not_import_the_training_application() -> None:
    assert "train" not in package_graph().get("models", {})
