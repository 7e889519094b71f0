"""The import graph of ``src/cucmconn``: no cycles, none dodged by an import inside a function.

The graph is read statically (``ast`` for ``.py``, the import lines of the Cython ``.pyx``), so
the check sees imports that a test run would never execute.  An edge ``M -> T`` means "running
M's body imports T".  Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``, so those
are edges too, except the packages that contain M (already being imported when M runs).

Two graphs are checked:
- the module-level one (what ``import`` really executes) must be acyclic;
- with the imports inside functions added, it must still be acyclic: a function-level import
  that closes a cycle is only hiding one.  Function-level imports that close no cycle (loading
  an optional extra, or a transport only when its URL is used) are fine.
``TYPE_CHECKING`` blocks are not run, so they are left out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import cucmconn

SRC = Path(cucmconn.__file__).resolve().parent
PACKAGE = "cucmconn"

Edge = tuple[str, str]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(SRC.rglob("*.py")) + sorted(SRC.rglob("*.pyx")):
        found.setdefault(_module_name(path), path)
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _targets(importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The cucmconn modules an import statement runs (submodules named in ``from`` included)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                yield alias.name
        return
    target = _resolve(importer, node.level, node.module)
    if target.split(".")[0] != PACKAGE:
        return
    submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
    if len(submodules) < len(node.names):  # a name defined by target itself: its body must run
        yield target
    yield from submodules


def _with_packages(importer: str, target: str) -> Iterator[str]:
    """``target`` and the packages above it that are not already being imported."""
    parts = target.split(".")
    own = set(_ancestors(importer))
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name in MODULES and (name == target or name not in own):
            yield name


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _py_imports(name: str, tree: ast.Module) -> tuple[set[Edge], set[Edge]]:
    top: set[Edge] = set()
    inner: set[Edge] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for branch in node.orelse:
                visit(branch, in_function)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(name, node):
                for dep in _with_packages(name, target):
                    if dep != name:
                        (inner if in_function else top).add((name, dep))
            return
        function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        nested = in_function or isinstance(node, function)
        for child in ast.iter_child_nodes(node):
            visit(child, nested)

    visit(tree, False)
    return top, inner


_PYX_IMPORT = re.compile(
    r"^[ \t]*(?:from|c?import)[ \t]+(cucmconn[\w.]*)(?:[ \t]+c?import[ \t]+(.*))?$", re.MULTILINE
)


def _pyx_imports(name: str, text: str) -> set[Edge]:
    """Every cucmconn import line of a ``.pyx``, counted as module-level (the cautious reading)."""
    edges: set[Edge] = set()
    for match in _PYX_IMPORT.finditer(text):
        target, names = match.group(1), (match.group(2) or "").strip("( ")
        # names on the line itself; a parenthesised list below it is read as "names of target"
        aliases = [ast.alias(n.split()[0]) for n in names.split(",") if n.strip()]
        node = ast.ImportFrom(module=target, names=aliases, level=0)
        for module in _targets(name, node) if aliases else [target]:
            for dep in _with_packages(name, module):
                if dep != name:
                    edges.add((name, dep))
    return edges


def _graph() -> tuple[set[Edge], set[Edge]]:
    top: set[Edge] = set()
    inner: set[Edge] = set()
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".pyx":
            top |= _pyx_imports(name, text)
        else:
            module_top, module_inner = _py_imports(name, ast.parse(text, str(path)))
            top |= module_top
            inner |= module_inner
    return top, inner


def _cycles(edges: set[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for src, dst in edges:
        graph.setdefault(src, []).append(dst)
        graph.setdefault(dst, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


TOP, INNER = _graph()


def test_the_graph_is_read() -> None:
    """Guard the reader itself: edges it must see, including the Cython ones."""
    assert ("cucmconn.codec._pyevents", "cucmconn.errors") in TOP
    assert ("cucmconn.codec._cstomp", "cucmconn.codec._pystomp") in TOP
    assert ("cucmconn.client.client", "cucmconn.codec") in TOP
    assert ("cucmconn.client.loop", "cucmconn.client") not in TOP  # its own package: not an edge
    assert any(src == "cucmconn.transport" for src, _ in INNER)  # open_transport's lazy imports


def test_module_level_imports_have_no_cycle() -> None:
    assert _cycles(TOP) == []


def test_no_function_level_import_hides_a_cycle() -> None:
    cycles = _cycles(TOP | INNER)
    assert cycles == [], f"function-level imports close these import cycles: {cycles}"


def test_cycle_finder_finds_one() -> None:
    assert _cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]


def test_errors_sit_at_the_bottom() -> None:
    """errors.py imports only its data table; errorcodes.py imports nothing from cucmconn."""
    below = {"cucmconn.errors": {"cucmconn.errorcodes"}, "cucmconn.errorcodes": set()}
    for module, allowed in below.items():
        deps = {dst for src, dst in TOP | INNER if src == module} - {PACKAGE}
        assert deps == allowed, module
