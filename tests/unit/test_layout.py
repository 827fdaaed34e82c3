"""The shape of the package, checked: what ARCHITECTURE.md promises.

- every hand-written module is at most 600 lines (the generated ``_sync``
  twins follow their sources);
- no import circle among httpool's modules at run time. Imports under
  ``TYPE_CHECKING`` are for the type checker only and do not count; nor does a
  function's import of a module that needs an optional dependency (h2, trio,
  socksio): that import is how ``import httpool`` works without them.

The dependencies' private names are checked by their own tests, one per
adapter: ``test_h11_adapter.py``, ``test_h2_adapter.py``, ``test_trio_confined.py``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "httpool"
MAX_LINES = 600


def _modules() -> dict[str, pathlib.Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()
HAND_WRITTEN = {name: path for name, path in MODULES.items() if "._sync" not in name}


OPTIONAL = frozenset({"h2", "hpack", "trio", "socksio"})


def _needs_optional(path: pathlib.Path) -> bool:
    """Whether the module imports an optional dependency when it is imported."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] in OPTIONAL for name in names):
            return True
    return False


def _runtime_imports(name: str, path: pathlib.Path) -> set[str]:
    """The httpool modules that ``name`` imports when it runs."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    in_function = False

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for statement in node.orelse:
                    self.visit(statement)
            else:
                self.generic_visit(node)

        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            nonlocal in_function
            outer, in_function = in_function, True
            self.generic_visit(node)
            in_function = outer

        visit_AsyncFunctionDef = visit_FunctionDef

        def _add(self, module: str) -> None:
            if not (in_function and _needs_optional(MODULES[module])):
                found.add(module)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    self._add(f"{target}.{alias.name}")
                elif target in MODULES:
                    self._add(target)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                if alias.name in MODULES:
                    self._add(alias.name)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return cycles


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_modules_are_small(name: str) -> None:
    lines = HAND_WRITTEN[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_no_import_circle() -> None:
    graph = {name: _runtime_imports(name, path) for name, path in MODULES.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
