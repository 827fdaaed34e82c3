"""The pool on the mock backend: reuse, limits, queueing, expiry, bad input.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import pytest

import httpool
from httpool import AsyncConnectionPool, AsyncMockBackend
from tests.support.concurrency import AsyncTaskGroup

from .fake_multiplex import AsyncFakeMultiplexPool

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!"


async def test_sequential_requests_reuse_one_connection() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend) as pool:
        for _ in range(5):
            response = await pool.request("GET", "http://example.com/")
            assert response.status == 200 and response.content == b"Hello, world!"
        assert backend.connects == 1
        stats = pool.stats()
        assert (stats.connections, stats.idle, stats.requests, stats.queued) == (1, 1, 5, 0)
        assert "1 idle" in repr(pool)
        pool.check_invariants()


async def test_concurrent_requests_queue_within_max_connections() -> None:
    backend = AsyncMockBackend(reply=OK)
    statuses: list[int] = []

    async def fetch(i: int) -> None:
        response = await pool.request("GET", f"http://example.com/{i}")
        statuses.append(response.status)

    async with AsyncConnectionPool(network_backend=backend, max_connections=5) as pool:
        async with AsyncTaskGroup() as group:
            for i in range(60):
                group.start_soon(fetch, i)
        assert statuses == [200] * 60
        assert backend.connects <= 5
        stats = pool.stats()
        assert stats.queued == 0 and stats.streams_in_use == 0 and stats.connections <= 5
        pool.check_invariants()


async def test_many_origins_share_the_limit() -> None:
    backend = AsyncMockBackend(reply=OK)
    done: list[int] = []

    async def fetch(i: int) -> None:
        await pool.request("GET", f"http://host{i % 7}.test/")
        done.append(i)

    async with AsyncConnectionPool(network_backend=backend, max_connections=3) as pool:
        async with AsyncTaskGroup() as group:
            for i in range(70):
                group.start_soon(fetch, i)
        assert len(done) == 70
        assert pool.stats().connections <= 3
        pool.check_invariants()


async def test_pool_timeout_then_pool_still_serves() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend, max_connections=1) as pool:
        async with pool.stream("GET", "http://example.com/") as held:
            assert held.status == 200
            with pytest.raises(httpool.PoolTimeout):
                await pool.request(
                    "GET", "http://example.com/", extensions={"timeout": {"pool": 0.01}}
                )
            assert pool.stats().queued == 0
            await held.aread()
        response = await pool.request("GET", "http://example.com/")
        assert response.status == 200
        assert backend.connects == 1
        pool.check_invariants()


async def test_keepalive_expiry_on_virtual_clock() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend, keepalive_expiry=5.0) as pool:
        await pool.request("GET", "http://example.com/")
        backend.advance(4.0)
        await pool.request("GET", "http://example.com/")
        assert backend.connects == 1
        backend.advance(6.0)
        await pool.request("GET", "http://example.com/")
        assert backend.connects == 2
        assert pool.stats().closed == 1


async def test_max_keepalive_connections() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(
        network_backend=backend, max_connections=4, max_keepalive_connections=1
    ) as pool:
        async with (
            pool.stream("GET", "http://a.test/") as a,
            pool.stream("GET", "http://b.test/") as b,
        ):
            assert pool.stats().active == 2
            await a.aread()
            await b.aread()
        stats = pool.stats()
        assert stats.idle == 1 and stats.closed == 1


async def test_connection_close_is_not_reused() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    backend = AsyncMockBackend([closing])
    async with AsyncConnectionPool(network_backend=backend) as pool:
        for _ in range(3):
            assert (await pool.request("GET", "http://example.com/")).content == b"ok"
        assert backend.connects == 3
        assert pool.stats().connections == 0


async def test_dead_idle_connection_is_not_reused() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend) as pool:
        await pool.request("GET", "http://example.com/")
        backend.streams[0].close_by_peer()
        response = await pool.request("GET", "http://example.com/")
        assert response.status == 200 and backend.connects == 2


@pytest.mark.parametrize(
    ("url", "headers", "error"),
    [
        ("example.com/", None, httpool.UnsupportedProtocol),
        ("ftp://example.com/", None, httpool.UnsupportedProtocol),
        ("http://example.com:99999/", None, httpool.LocalProtocolError),
        ("http://example.com:port/", None, httpool.LocalProtocolError),
        ("http://example.com/", [(b"X-Evil", b"a\r\nInjected: 1")], httpool.LocalProtocolError),
        ("http://example.com/", [(b"Bad Name", b"x")], httpool.LocalProtocolError),
    ],
)
async def test_bad_input_raises_and_pool_serves_next(
    url: str, headers: list[tuple[bytes, bytes]] | None, error: type[Exception]
) -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend) as pool:
        with pytest.raises(error):
            await pool.request("GET", url, headers=headers)
        assert backend.streams == [] or all(s.written == [] for s in backend.streams)
        assert (await pool.request("GET", "http://example.com/")).status == 200
        assert pool.stats().queued == 0
        pool.check_invariants()


async def test_refused_connection_then_pool_serves_next() -> None:
    backend = AsyncMockBackend(reply=OK)
    backend.connect_error = httpool.ConnectError("Connection refused")
    async with AsyncConnectionPool(network_backend=backend, max_connections=1) as pool:
        with pytest.raises(httpool.ConnectError):
            await pool.request("GET", "http://example.com/")
        assert pool.stats().connections == 0
        assert (await pool.request("GET", "http://example.com/")).status == 200
        pool.check_invariants()


async def test_read_error_mid_body_discards_connection() -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
    backend = AsyncMockBackend([partial, httpool.ReadError("reset")])
    async with AsyncConnectionPool(network_backend=backend) as pool:
        with pytest.raises(httpool.ReadError):
            await pool.request("GET", "http://example.com/")
        stats = pool.stats()
        assert stats.connections == 0 and stats.streams_in_use == 0
        pool.check_invariants()


async def test_streamed_response_releases_on_close() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend) as pool:
        async with pool.stream("GET", "http://example.com/") as response:
            body = b"".join([part async for part in response.aiter_stream()])
            assert body == b"Hello, world!"
            assert pool.stats().active == 1
        assert pool.stats().idle == 1
        assert len(pool.connections) == 1


async def test_unread_stream_closes_connection() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend) as pool:
        async with pool.stream("GET", "http://example.com/"):
            pass
        assert pool.stats().connections == 0


async def test_multiplexing_connection_fills_its_slots_first() -> None:
    backend = AsyncMockBackend()
    async with AsyncFakeMultiplexPool(4, backend, max_connections=10) as pool:
        responses = []
        for _ in range(10):
            request = httpool.Request("GET", "http://example.com/")
            responses.append(await pool.handle_async_request(request))
        assert len(pool.made) == 3  # ceil(10 / 4)
        assert [conn.streams for conn in pool.made] == [4, 4, 2]
        assert pool.stats().streams_in_use == 10
        pool.check_invariants()
        for response in responses:
            await response.aclose()
        stats = pool.stats()
        assert (stats.streams_in_use, stats.idle) == (0, 3)
        pool.check_invariants()


async def test_concurrent_requests_on_multiplexing_connections() -> None:
    backend = AsyncMockBackend()
    async with AsyncFakeMultiplexPool(4, backend, max_connections=10) as pool:

        async def fetch() -> None:
            response = await pool.request("GET", "http://example.com/")
            assert response.content == b"multiplexed"

        async with AsyncTaskGroup() as group:
            for _ in range(40):
                group.start_soon(fetch)
        assert 1 <= len(pool.made) <= 10
        assert max(conn.peak for conn in pool.made) <= 4
        stats = pool.stats()
        assert stats.streams_in_use == 0 and stats.queued == 0
        pool.check_invariants()


def test_invalid_limits_raise() -> None:
    with pytest.raises(ValueError):
        AsyncConnectionPool(max_connections=0)
    with pytest.raises(ValueError):
        AsyncConnectionPool(max_keepalive_connections=-1)
    with pytest.raises(ValueError):
        AsyncConnectionPool(keepalive_expiry=-1.0)
    with pytest.raises(TypeError):
        AsyncConnectionPool(max_connections="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AsyncConnectionPool(http1=False, http2=False)


async def test_stale_keepalive_connection_is_retried_once() -> None:
    # Every connection answers one request, then the server has gone away.
    backend = AsyncMockBackend([OK])
    async with AsyncConnectionPool(network_backend=backend) as pool:
        for _ in range(3):
            response = await pool.request("GET", "http://example.com/")
            assert response.content == b"Hello, world!"
        assert backend.connects == 3
        assert pool.stats().streams_in_use == 0
        pool.check_invariants()


async def test_non_idempotent_request_is_not_retried() -> None:
    backend = AsyncMockBackend([OK])
    async with AsyncConnectionPool(network_backend=backend) as pool:
        await pool.request("POST", "http://example.com/", content=b"x")
        with pytest.raises(httpool.RemoteProtocolError):
            await pool.request("POST", "http://example.com/", content=b"x")
        response = await pool.request(
            "POST", "http://example.com/", content=b"x", extensions={"retry_non_idempotent": True}
        )
        assert response.status == 200
        pool.check_invariants()


async def test_failure_on_a_new_connection_is_not_retried() -> None:
    backend = AsyncMockBackend([b""])
    async with AsyncConnectionPool(network_backend=backend) as pool:
        with pytest.raises(httpool.RemoteProtocolError):
            await pool.request("GET", "http://example.com/")
        assert backend.connects == 1


async def test_failure_after_response_started_is_not_retried() -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-"
    backend = AsyncMockBackend([OK, partial])
    async with AsyncConnectionPool(network_backend=backend) as pool:
        await pool.request("GET", "http://example.com/")
        with pytest.raises(httpool.RemoteProtocolError):
            await pool.request("GET", "http://example.com/")
        assert backend.connects == 1


class AsyncBackendWithoutClock:
    """A backend written for httpcore's interface: no ``now()``."""

    def __init__(self) -> None:
        self.inner = AsyncMockBackend(reply=OK)

    async def connect_tcp(self, *args: object, **kwargs: object) -> object:
        return await self.inner.connect_tcp(*args, **kwargs)  # type: ignore[arg-type]

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def test_backend_without_clock_uses_monotonic_time() -> None:
    backend = AsyncBackendWithoutClock()
    async with AsyncConnectionPool(network_backend=backend, keepalive_expiry=60.0) as pool:  # type: ignore[arg-type]
        for _ in range(2):
            assert (await pool.request("GET", "http://example.com/")).status == 200
        assert backend.inner.connects == 1


async def test_max_connections_per_origin() -> None:
    backend = AsyncMockBackend(reply=OK)
    a, b = "http://a.test/", "http://b.test/"

    async def fetch(url: str) -> None:
        async with pool.stream("GET", url) as response:
            await response.aread()
            pool.check_invariants()  # per-origin limit included, while requests are in flight

    async with AsyncConnectionPool(
        network_backend=backend, max_connections=5, max_connections_per_origin=2
    ) as pool:
        async with AsyncTaskGroup() as group:
            for i in range(40):
                group.start_soon(fetch, a if i % 4 else b)
        per_origin = [
            sum(c.can_handle_request(httpool.URL(u).origin) for c in pool.connections)
            for u in (a, b)
        ]
        assert min(per_origin) >= 1 and max(per_origin) <= 2
        assert pool.stats().queued == 0


class AsyncHangUpMidUploadStream(httpool.AsyncMockStream):
    """Answers the first request; then the server is gone: the next write
    fails and the read that follows finds the connection closed."""

    def __init__(self) -> None:
        super().__init__([OK])
        self.writes = 0

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.writes += 1
        if self.writes > 1:
            raise httpool.WriteError("Broken pipe")
        await super().write(buffer, timeout)


class AsyncTwoStreamBackend(httpool.AsyncMockBackend):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[httpool.AsyncMockStream] = [
            AsyncHangUpMidUploadStream(),
            httpool.AsyncMockStream([OK]),
        ]

    async def connect_tcp(self, *args: object, **kwargs: object) -> httpool.AsyncMockStream:
        return self.opened.pop(0)


@pytest.mark.parametrize(("method", "retried"), [("PUT", True), ("POST", False)])
async def test_write_failure_without_response_follows_the_retry_rule(
    method: str, retried: bool
) -> None:
    backend = AsyncTwoStreamBackend()
    async with AsyncConnectionPool(network_backend=backend) as pool:
        assert (await pool.request(method, "http://example.com/", content=b"a")).status == 200
        if retried:
            response = await pool.request(method, "http://example.com/", content=b"b")
            assert response.content == b"Hello, world!"
            assert pool.stats().opened == 2
        else:
            with pytest.raises(httpool.RemoteProtocolError, match="without sending a response"):
                await pool.request(method, "http://example.com/", content=b"b")
        pool.check_invariants()


async def test_zero_keepalive_expiry_closes_at_response_close() -> None:
    backend = AsyncMockBackend([OK, OK])
    async with AsyncConnectionPool(keepalive_expiry=0.0, network_backend=backend) as pool:
        async with pool.stream("GET", "https://example.com/") as response:
            assert len(pool.connections) == 1
            await response.aread()
        assert pool.connections == []
        assert backend.streams[0].closed
        stats = pool.stats()
        assert stats.connections == 0 and stats.closed == 1
        # The next request opens a new connection, and closes it likewise.
        assert (await pool.request("GET", "https://example.com/")).status == 200
        assert pool.connections == [] and pool.stats().opened == 2
        pool.check_invariants()


async def test_repr_is_httpcores() -> None:
    async with AsyncConnectionPool(network_backend=AsyncMockBackend([OK])) as pool:
        async with pool.stream("GET", "http://example.com/") as response:
            await response.aread()
            assert repr(pool) == (
                f"<{type(pool).__name__} [Requests: 1 active, 0 queued"
                " | Connections: 1 active, 0 idle]>"
            )
        idle = "[Requests: 0 active, 0 queued | Connections: 0 active, 1 idle]>"
        assert repr(pool).endswith(idle)
