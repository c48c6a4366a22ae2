"""The layering the README states, checked on every test run (issue 12): the import-linter
contracts in pyproject.toml hold, and no module imports itself through others (no import cycles)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp

from tests.conftest import REPO

PACKAGES = ("api", "services", "graphs", "agents", "intake", "tools", "guardrails", "core", "evals", "prompts")


class _Tarjan:
    """Strongly connected components (Tarjan's algorithm, iterative: the product's import chains
    are deeper than Python's recursion limit would like)."""

    def __init__(self, graph: grimp.ImportGraph) -> None:
        self.graph = graph
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()
        self.found: list[list[str]] = []

    def _enter(self, node: str, work: list[tuple[str, list[str]]]) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        work.append((node, sorted(self.graph.find_modules_directly_imported_by(node))))

    def _leave(self, node: str) -> None:
        """Pop ``node``'s component off the stack when it is the component's root."""
        if self.low[node] != self.index[node]:
            return
        component = []
        while True:
            member = self.stack.pop()
            self.on_stack.discard(member)
            component.append(member)
            if member == node:
                break
        if len(component) > 1:
            self.found.append(sorted(component))

    def visit(self, root: str) -> None:
        work: list[tuple[str, list[str]]] = []
        self._enter(root, work)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in self.index:
                    self._enter(nxt, work)
                elif nxt in self.on_stack:
                    self.low[node] = min(self.low[node], self.index[nxt])
                continue
            work.pop()
            if work:
                self.low[work[-1][0]] = min(self.low[work[-1][0]], self.low[node])
            self._leave(node)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module: each is an import cycle."""
    tarjan = _Tarjan(graph)
    for root in sorted(graph.modules):
        if root not in tarjan.index:
            tarjan.visit(root)
    return tarjan.found


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyc import b\n")
    (pkg / "b.py").write_text("from cyc import a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("cyc", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert _cycles(graph) == [["cyc.a", "cyc.b"]]


def test_the_import_linter_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(exe), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
