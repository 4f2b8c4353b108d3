"""The package's import structure: no import cycles, every top-level module placed in a layer (docs/architecture.md).

The layer contracts themselves are checked by ``lint-imports`` (``make test``); these tests make a new cycle
or an unplaced module fail the test suite too, with the offending modules listed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tomllib

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")

REPO = Path(__file__).resolve().parents[2]


def _graph() -> object:
    # function-level (lazy) imports count; `if TYPE_CHECKING:` imports never run and do not
    return grimp.build_graph("biodl", include_external_packages=False, exclude_type_checking_imports=True)


def import_cycles(graph: object) -> list[list[str]]:
    """Strongly connected groups of modules (each a set of modules that import each other, directly or not)."""
    modules = sorted(graph.modules)  # type: ignore[attr-defined]
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}  # type: ignore[attr-defined]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(modules)))

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for m in modules:
        if m not in index:
            visit(m)
    return groups


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles = import_cycles(graph)
    detail = []
    for group in cycles:
        members = set(group)
        links = [
            f"{a} -> {b}"
            for a in group
            for b in sorted(graph.find_modules_directly_imported_by(a))  # type: ignore[attr-defined]
            if b in members
        ]
        detail.append("  " + "; ".join(links))
    assert not cycles, "import cycles in src/biodl:\n" + "\n".join(detail)


def test_the_cycle_finder_finds_cycles() -> None:
    class Toy:
        modules = frozenset({"a", "b", "c", "d"})

        def find_modules_directly_imported_by(self, m: str) -> set[str]:
            return {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}[m]

    assert import_cycles(Toy()) == [["a", "b", "c"]]


def test_every_top_level_module_is_in_a_layer() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    top = {m for m in _graph().modules if m.count(".") == 1}  # type: ignore[attr-defined]
    missing = sorted(top - placed)
    assert not missing, f"top-level modules in no layer of [tool.importlinter] (pyproject.toml): {missing}"


def test_import_contracts_hold() -> None:
    """The [tool.importlinter] contracts (also run by ``make test``), so that ``pytest`` alone enforces them."""
    import shutil
    import subprocess

    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists() and shutil.which("lint-imports") is None:
        pytest.skip("lint-imports (import-linter, the dev extra) is not installed")
    res = subprocess.run(
        [str(exe) if exe.exists() else "lint-imports", "--no-logo", "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
