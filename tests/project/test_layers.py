"""The shape of the package: no import circles, and every module named in docs/architecture.md.

The layer rules themselves are import-linter contracts (.importlinter, run by `make lint`).
Its `acyclic_siblings` contract sees cycles between sibling packages or modules; this test
sees every cycle between two modules, a package's __init__ included, with the imports that
make it. Imports inside functions count (a circle closed at call time is still a circle);
imports under `if TYPE_CHECKING:` do not (they never run).
"""

from __future__ import annotations

import os
import re
from collections import deque
from typing import Dict, List, Optional, Set

import grimp
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = "wireclient"
ARCHITECTURE = os.path.join(ROOT, "docs", "architecture.md")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)


def _circles(edges: Dict[str, Set[str]]) -> List[Set[str]]:
    """The strongly connected components of more than one module: each is one circle, or
    several tangled (every module of it reaches every other)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[Set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        # Tarjan's algorithm, iterative: (node, iterator over its successors)
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
    return sorted(components, key=min)


def _shortest_cycle(start: str, edges: Dict[str, Set[str]], within: Set[str]) -> List[str]:
    parent: Dict[str, Optional[str]] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(edges[node] & within):
            if succ == start:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])  # type: ignore[arg-type]
                return list(reversed(path)) + [start]
            if succ not in parent:
                parent[succ] = node
                queue.append(succ)
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def _describe(circle: Set[str], edges: Dict[str, Set[str]], graph: grimp.ImportGraph) -> str:
    """The circle's modules, and its shortest cycle through the first of them."""
    cycle = _shortest_cycle(min(circle), edges, circle)
    steps = [f"{len(circle)} modules import each other: {', '.join(sorted(circle))}; e.g."]
    for importer, imported in zip(cycle, cycle[1:]):
        lines = sorted(
            d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)
        )
        where = ", ".join(f"l.{n}" for n in lines)
        steps.append(f"  {importer} -> {imported} ({where})")
    return "\n".join(steps)


def test_no_import_cycle_between_modules(graph: grimp.ImportGraph) -> None:
    modules = {m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + ".")}
    edges = {m: graph.find_modules_directly_imported_by(m) & modules - {m} for m in modules}
    circles = _circles(edges)
    report = "\n\n".join(_describe(c, edges, graph) for c in circles)
    assert not circles, f"{len(circles)} import circle(s) in {PACKAGE}:\n{report}"


def _module_files() -> Dict[str, str]:
    """Dotted name -> path relative to the repository, for every module of the package."""
    found = {}
    for folder, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in files:
            if name.endswith(".py"):
                path = os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")
                dotted = path[: -len(".py")].replace("/", ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def _names(dotted: str, path: str) -> List[str]:
    """The regular expressions that count as naming a module: its dotted name, its path, or
    its path inside the package (`client/connection.py`; `errors.py` for a top-level one).
    A package is also named by its folder (`wireclient/client/`, `client/`), so a path inside
    it names it too. None matches the tail of a longer name (`/errors.py`, `xclient/`)."""
    inner = path[len(PACKAGE) + 1 :]
    names = [path, inner] if dotted == PACKAGE else [dotted, path, inner]
    patterns = [r"(?<![\w./])" + re.escape(name) + r"(?!\w)" for name in names]
    if path.endswith("/__init__.py") and dotted != PACKAGE:
        folder = path[: -len("__init__.py")]
        patterns += [r"(?<![\w./])" + re.escape(f) for f in (folder, folder[len(PACKAGE) + 1 :])]
    return patterns


def test_architecture_doc_names_every_module() -> None:
    with open(ARCHITECTURE, encoding="utf-8") as f:
        text = f.read()
    missing = [
        f"{dotted}  ({path})"
        for dotted, path in sorted(_module_files().items())
        if not any(re.search(pattern, text) for pattern in _names(dotted, path))
    ]
    assert not missing, (
        f"docs/architecture.md does not name {len(missing)} module(s) by dotted name or "
        "path (e.g. wireclient.client.connection, wireclient/client/connection.py or "
        "client/connection.py):\n" + "\n".join(missing)
    )
