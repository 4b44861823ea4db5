"""The layers import downward only (ARCHITECTURE.md, "Layers"), with no cycle, and a trial starts light.

pipelines (the `study` CLI at the top) -> katib -> components; components/core imports nothing of the
project; katib/backends/local (a general Katib emulator) imports only components/core. Every import
counts, also one inside a function: it runs as soon as that function does.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("components", "katib", "pipelines")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in: the longest prefix that is a module."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # "from a import b" names the module a.b when b is one, else a name inside a.
                targets = [f"{source}.{a.name}" for a in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != name:
                    edges.add(resolved)
        graph[name] = edges
    return graph


def _layer(module: str) -> tuple[int, str]:
    if module.startswith("components.core"):
        return 0, "components/core"
    if module.startswith("components"):
        return 1, "components"
    if module.startswith("katib"):
        return 2, "katib"
    return 3, "pipelines"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} -> {b} ({_layer(a)[1]} may not import {_layer(b)[1]})"
            for a, targets in sorted(graph.items()) for b in sorted(targets) if _layer(b)[0] > _layer(a)[0]]


def test_imports_go_downward_only():
    assert upward_imports(import_graph()) == []


def test_an_upward_import_is_found():
    """The check can fail: core -> components, components -> katib and katib -> pipelines are each found."""
    graph = {"components.core.storage": {"components.data"}, "components.data": {"katib.sweep", "components.core"},
             "katib.sweep": {"pipelines.cli", "components.data"}, "pipelines.cli": {"katib.sweep"}}
    assert upward_imports(graph) == [
        "components.core.storage -> components.data (components/core may not import components)",
        "components.data -> katib.sweep (components may not import katib)",
        "katib.sweep -> pipelines.cli (katib may not import pipelines)"]


def test_the_local_katib_backend_needs_only_core():
    graph = import_graph()
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    outside = [f"{a} -> {b}" for a, targets in graph.items() if inside(a, "katib.backends.local")
               for b in sorted(targets)
               if not (inside(b, "katib.backends.local") or inside(b, "components.core"))]
    assert outside == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ that re-exports its own submodules is not a cycle: drop the edges from a
    submodule to its own package's __init__ (Python resolves them while the package is importing)."""
    return {a: {b for b in targets if not a.startswith(b + ".")} for a, targets in graph.items()}


def test_no_import_cycles():
    assert _cycles(_without_package_inits(import_graph())) == []


def test_the_cycle_check_finds_a_cycle():
    """The check itself can fail: a two-module loop and a three-module loop are both found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}) == [
        ["a", "b"], ["c", "d", "e"]]


# ARCHITECTURE.md: "No source file is over about 400 lines."
MAX_LINES = 420


def test_no_source_file_is_over_about_400_lines():
    sources = [p for pkg in (*PACKAGES, "bench") for p in (REPO / pkg).rglob("*.py")]
    long = {str(p.relative_to(REPO)): n for p in sources if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("command", ["train"])
def test_a_trial_imports_only_core_and_cnn(command):
    """What `study train` (every Katib trial) loads of the project: the CLI, core and cnn, nothing else."""
    code = ("import sys\n"
            "from pipelines.cli import build_parser\n"
            f"args = build_parser({command!r}).parse_args([{command!r}, '--data', 'd', '--output', 'o'])\n"
            "import components.cnn.train\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{PACKAGES!r})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    loaded = out.split()
    assert "components.cnn.train" in loaded
    others = [m for m in loaded if not m.startswith(("components.core", "components.cnn"))
              and m not in ("components", "pipelines", "pipelines.cli")]
    assert others == []
