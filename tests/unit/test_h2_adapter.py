"""h2's and hpack's internals are reached from ``httpool/_h2.py`` only.

The adapter is pinned to the h2 versions it was written against
(pyproject.toml); any other module reaching a private name of h2, hpack or
hyperframe would escape that pin unnoticed. The private names are read from
the installed packages' source, so the check follows the h2 being tested.
"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "httpool"
ADAPTER = PACKAGE / "_h2.py"
DEPENDENCIES = ("h2", "hpack", "hyperframe")
# Modules of h2 that are internals although their names are not marked so.
PRIVATE_MODULES = frozenset({"h2.frame_buffer"})


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def private_names() -> frozenset[str]:
    """Every private name that h2, hpack and hyperframe define or assign."""
    names: set[str] = set()
    for dependency in DEPENDENCIES:
        root = pathlib.Path(importlib.import_module(dependency).__file__ or "").parent
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
    return frozenset(name for name in names if _is_private(name))


def _from_dependency(module: str) -> bool:
    return module.split(".")[0] in DEPENDENCIES


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def violations(source: str, private: frozenset[str]) -> list[str]:
    """Where ``source`` reaches an internal of h2, hpack or hyperframe."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if _from_dependency(alias.name) and (
                    alias.name in PRIVATE_MODULES or any(map(_is_private, parts))
                ):
                    found.append(f"line {line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and _from_dependency(node.module):
            parts = node.module.split(".")
            if node.module in PRIVATE_MODULES or any(map(_is_private, parts)):
                found.append(f"line {line}: from {node.module} import ...")
            for alias in node.names:
                qualified = f"{node.module}.{alias.name}"
                if _is_private(alias.name) or qualified in PRIVATE_MODULES:
                    found.append(f"line {line}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Attribute):
            root = _root_name(node)
            if node.attr in private or (
                root in DEPENDENCIES and (_is_private(node.attr) or node.attr == "frame_buffer")
            ):
                found.append(f"line {line}: .{node.attr}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in private:
            found.append(f"line {line}: def {node.name} (overrides an h2 internal)")
    return found


@pytest.fixture(scope="module")
def private() -> frozenset[str]:
    return private_names()


def test_only_the_adapter_touches_h2_internals(private: frozenset[str]) -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == ADAPTER:
            continue
        found = violations(path.read_text(encoding="utf-8"), private)
        if found:
            offenders[str(path.relative_to(PACKAGE.parent))] = found
    assert offenders == {}


def test_the_adapter_is_where_they_are(private: frozenset[str]) -> None:
    # The check sees what it is looking for: the adapter itself is caught.
    found = violations(ADAPTER.read_text(encoding="utf-8"), private)
    assert any("_receive_goaway_frame" in place for place in found)
    assert any("h2.frame_buffer" in place for place in found)
    assert any("._data_to_send" in place for place in found)


@pytest.mark.parametrize(
    "source",
    [
        "import h2.frame_buffer",
        "from h2.frame_buffer import FrameBuffer",
        "from h2 import frame_buffer",
        "from h2.connection import _decode_headers",
        "import h2.connection\nh2.connection._something",
        "def f(c):\n    return c._data_to_send",
        "class C:\n    def _receive_frame(self, frame):\n        return frame",
    ],
)
def test_each_way_of_reaching_an_internal_is_caught(source: str, private: frozenset[str]) -> None:
    assert violations(source, private) != []


def test_public_use_is_not_flagged(private: frozenset[str]) -> None:
    source = (
        "import h2.events\nimport h2.exceptions\n"
        "def f(c, e):\n"
        "    c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)\n"
        "    return isinstance(e, h2.events.DataReceived), c.streams, self._h2\n"
    )
    assert violations(source, private) == []
