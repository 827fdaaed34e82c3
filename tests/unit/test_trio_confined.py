"""The library touches trio in one module, ``httpool/_backends/trio.py``.

Every other module that needs trio (locks, events, shields and Ctrl-C
protection in ``_synchronization.py``, name resolution, the mock backend)
goes through ``_synchronization.trio_runtime()``. The load generator is an
application of the library, running trio as any program would, and may
import it.
"""

from __future__ import annotations

import ast
import pathlib
import ssl

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "httpool"
RUNTIME = PACKAGE / "_backends" / "trio.py"


def _is_tool(path: pathlib.Path) -> bool:
    relative = path.relative_to(PACKAGE).as_posix()
    return relative.startswith("_bench/")


def trio_imports(source: str) -> list[int]:
    """The lines of ``source`` that import trio or one of its modules."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        if any(module.partition(".")[0] == "trio" for module in modules):
            lines.append(node.lineno)
    return lines


def test_only_the_trio_backend_imports_trio() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != RUNTIME and not _is_tool(path)
        for line in trio_imports(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "trio imported outside httpool/_backends/trio.py:\n" + "\n".join(found)
    assert trio_imports(RUNTIME.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "source",
    [
        "import trio\n",
        "def f():\n    import trio.lowlevel\n",
        "from trio import socket\n",
        "from trio.lowlevel import current_task\n",
    ],
)
def test_each_kind_of_import_is_caught(source: str) -> None:
    assert trio_imports(source)


def test_relative_imports_are_not_trio() -> None:
    assert trio_imports("from ._backends import trio\nfrom .trio import TrioBackend\n") == []


def test_the_trio_internals_the_backend_reads_exist() -> None:
    # _backends/trio.py reads two private attributes of trio.SSLStream: the
    # ssl object behind ``extra_info("ssl_object")`` and the incoming BIO whose
    # buffered records the liveness probe must see. The pin in pyproject.toml
    # stops at the newest trio tested; this fails first when trio renames them.
    trio = pytest.importorskip("trio")
    testing = pytest.importorskip("trio.testing")
    left, _ = testing.memory_stream_pair()
    stream = trio.SSLStream(left, ssl.create_default_context(), server_hostname="example.com")
    assert isinstance(stream._ssl_object, ssl.SSLObject)
    assert stream._incoming.pending == 0
