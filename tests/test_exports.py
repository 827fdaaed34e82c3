"""The public surface: ``httpool.__all__`` is exactly what the package exposes."""

from __future__ import annotations
import __future__

import subprocess
import sys
import textwrap
import types
from pathlib import Path

import httpool

ROOT = Path(__file__).resolve().parent.parent


def _public_names() -> set[str]:
    return {
        name
        for name in dir(httpool)
        if not name.startswith("_")
        and not isinstance(getattr(httpool, name), types.ModuleType | __future__._Feature)
    }


def test_all_lists_every_public_name() -> None:
    assert len(httpool.__all__) == len(set(httpool.__all__)), "duplicates in __all__"
    assert set(httpool.__all__) == _public_names()


def test_every_name_in_all_resolves() -> None:
    for name in httpool.__all__:
        assert getattr(httpool, name) is not None, name


def test_import_needs_neither_trio_nor_h2() -> None:
    # A None entry in sys.modules makes any import of that name fail, as if
    # the package were not installed.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["trio"] = None
        sys.modules["h2"] = None
        import httpool
        pool = httpool.ConnectionPool()
        pool.close()
        assert sys.modules["trio"] is None and sys.modules["h2"] is None
        print("ok")
        """
    )
    command = [sys.executable, "-c", code]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
