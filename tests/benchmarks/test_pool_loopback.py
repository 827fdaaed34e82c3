"""The pool against a real server on loopback: the embedded bench server.

The same batches as on the mock backend (10, 100 and 1,000 concurrent
requests on ``max_connections=10``, one origin), over real TCP, so that the
numbers include the network backend and h11. The server runs in its own
process (one per session) so that it does not compete with the client for
the GIL. The pool stays warm from round to round: after the warm-up round
its connections are open and the rounds measure steady-state requests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from httpool import AsyncConnectionPool, ConnectionPool
from httpool._bench.server import BenchServer
from tests.benchmarks.helpers import AsyncioRunner, measure

POOL_SIZE = 10
BATCHES = [10, 100, 1_000]


@pytest.mark.parametrize("batch", BATCHES)
def test_asyncio_concurrent(
    benchmark: object, aio: AsyncioRunner, bench_server: BenchServer, batch: int
) -> None:
    pool = AsyncConnectionPool(max_connections=POOL_SIZE)
    url = bench_server.url

    async def one() -> int:
        return (await pool.request("GET", url)).status

    async def run_batch() -> list[int]:
        return list(await asyncio.gather(*(one() for _ in range(batch))))

    statuses = measure(
        benchmark,
        lambda: aio.run(run_batch()),
        requests=batch,
        group="loopback concurrent, asyncio",
        kind="concurrent",
        backend="loopback",
        runtime="asyncio",
        batch=batch,
        origins=1,
    )
    assert statuses == [200] * batch
    stats = pool.stats()
    assert stats.queued == 0
    assert stats.connections <= POOL_SIZE
    aio.run(pool.aclose())


@pytest.mark.parametrize(
    ("batch", "thread_pool"), [(b, b) for b in BATCHES], indirect=["thread_pool"]
)
def test_sync_concurrent(
    benchmark: object,
    thread_pool: concurrent.futures.ThreadPoolExecutor,
    bench_server: BenchServer,
    batch: int,
) -> None:
    """One thread per request, all sharing one pool (the threads outlive the rounds)."""
    pool = ConnectionPool(max_connections=POOL_SIZE)
    url = bench_server.url

    def one(_: int) -> int:
        return pool.request("GET", url).status

    statuses = measure(
        benchmark,
        lambda: list(thread_pool.map(one, range(batch))),
        requests=batch,
        group="loopback concurrent, sync",
        kind="concurrent",
        backend="loopback",
        runtime="sync",
        batch=batch,
        origins=1,
    )
    assert statuses == [200] * batch
    stats = pool.stats()
    assert stats.queued == 0
    assert stats.connections <= POOL_SIZE
    pool.close()
