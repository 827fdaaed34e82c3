"""Cancellation at every await on a request's path leaves the pool intact.

Async only (threads cannot be cancelled); each test runs on asyncio and trio.
A wrapper backend stalls at the k-th await of the request (connect, write,
each read), the request is cancelled there, and then the pool's invariants
must hold and the next request must succeed.
"""

from __future__ import annotations

import asyncio
import typing

import pytest

import httpool
from httpool import AsyncConnectionPool, AsyncMockBackend
from httpool._backends.base import AsyncNetworkBackend, AsyncNetworkStream
from httpool._backends.default import async_default_backend
from httpool._synchronization import AsyncEvent, current_async_library
from tests.support.concurrency import AsyncTaskGroup, cancel_after
from tests.support.h2_server import H2Server

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!"
# For the HTTP/2 writer tests: a write timeout is what lets trio finish a frame.
TIMEOUTS = {"timeout": {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}}


async def _stall() -> None:
    if current_async_library() == "trio":
        import trio

        await trio.sleep(3600)
    else:
        await asyncio.sleep(3600)


class StallingBackend(AsyncNetworkBackend):
    """Counts awaits on the network; the ``stall_at``-th one never returns."""

    def __init__(self, inner: AsyncNetworkBackend) -> None:
        self.inner = inner
        self.awaits = 0
        self.stall_at = -1

    async def step(self) -> None:
        self.awaits += 1
        if self.awaits == self.stall_at:
            await _stall()

    async def connect_tcp(self, *args: typing.Any, **kwargs: typing.Any) -> AsyncNetworkStream:
        await self.step()
        return StallingStream(await self.inner.connect_tcp(*args, **kwargs), self)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)

    def now(self) -> float:
        return self.inner.now()


class PassThroughStream(AsyncNetworkStream):
    """Hands every call to ``inner``; the wrappers below change what they need."""

    def __init__(self, inner: AsyncNetworkStream) -> None:
        self.inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def get_extra_info(self, info: str) -> typing.Any:
        return self.inner.get_extra_info(info)


class StallingStream(PassThroughStream):
    def __init__(self, inner: AsyncNetworkStream, backend: StallingBackend) -> None:
        super().__init__(inner)
        self.backend = backend

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self.backend.step()
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.backend.step()
        await self.inner.write(buffer, timeout)


async def _cancel_at_every_await(warm: bool) -> None:
    backend = StallingBackend(AsyncMockBackend(reply=OK))
    k = 1
    while True:
        async with AsyncConnectionPool(network_backend=backend, max_connections=2) as pool:
            if warm:
                await pool.request("GET", "http://example.com/")
            backend.awaits = 0
            backend.stall_at = k

            async def fetch(pool: AsyncConnectionPool = pool) -> None:
                await pool.request("GET", "http://example.com/")

            cancelled = await cancel_after(0.05, fetch)
            pool.check_invariants()
            stats = pool.stats()
            assert stats.streams_in_use == 0 and stats.queued == 0, (k, stats)
            backend.stall_at = -1
            response = await pool.request("GET", "http://example.com/")
            assert response.content == b"Hello, world!"
            pool.check_invariants()
        if not cancelled:
            # connect (when new), write and read were all cancellation points
            assert k >= (3 if warm else 4), k
            return
        k += 1


async def test_cancel_at_every_await_on_a_new_connection() -> None:
    await _cancel_at_every_await(warm=False)


async def test_cancel_at_every_await_on_a_reused_connection() -> None:
    await _cancel_at_every_await(warm=True)


async def test_cancel_while_waiting_leaves_no_reservation() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend, max_connections=1) as pool:
        async with pool.stream("GET", "http://example.com/") as held:

            async def waiting() -> None:
                await pool.request("GET", "http://example.com/")

            assert await cancel_after(0.02, waiting)
            assert pool.stats().queued == 0
            await held.aread()
        pool.check_invariants()
        assert pool.stats().idle == 1
        assert (await pool.request("GET", "http://example.com/")).status == 200
        assert backend.connects == 1


async def test_many_cancelled_waiters_then_full_service() -> None:
    backend = AsyncMockBackend(reply=OK)
    done: list[int] = []
    async with AsyncConnectionPool(network_backend=backend, max_connections=2) as pool:

        async def maybe_cancelled(i: int) -> None:
            async def fetch() -> None:
                await pool.request("GET", f"http://host{i % 3}.test/")
                done.append(i)

            await cancel_after(0.0 if i % 2 else 5.0, fetch)

        async with AsyncTaskGroup() as group:
            for i in range(50):
                group.start_soon(maybe_cancelled, i)
        pool.check_invariants()
        stats = pool.stats()
        assert stats.queued == 0 and stats.streams_in_use == 0
        assert all(i in done for i in range(0, 50, 2))


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_http2_cancel_at_every_await(h2_server: H2Server, method: str) -> None:
    """The same walk over a real HTTP/2 connection: preface, SETTINGS, HEADERS,
    body, response. A cancelled write may break the connection; the next
    request then gets a new one, and nothing is left reserved."""
    backend = StallingBackend(async_default_backend())
    content = b"x" * 100_000 if method == "POST" else None
    url = h2_server.url + "/echo"
    k = 1
    while True:
        async with AsyncConnectionPool(
            network_backend=backend, http1=False, http2=True, max_connections=2
        ) as pool:
            await pool.request("GET", h2_server.url + "/")
            backend.awaits = 0
            backend.stall_at = k

            async def fetch(pool: AsyncConnectionPool = pool) -> None:
                await pool.request(method, url, content=content)

            cancelled = await cancel_after(0.2, fetch)
            pool.check_invariants()
            stats = pool.stats()
            assert stats.streams_in_use == 0 and stats.queued == 0, (k, stats)
            backend.stall_at = -1
            response = await pool.request(method, url, content=content)
            assert response.status == 200 and response.content == (content or b"")
            pool.check_invariants()
        if not cancelled:
            assert k >= 3, k  # write, read head, read body at least
            return
        k += 1


class HoldingBackend(AsyncNetworkBackend):
    """Once armed, holds the next write in the middle until released: on trio
    after half the bytes (a cancellation there would split a frame), on
    asyncio after all of them, as a paused transport does (its writes are
    whole: the bytes are handed over before the wait)."""

    def __init__(self, inner: AsyncNetworkBackend) -> None:
        self.inner = inner
        self.armed = False
        self.holding = AsyncEvent()
        self.release = AsyncEvent()

    async def connect_tcp(self, *args: typing.Any, **kwargs: typing.Any) -> AsyncNetworkStream:
        return HoldingStream(await self.inner.connect_tcp(*args, **kwargs), self)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class HoldingStream(PassThroughStream):
    def __init__(self, inner: AsyncNetworkStream, backend: HoldingBackend) -> None:
        super().__init__(inner)
        self.backend = backend
        # True on asyncio, where it, like the stream below, writes whole.
        self.whole_writes = getattr(inner, "whole_writes", False)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        backend = self.backend
        if not backend.armed:
            await self.inner.write(buffer, timeout)
            return
        backend.armed = False
        split = len(buffer) // 2 if current_async_library() == "trio" else len(buffer)
        await self.inner.write(buffer[:split], timeout)
        backend.holding.set()
        await backend.release.wait()
        await self.inner.write(buffer[split:], timeout)


async def test_http2_cancelled_writer_spares_the_other_streams(h2_server: H2Server) -> None:
    # The cancelled request is the one writing; four others wait to write
    # behind it on the same connection. They all complete on that connection.
    backend = HoldingBackend(async_default_backend())
    url = h2_server.url + "/echo"
    done: list[bytes] = []
    cancelled: list[bool] = []
    async with AsyncConnectionPool(network_backend=backend, http1=False, http2=True) as pool:
        await pool.request("GET", h2_server.url + "/", extensions=TIMEOUTS)

        async def victim() -> None:
            async def upload() -> None:
                await pool.request("POST", url, content=b"v" * 50_000, extensions=TIMEOUTS)

            cancelled.append(await cancel_after(0.3, upload))

        async def other(i: int) -> None:
            content = bytes([65 + i]) * 50_000
            response = await pool.request("POST", url, content=content, extensions=TIMEOUTS)
            assert response.content == content
            done.append(content)

        try:
            async with AsyncTaskGroup() as group:
                backend.armed = True
                group.start_soon(victim)
                assert await backend.holding.wait(5.0)
                for i in range(4):
                    group.start_soon(other, i)
                await backend.sleep(0.5)  # the victim's deadline passes meanwhile
                backend.release.set()
        finally:
            backend.release.set()
        assert cancelled == [True] and len(done) == 4
        assert h2_server.connections_accepted == 1
        pool.check_invariants()
        stats = pool.stats()
        assert (stats.connections, stats.streams_in_use) == (1, 0)


async def test_http2_writer_learns_why_the_connection_closed_under_it(h2_server: H2Server) -> None:
    # The pool closes while a request is halfway through a write: the request
    # fails with the connection's own failure, not with "socket closed".
    backend = HoldingBackend(async_default_backend())
    errors: list[Exception] = []
    pool = AsyncConnectionPool(network_backend=backend, http1=False, http2=True)
    await pool.request("GET", h2_server.url + "/", extensions=TIMEOUTS)

    async def upload() -> None:
        try:
            await pool.request(
                "POST", h2_server.url + "/echo", content=b"u" * 50_000, extensions=TIMEOUTS
            )
        except httpool.HttpoolError as exc:
            errors.append(exc)

    try:
        async with AsyncTaskGroup() as group:
            backend.armed = True
            group.start_soon(upload)
            assert await backend.holding.wait(5.0)
            await pool.aclose()
            backend.release.set()
    finally:
        backend.release.set()
    assert [(type(e), str(e)) for e in errors] == [
        (httpool.ReadError, "The HTTP/2 connection was closed.")
    ]
    assert pool.stats().connections == 0
