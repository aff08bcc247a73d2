"""The house rules, read from the source (AST, nothing imported): the core never imports a plugin, and
the ``panfw`` modules import each other without cycles.

Import edges go to the module named: ``import panfw.a.b`` and ``from panfw.a import b`` (b a submodule)
point at ``panfw.a.b``, ``from panfw.a import name`` at ``panfw.a``; the parent packages Python
initialises on the way are not counted as edges. Imports under ``if TYPE_CHECKING:`` are not run and
are left out. Module-level imports (class bodies and ``try`` blocks included) run when a module is
imported; imports inside functions run later, so they are reported in a graph of their own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "panfw"


@attrs.frozen
class Import:
    source: str       # importing module, dotted
    target: str       # imported module, dotted (as written, made absolute)
    names: tuple      # for ``from X import a, b``: ("a", "b"); else ()
    line: int
    local: bool       # inside a function body
    path: Path


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, local: bool) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under ``node`` with whether it sits in a function body; TYPE_CHECKING blocks skipped."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                yield other, local
                yield from _walk(other, local)
            continue
        inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield child, local
        yield from _walk(child, inner)


def imports_of(path: Path, source: str | None = None) -> list[Import]:
    """Every import statement in one file (module ``source``, by default from its path), absolute targets."""
    source = source or module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node, local in _walk(tree, False):
        if isinstance(node, ast.Import):
            out += [Import(source, a.name, (), node.lineno, local, path) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append(Import(source, target, tuple(a.name for a in node.names), node.lineno, local, path))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            out.append(Import(source, node.args[0].value, (), node.lineno, local, path))
    return out


def _where(imp: Import) -> str:
    scope = "in a function" if imp.local else "module level"
    what = f"from {imp.target} import {', '.join(imp.names)}" if imp.names else f"import {imp.target}"
    return f"{imp.path.relative_to(ROOT)}:{imp.line} ({scope}): {what}"


def test_core_never_imports_a_plugin():
    bad = [_where(i) for p in core_files() for i in imports_of(p)
           if i.target.split(".")[0].startswith("panfw_")]
    assert not bad, "the core imports plugins (move the service into panfw/ or call it through a hook):\n" + \
        "\n".join(bad)


def _graph(local: bool | None) -> dict[str, dict[str, Import]]:
    """Edges between panfw modules: ``local`` False = module-level only, True = function-level only,
    None = all. graph[a][b] is the first import of b by a."""
    modules = {module_name(p) for p in core_files()}
    graph: dict[str, dict[str, Import]] = {m: {} for m in modules}
    for p in core_files():
        for imp in imports_of(p):
            if local is not None and imp.local != local:
                continue
            targets = [f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in modules]
            if imp.target in modules and (not imp.names or len(targets) < len(imp.names)):
                targets.append(imp.target)
            for t in targets:
                if t != imp.source:
                    graph[imp.source].setdefault(t, imp)
    return graph


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One shortest cycle through each strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan; recursion depth is bounded by the ~100 core modules
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    cycles = []
    for comp in comps:
        members, start = set(comp), comp[0]
        # breadth-first from start back to start inside the component
        prev: dict[str, str] = {}
        frontier, seen, found = [start], {start}, None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w == start:
                        found = v
                        break
                    if w in members and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [found]
        while path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append([*reversed(path), start])
    return cycles


def _report(graph: dict[str, dict[str, Import]], cycles: list[list[str]]) -> str:
    lines = []
    for cyc in cycles:
        lines.append(" -> ".join(cyc))
        lines += [f"    {_where(graph[a][b])}" for a, b in zip(cyc, cyc[1:])]
    return "\n".join(lines)


@pytest.mark.parametrize("scope", ["module-level", "all"])
def test_no_import_cycles_among_panfw_modules(scope):
    graph = _graph(False if scope == "module-level" else None)
    cycles = _cycles(graph)
    assert not cycles, f"import cycles among panfw modules ({scope} imports):\n" + _report(graph, cycles)


def test_the_checks_see_what_they_check(tmp_path):
    """The walker finds function-local, relative and import_module imports and skips TYPE_CHECKING;
    the cycle finder finds a cycle and leaves a tail out."""
    src = tmp_path / "m.py"
    src.write_text("import os\nfrom . import sibling\nif TYPE_CHECKING:\n    import panfw_a\n"
                   "class C:\n    import panfw_d\n"
                   "def f():\n    from panfw_b import x\n    importlib.import_module('panfw_c')\n")
    found = {(i.target, i.local) for i in imports_of(src, "panfw.pkg.m")}
    assert found == {("os", False), ("panfw.pkg", False), ("panfw_d", False), ("panfw_b", True),
                     ("panfw_c", True)}
    graph = {"a": {"b": None}, "b": {"c": None}, "c": {"a": None}, "d": {"a": None}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
