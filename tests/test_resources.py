"""Resource bounds: memory of queued requests, and no cycles that keep connections alive.

- Memory: ``scripts/queued_memory.py`` measures with tracemalloc what a queued
  request costs on asyncio and trio; here 10,000 of them must cost under
  4 KiB each beyond a bare parked task, and under 8 KiB all told.
- Cycles: with the garbage collector off, every connection object a pool made
  (and the protocol connection inside it) must be freed by reference
  counting alone once the pool and its responses are closed and dropped,
  whatever the requests went through: keep-alive, ``Connection: close``, a
  body closed half-read, a read timeout. A cycle would keep sockets, buffers
  and parsers alive until some later collection; a failure prints the
  referrers that hold each survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import types
import typing
import weakref
from collections.abc import Iterator

import pytest

import httpool
from httpool._async.interfaces import AsyncConnectionInterface
from httpool._models import Origin
from httpool._sync.interfaces import ConnectionInterface
from scripts.queued_memory import measure
from tests.support.http_server import HTTPServer, server

__all__ = ["server"]

HANG = {"timeout": {"read": 0.05}}


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
    def __init__(self, refs: _Refs) -> None:
        super().__init__(max_connections=4)
        self._refs = refs

    def create_connection(self, origin: Origin) -> ConnectionInterface:
        connection = super().create_connection(origin)
        self._refs.add(connection)
        return connection


class AsyncRecordingPool(httpool.AsyncConnectionPool):
    def __init__(self, refs: _Refs) -> None:
        super().__init__(max_connections=4)
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
