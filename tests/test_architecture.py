"""The layers of rdusim/README.md hold: no import cycles, and function-local imports only where stated.

The layer order and the independence of the two platform models are checked by ``lint-imports``
(contracts in pyproject.toml, run by ``make test``); these tests add what a contract cannot say.
"""
from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rdusim", "benchmarks", "baselines")

# Function-local imports that stay, each deferring something heavy or optional (see rdusim/README.md).
ALLOWED_LOCAL_IMPORTS = {
    ("baselines/calibrate.py", "torch"),            # optional extra: the module imports without PyTorch
    ("rdusim/cli.py", "rdusim.scenarios.predict_light"),  # CLI start-up: a subcommand imports only what it runs
    ("rdusim/cli.py", "rdusim.scenarios.predict"),   # (predict: numba and pandas only when the light path cannot)
    ("rdusim/cli.py", "rdusim.scenarios.coe"),
    ("rdusim/cli.py", "rdusim.scenarios.serve"),
    ("rdusim/cli.py", "rdusim.scenarios.serve_model"),  # serve --model (issue 22)
    ("rdusim/cli.py", "rdusim.scenarios.traces"),
    ("rdusim/cli.py", "rdusim.scenarios.energy"),    # --energy only: the power model when asked
    ("rdusim/cli.py", "rdusim.scenarios.coe_energy"),
    ("rdusim/cli.py", "baselines.calibrate"),
}


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES)


def test_no_import_cycles_between_modules(import_graph):
    assert _cycles(import_graph) == []


SUBPACKAGES = ("rdusim.core", "rdusim.sn40l", "rdusim.scenarios", "rdusim.report", "benchmarks", "baselines")


def _unit(module: str) -> str:
    """The package a module belongs to: a layer's subpackage, or ``rdusim`` for the CLI and shims."""
    return next((p for p in SUBPACKAGES if module == p or module.startswith(p + ".")), module.split(".")[0])


def test_no_import_cycles_between_packages(import_graph):
    edges = {(_unit(a), _unit(b)) for a in import_graph.modules
             for b in import_graph.find_modules_directly_imported_by(a) if _unit(a) != _unit(b)}
    assert sorted((a, b) for (a, b) in edges if (b, a) in edges) == []


def test_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [["p.a", "p.b"]]


def _local_imports(path: Path) -> set[tuple[str, str]]:
    found = set()
    tree = ast.parse(path.read_text())
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            rel = str(path.relative_to(ROOT))
            if isinstance(node, ast.Import):
                found |= {(rel, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                found.add((rel, node.module or ""))
    return found


def test_function_local_imports_are_only_the_listed_ones():
    local = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            local |= _local_imports(path)
    assert local == ALLOWED_LOCAL_IMPORTS
