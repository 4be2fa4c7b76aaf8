"""The package graph has no import cycles.

import-linter's contracts (``pyproject.toml``) fix which layer may import which; they do not
see a cycle *inside* a layer, and a cycle is what turns a refactor into an import-order
puzzle.  This walks grimp's graph of ``src/pybpf`` (grimp ships with import-linter) and finds
strongly connected components: every run-time import counts, at the level of modules and of
packages.  Imports under ``TYPE_CHECKING`` never run, so a cycle they close costs nothing at
import time; the two that exist are annotations of a class's collaborators and are listed
here by name, so that a new one still fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grimp
import pytest

ANNOTATION_ONLY_CYCLES = {
    # Btf's methods delegate to layout and naming, which annotate their ``btf`` argument.
    frozenset({"pybpf.btf.btf", "pybpf.btf.layout", "pybpf.btf.naming"}),
    # BpfObject builds its Maps and Programs, which annotate their ``obj`` back-reference.
    frozenset({"pybpf.object.bpf_object", "pybpf.object.map", "pybpf.object.program"}),
}


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[frozenset[str]]:
    """Components of more than one node (Tarjan's algorithm, iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for succ in edges:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def module_graph(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def package_graph(modules: Mapping[str, set[str]], depth: int) -> dict[str, set[str]]:
    """Modules folded into their package ``depth`` levels below ``pybpf`` (self-edges dropped)."""

    def fold(name: str) -> str:
        return ".".join(name.split(".")[: depth + 1])

    folded: dict[str, set[str]] = {}
    for module, imported in modules.items():
        edges = folded.setdefault(fold(module), set())
        edges.update(fold(i) for i in imported if fold(i) != fold(module))
    return folded


def describe(graph: grimp.ImportGraph, component: frozenset[str]) -> str:
    """Each import that closes the cycle, with file line, for the failure message."""
    lines = []
    for importer in sorted(component):
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & component):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(f"  {importer}:{detail['line_number']}: {detail['line_contents']}")
    return "\n".join(lines) or "  (package-level cycle)"


@pytest.fixture(scope="module")
def runtime_graph() -> grimp.ImportGraph:
    # cache_dir=None: grimp would otherwise leave a .grimp_cache in the working directory.
    return grimp.build_graph("pybpf", cache_dir=None, exclude_type_checking_imports=True)


@pytest.fixture(scope="module")
def full_graph() -> grimp.ImportGraph:
    return grimp.build_graph("pybpf", cache_dir=None, exclude_type_checking_imports=False)


def test_the_walk_sees_the_whole_package(runtime_graph: grimp.ImportGraph) -> None:
    # A guard on the guard: the graph must hold the packages whose cycles it is to catch.
    packages = set(package_graph(module_graph(runtime_graph), 1))
    assert {"pybpf.abi", "pybpf.btf", "pybpf.obj", "pybpf.object", "pybpf.data"} <= packages
    assert len(runtime_graph.modules) > 100


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": set()}
    assert sorted(map(sorted, strongly_connected(graph))) == [["a", "b", "c"], ["d", "e"]]


@pytest.mark.parametrize("depth", [None, 1, 2], ids=["modules", "packages", "subpackages"])
def test_no_runtime_import_cycle(runtime_graph: grimp.ImportGraph, depth: int | None) -> None:
    modules = module_graph(runtime_graph)
    graph = modules if depth is None else package_graph(modules, depth)
    cycles = strongly_connected(graph)
    assert not cycles, "\n".join(
        f"import cycle {sorted(c)}:\n{describe(runtime_graph, c)}" for c in cycles
    )


def test_only_known_annotation_cycles(full_graph: grimp.ImportGraph) -> None:
    cycles = set(strongly_connected(module_graph(full_graph)))
    new = cycles - ANNOTATION_ONLY_CYCLES
    assert not new, "\n".join(
        f"cycle through TYPE_CHECKING imports {sorted(c)}:\n{describe(full_graph, c)}"
        for c in new
    )
    # A cycle that went away should leave the list, so the list stays the truth.
    assert cycles == ANNOTATION_ONLY_CYCLES
