"""The package's modules import each other in one direction only: a cycle (even one hidden in
a function-level import) means two modules share an idea that belongs in a third."""

from __future__ import annotations

import ast
from pathlib import Path

import campaigner

PACKAGE = Path(campaigner.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the campaigner modules it imports, at top level or inside functions."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("campaigner"):
                assert node.module is not None
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    graph[name].add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name.startswith("campaigner")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that reach each other (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node] & graph.keys():
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


# Cycles that came with the WooCommerce work (function-level imports), left to give each its
# own home the way customers.fields ended config <-> records. No new one may join them.
KNOWN = {
    ("campaigner.customers.guests", "campaigner.customers.loader"),
    ("campaigner.sources.sync", "campaigner.sources.woocommerce"),
}


def test_settings_and_records_do_not_import_each_other() -> None:
    graph = import_graph()
    assert "campaigner.customers.fields" in graph["campaigner.config"]  # sanity
    tangled = [
        group
        for group in cycles(graph)
        if {"campaigner.config", "campaigner.customers.records"} & set(group)
    ]
    assert tangled == []


def test_no_new_import_cycle() -> None:
    assert {tuple(group) for group in cycles(import_graph())} <= KNOWN


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
