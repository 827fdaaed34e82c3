"""Resource bounds: memory of queued requests, and no cycles that keep connections alive.

- Memory: ``tests/support/queued_memory.py`` measures with tracemalloc what a queued
  request costs on asyncio and trio; here 10,000 of them must cost under
  4 KiB each beyond a bare parked task, and under 8 KiB all told.
- Cycles: with the garbage collector off, every connection object a pool made
  (and the protocol connection inside it) must be freed by reference
  counting alone once the pool and its responses are closed and dropped,
  whatever the requests went through: keep-alive, ``Connection: close``, a
  body closed half-read, a read timeout (plain and TLS), a refused connect, a
  raw ``OSError`` from a third-party backend. A cycle would keep sockets,
  buffers and parsers alive until some later collection; a failure prints the
  referrers that hold each survivor. (On CPython 3.12+ an exception converted
  inside a ``@contextmanager`` generator is such a cycle: see
  ``httpool._backends.trio._FailAt``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import types
import typing
import weakref
from collections.abc import Iterator

import pytest

import httpool
from httpool._async.interfaces import AsyncConnectionInterface
from httpool._backends.base import AsyncNetworkBackend, AsyncNetworkStream, NetworkBackend
from httpool._sync.interfaces import ConnectionInterface
from httpool._urls import Origin
from tests.support.http_server import HTTPServer
from tests.support.queued_memory import measure

HANG = {"timeout": {"read": 0.05}}
OPTIONS = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]


async def test_queued_request_memory() -> None:
    figures = await measure(10_000)
    # Measured without coverage: asyncio ~2.0 KB, trio ~2.8 KB beyond a bare
    # parked task; coverage's tracing adds about half as much again.
    assert figures.pool_share < 6144, figures
    assert figures.per_request < 12288, figures


class _Refs:
    """Weak references to every connection a pool made, and to what is inside."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[typing.Any]] = []

    def add(self, connection: object) -> None:
        self.refs.append(weakref.ref(connection))

    def add_inner(self) -> None:
        # The protocol connection exists once connected; take it while it does.
        for ref in list(self.refs):
            inner = getattr(ref(), "connection", None)
            if inner is not None and all(r() is not inner for r in self.refs):
                self.refs.append(weakref.ref(inner))


class RecordingPool(httpool.ConnectionPool):
    def __init__(self, refs: _Refs, **options: typing.Any) -> None:
        super().__init__(max_connections=4, **options)
        self._refs = refs

    def create_connection(self, origin: Origin) -> ConnectionInterface:
        connection = super().create_connection(origin)
        self._refs.add(connection)
        return connection


class AsyncRecordingPool(httpool.AsyncConnectionPool):
    def __init__(self, refs: _Refs, **options: typing.Any) -> None:
        super().__init__(max_connections=4, **options)
        self._refs = refs

    def create_connection(self, origin: Origin) -> AsyncConnectionInterface:
        connection = super().create_connection(origin)
        self._refs.add(connection)
        return connection


def _sync_traffic(refs: _Refs, url: str) -> None:
    with RecordingPool(refs) as pool:
        assert pool.request("GET", url + "/").status == 200
        refs.add_inner()
        with pool.stream("GET", url + "/bytes?size=500000") as response:
            next(iter(response.iter_stream()))
            refs.add_inner()
        with contextlib.suppress(httpool.ReadTimeout):
            pool.request("GET", url + "/hang", extensions=HANG)
        assert pool.request("GET", url + "/close").status == 200
        assert pool.request("POST", url + "/echo", content=b"x" * 100).status == 200
        refs.add_inner()


async def _async_traffic(refs: _Refs, url: str) -> None:
    async with AsyncRecordingPool(refs) as pool:
        assert (await pool.request("GET", url + "/")).status == 200
        refs.add_inner()
        async with pool.stream("GET", url + "/bytes?size=500000") as response:
            async for _ in response.aiter_stream():
                break
            refs.add_inner()
        with contextlib.suppress(httpool.ReadTimeout):
            await pool.request("GET", url + "/hang", extensions=HANG)
        assert (await pool.request("GET", url + "/close")).status == 200
        assert (await pool.request("POST", url + "/echo", content=b"x" * 100)).status == 200
        refs.add_inner()


@pytest.fixture
def gc_disabled() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_closed_connections_are_freed_without_the_collector(
    server: HTTPServer, runtime: str, gc_disabled: None
) -> None:
    refs = _Refs()
    if runtime == "sync":
        _sync_traffic(refs, server.url)
    elif runtime == "asyncio":
        asyncio.run(_async_traffic(refs, server.url))
    else:
        import trio

        trio.run(_async_traffic, refs, server.url)
    # Every connection made, and the HTTP/1.1 connection inside those still
    # open when looked at (the others closed inside their request).
    assert len(refs.refs) >= 6
    chains = [_referrer_chain(ref) for ref in refs.refs if ref() is not None]
    assert not chains, "\n".join(chains)


class _RawErrorBackend(NetworkBackend):
    """A third-party backend that raises plain ``OSError`` (httpool maps it)."""

    def connect_tcp(self, *args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:
        raise ConnectionRefusedError("refused by a third-party backend")


class _AsyncRawErrorBackend(AsyncNetworkBackend):
    async def connect_tcp(self, *args: typing.Any, **kwargs: typing.Any) -> AsyncNetworkStream:
        raise ConnectionRefusedError("refused by a third-party backend")


def _sync_failures(refs: _Refs, tls: HTTPServer, refused_url: str) -> None:
    with RecordingPool(refs, ssl_context=tls.client_ssl_context) as pool:
        with pytest.raises(httpool.ReadTimeout):
            pool.request("GET", tls.url + "/hang", extensions=HANG)
        with pytest.raises(httpool.ConnectError):
            pool.request("GET", refused_url)
    # Options make the backends build the socket (and its connect loop) by hand.
    with RecordingPool(refs, socket_options=OPTIONS) as pool, pytest.raises(httpool.ConnectError):
        pool.request("GET", refused_url)
    with (
        RecordingPool(refs, network_backend=_RawErrorBackend()) as pool,
        pytest.raises(httpool.ConnectError, match="third-party"),
    ):
        pool.request("GET", refused_url)


async def _async_failures(refs: _Refs, tls: HTTPServer, refused_url: str) -> None:
    async with AsyncRecordingPool(refs, ssl_context=tls.client_ssl_context) as pool:
        with pytest.raises(httpool.ReadTimeout):
            await pool.request("GET", tls.url + "/hang", extensions=HANG)
        with pytest.raises(httpool.ConnectError):
            await pool.request("GET", refused_url)
    async with AsyncRecordingPool(refs, socket_options=OPTIONS) as pool:
        with pytest.raises(httpool.ConnectError):
            await pool.request("GET", refused_url)
    async with AsyncRecordingPool(refs, network_backend=_AsyncRawErrorBackend()) as pool:
        with pytest.raises(httpool.ConnectError, match="third-party"):
            await pool.request("GET", refused_url)


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_failed_requests_free_their_connections_without_the_collector(
    tls_server: HTTPServer, runtime: str, gc_disabled: None
) -> None:
    refs = _Refs()
    with socket.socket() as unlistened:
        unlistened.bind(("127.0.0.1", 0))  # bound, not listening: connects are refused
        refused_url = f"http://127.0.0.1:{unlistened.getsockname()[1]}/"
        if runtime == "sync":
            _sync_failures(refs, tls_server, refused_url)
        elif runtime == "asyncio":
            asyncio.run(_async_failures(refs, tls_server, refused_url))
        else:
            import trio

            trio.run(_async_failures, refs, tls_server, refused_url)
    assert len(refs.refs) == 4
    chains = [_referrer_chain(ref) for ref in refs.refs if ref() is not None]
    assert not chains, "\n".join(chains)


def _referrer_chain(ref: weakref.ref[typing.Any], depth: int = 4) -> str:
    """What holds the survivor, as a chain of referrers (the first one that is
    not a frame at each step), for the failure message.

    Plain loops, no comprehensions: a comprehension that named the object
    would hold it in a closure cell and show up as its referrer.
    """
    current = ref()
    lines = [repr(current)]
    seen = {id(current), id(lines)}
    for level in range(depth):
        holder = None
        for candidate in gc.get_referrers(current):
            if candidate is current:
                lines.append("  " * (level + 1) + "<- itself (an attribute refers to it)")
            elif id(candidate) not in seen and not isinstance(candidate, types.FrameType):
                holder = candidate
                break
        if holder is None:
            break
        described = type(holder).__name__
        if isinstance(holder, dict):
            for key, value in holder.items():
                if value is current:
                    described += f" [{key!r}]"
                    break
        lines.append("  " * (level + 1) + "<- " + described)
        seen.add(id(holder))
        current = holder
    return "\n".join(lines)


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_httpx_errors_free_their_connections_without_the_collector(
    tls_server: HTTPServer, runtime: str, gc_disabled: None
) -> None:
    """A request that fails through the httpx transport (its error converted to
    httpx's) leaves no cycle holding its connection: the TLS stream it opened
    is freed by reference counting."""
    import httpx

    import httpool.httpx

    streams: list[weakref.ref[typing.Any]] = []

    def record(name: str, info: dict[str, typing.Any]) -> None:
        if name == "connection.start_tls.complete":
            streams.append(weakref.ref(info["return_value"]))

    async def arecord(name: str, info: dict[str, typing.Any]) -> None:
        record(name, info)

    url = tls_server.url + "/hang"
    # Only the read times out: a loaded machine may take longer than that to connect.
    timeout = httpx.Timeout(30.0, read=0.05)
    verify = tls_server.client_ssl_context
    assert verify is not None
    if runtime == "sync":
        transport = httpool.httpx.HTTPTransport(verify=verify)
        with httpx.Client(transport=transport) as client, pytest.raises(httpx.ReadTimeout):
            client.get(url, timeout=timeout, extensions={"trace": record})
    else:

        async def main() -> None:
            transport = httpool.httpx.AsyncHTTPTransport(verify=verify)
            async with httpx.AsyncClient(transport=transport) as client:
                with pytest.raises(httpx.ReadTimeout):
                    await client.get(url, timeout=timeout, extensions={"trace": arecord})

        if runtime == "asyncio":
            asyncio.run(main())
        else:
            import trio

            trio.run(main)
    assert len(streams) == 1
    chains = [_referrer_chain(ref) for ref in streams if ref() is not None]
    assert not chains, "\n".join(chains)
