"""The architecture as tests: the layering contract of pyproject.toml ([tool.importlinter]) and
no import cycle between creditflow modules.

Both read the source only (nothing of creditflow is imported here), so they are quick.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "creditflow"


def _lint_imports_command() -> list[str]:
    script = Path(sys.executable).parent / "lint-imports"
    if script.exists():
        return [str(script)]
    found = shutil.which("lint-imports")
    if found:
        return [found]
    return [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]


def test_import_contracts_are_kept():
    """`lint-imports` with the contracts of pyproject.toml: the layers, top to bottom, where a
    module imports only from the layers below its own."""
    result = subprocess.run(
        [*_lint_imports_command(), "--no-logo", "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"},
    )
    assert result.returncode == 0, f"import contracts broken:\n{result.stdout}\n{result.stderr}"


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit), over `graph` (module -> imported
    modules). Returns every component, each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(sorted(graph[start])))]
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _import_graph() -> tuple[grimp.ImportGraph, dict[str, set[str]]]:
    """Every import between creditflow modules, those inside functions and under
    TYPE_CHECKING included."""
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    edges = {module: {imported for imported in graph.find_modules_directly_imported_by(module)
                      if imported == PACKAGE or imported.startswith(PACKAGE + ".")}
             for module in graph.modules}
    return graph, edges


def _shortest_cycle(graph: grimp.ImportGraph, edges: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's modules (each closing import tried)."""
    members = set(component)
    best: list[str] | None = None
    for module in component:
        for imported in sorted(edges[module] & members):
            if imported == module:
                return [module, module]
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain and (best is None or len(chain) + 1 < len(best)):
                best = [module, *chain]
    assert best is not None
    return best


def _describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    hops = []
    for importer, imported in zip(cycle, cycle[1:]):
        lines = sorted({d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)})
        where = f" (l.{', l.'.join(map(str, lines))})" if lines else ""
        hops.append(f"      {importer} -> {imported}{where}")
    return "\n".join(hops)


def import_cycles() -> list[str]:
    """One paragraph per group of modules that import one another, directly or not."""
    graph, edges = _import_graph()
    cyclic = [c for c in strongly_connected_components(edges)
              if len(c) > 1 or c[0] in edges[c[0]]]
    cyclic.sort(key=lambda c: (-len(c), c))
    report = []
    for component in cyclic:
        report.append(
            f"{len(component)} modules in a cycle:\n    " + "\n    ".join(component)
            + "\n  for example:\n" + _describe(graph, _shortest_cycle(graph, edges, component)))
    return report


def test_strongly_connected_components():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"d"}}
    assert sorted(strongly_connected_components(graph)) == [["a", "b", "c"], ["d"], ["e"], ["f"]]


def test_no_import_cycles():
    cycles = import_cycles()
    assert not cycles, f"{len(cycles)} import cycle(s) between creditflow modules:\n\n" + "\n\n".join(cycles)
