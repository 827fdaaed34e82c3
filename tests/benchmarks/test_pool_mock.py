"""The pool's own cost, on the mock backend: no sockets, no server, just bookkeeping.

Two questions, each answered by comparing two numbers that should be close:

- Does the cost of a request grow with the number of requests queued on a
  small pool? 10 to 10,000 concurrent requests on ``max_connections=10``,
  to one origin and spread round-robin over 10 origins.
- Does it grow with the number of idle connections the pool holds? 1,000
  sequential requests on a pool holding 10 or 1,000 idle keep-alive
  connections, all to one origin or each to its own origin.

Each benchmark checks afterwards that the pool did the expected work (every
request answered, no connection beyond the limit, no connection reopened),
so that a fast but wrong pool cannot post a good number.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib

import pytest

from httpool import AsyncConnectionPool, AsyncMockBackend, ConnectionPool, MockBackend
from tests.benchmarks.helpers import AsyncioRunner, measure

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
POOL_SIZE = 10
SEQUENTIAL_REQUESTS = 1_000


def spread(batch: int, origins: int) -> list[str]:
    """``batch`` URLs taking ``origins`` origins in turn."""
    return [f"http://origin{i % origins}.example/" for i in range(batch)]


def check_answered(statuses: list[int], expected: int) -> None:
    assert statuses == [200] * expected


# Many concurrent requests on a small pool.


@pytest.mark.parametrize("origins", [1, 10])
@pytest.mark.parametrize("batch", [10, 100, 1_000, 10_000])
def test_asyncio_concurrent(
    benchmark: object, aio: AsyncioRunner, batch: int, origins: int
) -> None:
    pool = AsyncConnectionPool(
        max_connections=POOL_SIZE, network_backend=AsyncMockBackend(reply=REPLY)
    )
    urls = spread(batch, origins)

    async def one(url: str) -> int:
        response = await pool.request("GET", url)
        return response.status

    async def run_batch() -> list[int]:
        return list(await asyncio.gather(*(one(url) for url in urls)))

    statuses = measure(
        benchmark,
        lambda: aio.run(run_batch()),
        requests=batch,
        group=f"mock concurrent, asyncio, {origins} origin(s)",
        kind="concurrent",
        backend="mock",
        runtime="asyncio",
        batch=batch,
        origins=origins,
    )
    check_answered(statuses, batch)
    stats = pool.stats()
    assert stats.queued == 0
    assert stats.active == 0
    assert stats.connections <= POOL_SIZE
    aio.run(pool.aclose())


@pytest.mark.parametrize("origins", [1, 10])
@pytest.mark.parametrize(("batch", "thread_pool"), [(10, 10), (100, 100)], indirect=["thread_pool"])
def test_sync_concurrent(
    benchmark: object,
    thread_pool: concurrent.futures.ThreadPoolExecutor,
    batch: int,
    origins: int,
) -> None:
    """One thread per request, all sharing one pool (the threads outlive the rounds)."""
    pool = ConnectionPool(max_connections=POOL_SIZE, network_backend=MockBackend(reply=REPLY))
    urls = spread(batch, origins)

    def one(url: str) -> int:
        return pool.request("GET", url).status

    statuses = measure(
        benchmark,
        lambda: list(thread_pool.map(one, urls)),
        requests=batch,
        group=f"mock concurrent, sync, {origins} origin(s)",
        kind="concurrent",
        backend="mock",
        runtime="sync",
        batch=batch,
        origins=origins,
    )
    check_answered(statuses, batch)
    stats = pool.stats()
    assert stats.queued == 0
    assert stats.connections <= POOL_SIZE
    pool.close()


# Sequential requests on a pool holding many idle connections.


def idle_urls(idle: int, layout: str) -> list[str]:
    return spread(idle, 1 if layout == "one-origin" else idle)


@pytest.mark.parametrize("layout", ["one-origin", "own-origin"])
@pytest.mark.parametrize("idle", [10, 1_000])
def test_asyncio_sequential_with_idle(
    benchmark: object, aio: AsyncioRunner, idle: int, layout: str
) -> None:
    pool = AsyncConnectionPool(max_connections=idle, network_backend=AsyncMockBackend(reply=REPLY))
    urls = idle_urls(idle, layout)

    async def fill() -> None:
        # Holding every response open forces one connection per request;
        # closing them all, bodies read, leaves ``idle`` idle connections.
        async with contextlib.AsyncExitStack() as stack:
            for url in urls:
                response = await stack.enter_async_context(pool.stream("GET", url))
                await response.aread()

    aio.run(fill())
    assert pool.stats().idle == idle
    sequence = [urls[i % idle] for i in range(SEQUENTIAL_REQUESTS)]

    async def run_sequence() -> list[int]:
        statuses = []
        for url in sequence:
            statuses.append((await pool.request("GET", url)).status)
        return statuses

    statuses = measure(
        benchmark,
        lambda: aio.run(run_sequence()),
        requests=SEQUENTIAL_REQUESTS,
        group=f"mock sequential with idle connections, asyncio, {layout}",
        kind="idle",
        backend="mock",
        runtime="asyncio",
        idle=idle,
        layout=layout,
    )
    check_answered(statuses, SEQUENTIAL_REQUESTS)
    stats = pool.stats()
    assert stats.idle == idle
    assert stats.opened == idle  # every request reused an idle connection
    aio.run(pool.aclose())


@pytest.mark.parametrize("layout", ["one-origin", "own-origin"])
@pytest.mark.parametrize("idle", [10, 1_000])
def test_sync_sequential_with_idle(benchmark: object, idle: int, layout: str) -> None:
    pool = ConnectionPool(max_connections=idle, network_backend=MockBackend(reply=REPLY))
    urls = idle_urls(idle, layout)
    with contextlib.ExitStack() as stack:
        for url in urls:
            stack.enter_context(pool.stream("GET", url)).read()
    assert pool.stats().idle == idle
    sequence = [urls[i % idle] for i in range(SEQUENTIAL_REQUESTS)]

    statuses = measure(
        benchmark,
        lambda: [pool.request("GET", url).status for url in sequence],
        requests=SEQUENTIAL_REQUESTS,
        group=f"mock sequential with idle connections, sync, {layout}",
        kind="idle",
        backend="mock",
        runtime="sync",
        idle=idle,
        layout=layout,
    )
    check_answered(statuses, SEQUENTIAL_REQUESTS)
    stats = pool.stats()
    assert stats.idle == idle
    assert stats.opened == idle
    pool.close()
