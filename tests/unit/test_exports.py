"""The public surface: ``httpool.__all__`` is exactly what the package exposes."""

from __future__ import annotations
import __future__

import pickle
import subprocess
import sys
import textwrap
import traceback
import types
from pathlib import Path

import httpool

ROOT = Path(__file__).resolve().parents[2]


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


def test_names_ported_httpcore_code_expects() -> None:
    from httpool._backends import asyncio, auto, base, sync, trio
    from httpool._sync import http2

    assert httpool.SOCKET_OPTION is base.SOCKET_OPTION
    assert httpool.AsyncIOBackend is asyncio.AsyncIOBackend
    assert httpool.TrioBackend is trio.TrioBackend
    assert httpool.SyncBackend is sync.SyncBackend
    assert httpool.AutoBackend is auto.AutoBackend
    assert httpool.HTTP2Connection is http2.HTTP2Connection
    assert httpool.AsyncHTTP2Connection.__name__ == "AsyncHTTP2Connection"
    # http2 positionally, as httpcore's mock classes take it.
    for mock in (httpool.MockBackend([], True), httpool.AsyncMockBackend([], True)):
        assert mock._http2
    for stream in (httpool.MockStream([], True), httpool.AsyncMockStream([], True)):
        assert stream.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"


def test_lazy_names_without_their_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["h2"] = None
        import httpool
        try:
            httpool.HTTP2Connection
        except ImportError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "pip install httpool[http2]" in done.stdout, done.stderr


# A type alias (a union of tuples): neither a class nor a function, no module of its own.
_ALIASES = {"SOCKET_OPTION"}


def test_every_public_name_shows_as_httpool() -> None:
    # As httpcore and trio do: reprs, tracebacks and pickles name httpool.X,
    # not the private module that defines it (the lazy names included).
    for name in httpool.__all__:
        value = getattr(httpool, name)
        if name in _ALIASES:
            assert not isinstance(value, (type, types.FunctionType)), name
            continue
        assert value.__module__ == "httpool", name
        assert value.__qualname__ == name, name
        assert pickle.loads(pickle.dumps(value)) is value, name
    assert repr(httpool.ConnectionPool).startswith("<class 'httpool.ConnectionPool'")


def test_exceptions_pickle_and_show_as_httpool() -> None:
    values = [getattr(httpool, name) for name in httpool.__all__]
    errors = [v for v in values if isinstance(v, type) and issubclass(v, BaseException)]
    assert httpool.ConnectError in errors and httpool.HttpoolError in errors
    for cls in errors:
        copy = pickle.loads(pickle.dumps(cls("boom")))
        assert type(copy) is cls and copy.args == ("boom",)
    shown = traceback.format_exception_only(httpool.ConnectError, httpool.ConnectError("refused"))
    assert shown == ["httpool.ConnectError: refused\n"]


def test_httpx_transports_keep_their_module() -> None:
    import httpool.httpx

    for name in httpool.httpx.__all__:
        assert getattr(httpool.httpx, name).__module__ == "httpool.httpx", name
