"""h11's internals are used in one module, ``httpool/_h11.py``, and nowhere else.

Theory of operation: the pin on h11 in pyproject.toml is only as good as the
list of what httpool relies on, and that list is ``_h11.py``. These tests read
the source of every other module in ``httpool/`` (generated ``_sync`` code
included) with ``ast`` and fail on: an import of h11 anywhere but ``_h11.py``
and ``_exceptions.py`` (which maps h11's public error types), an import of
one of h11's private modules or names, ``h11._name``, and the use of a private
name that h11 defines (an attribute such as ``_full_items``, a keyword such as
``_parsed=``) as an attribute of something other than ``self`` or as a keyword
argument. Private names that httpool also defines for itself are not h11's to
police (a class deriving from one of h11's would have to import h11 anyway).
"""

from __future__ import annotations

import ast
import pathlib

import h11
import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "httpool"
ADAPTER = PACKAGE / "_h11.py"
MAY_IMPORT_H11 = {ADAPTER, PACKAGE / "_exceptions.py"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_names(path: pathlib.Path) -> set[str]:
    """Every private name ``path`` defines: functions, classes, attributes
    assigned, parameters, and the module's own name."""
    names = {path.stem} if _private(path.stem) else set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {name for name in names if _private(name)}


def _h11_private_names() -> set[str]:
    names: set[str] = set()
    for path in pathlib.Path(h11.__file__).parent.rglob("*.py"):
        if "tests" not in path.parts:
            names |= _defined_names(path)
    return names


def _modules() -> list[pathlib.Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path != ADAPTER)


def violations(source: str, path: pathlib.Path, h11_private: set[str], own: set[str]) -> list[str]:
    """What in ``source``, the text of ``path``, reaches past h11's public API
    (or imports h11 at all, outside the modules allowed to)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top == "h11" and (rest or path not in MAY_IMPORT_H11):
                    found.append(f"{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.partition(".")[0] == "h11":
                names = ", ".join(alias.name for alias in node.names)
                if (
                    path not in MAY_IMPORT_H11
                    or node.module != "h11"
                    or any(_private(alias.name) for alias in node.names)
                ):
                    found.append(f"{line}: from {node.module} import {names}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id == "h11":
                found.append(f"{line}: h11.{node.attr}")
            elif isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue  # a class's own (one deriving from h11's has to import it)
            elif node.attr in h11_private and node.attr not in own:
                found.append(f"{line}: .{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg in h11_private and node.arg not in own:
            found.append(f"{line}: {node.arg}=")
    return found


def test_only_the_adapter_touches_h11_internals() -> None:
    h11_private = _h11_private_names()
    own: set[str] = set()
    for path in _modules():
        own |= _defined_names(path)
    found = [
        v
        for path in _modules()
        for v in violations(path.read_text(encoding="utf-8"), path, h11_private, own)
    ]
    assert found == [], "h11 internals outside httpool/_h11.py:\n" + "\n".join(found)


def test_the_adapter_is_what_uses_them() -> None:
    # The check sees what it is meant to see: the adapter itself fails it.
    found = violations(ADAPTER.read_text(encoding="utf-8"), ADAPTER, _h11_private_names(), set())
    assert any("from h11._headers import Headers" in v for v in found)
    assert any(v.endswith(": ._full_items") for v in found)
    assert any(v.endswith(": _parsed=") for v in found)


@pytest.mark.parametrize(
    "source",
    [
        "import h11\n",
        "from h11 import Connection\n",
        "import h11._headers\n",
        "def f(event):\n    return event.headers._full_items\n",
        "def f(h11):\n    return h11.Request(method=b'GET', headers=[], _parsed=True)\n",
    ],
)
def test_each_kind_of_reach_is_caught(source: str) -> None:
    # As if it were a module of the package (none is written).
    path = PACKAGE / "_async" / "example.py"
    assert violations(source, path, _h11_private_names(), set()), source
