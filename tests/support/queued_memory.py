"""Memory of an async pool holding many queued requests, measured with tracemalloc.

Theory of operation: a pool of one connection on the mock backend has its
connection held by an open response, so every further request queues. N
tasks each send one request; once ``pool.stats().queued == N``, the memory
traced since just before the tasks were made is what the N queued requests
cost, tasks and coroutine frames included. The same N tasks parked on a bare
event of the runtime give the runtime's own share, so the difference is what
httpool adds per queued request (the Request, the waiter, its event and the
frames of the pool's coroutines). Then every queued request is cancelled, and
the pool must be empty and consistent.

Shared by ``tests/runtime/test_resources.py`` (which asserts a bound with
10,000 requests) and ``scripts/queued_memory.py`` (its command line); it
knows nothing of either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import tracemalloc
import typing
from collections.abc import Awaitable, Callable

import httpool

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
URL = "http://example.com/"


@dataclasses.dataclass(frozen=True)
class Figures:
    """Bytes traced while ``queued`` requests (or bare tasks) were waiting."""

    runtime: str
    queued: int
    with_requests: int
    bare_tasks: int

    @property
    def per_request(self) -> float:
        """All a queued request costs, its task included."""
        return self.with_requests / self.queued

    @property
    def pool_share(self) -> float:
        """What httpool adds to a task parked on an event."""
        return (self.with_requests - self.bare_tasks) / self.queued


async def measure(n: int) -> Figures:
    """Measure on the running runtime (asyncio or trio)."""
    library = httpool._synchronization.current_async_library()
    spawn = _trio_spawner if library == "trio" else _asyncio_spawner
    pool = httpool.AsyncConnectionPool(
        network_backend=httpool.AsyncMockBackend(reply=OK), max_connections=1
    )
    async with pool, pool.stream("GET", URL) as held:
        assert held.status == 200

        async def request() -> None:
            await pool.request("GET", URL)

        with_requests = await spawn(n, request, lambda: pool.stats().queued == n)
        stats = pool.stats()
        assert stats.queued == 0 and stats.streams_in_use == 1, stats
        pool.check_invariants()
    if library == "trio":
        import trio

        event: typing.Any = trio.Event()
    else:
        event = asyncio.Event()
    parked = 0

    async def bare() -> None:
        nonlocal parked
        parked += 1
        await event.wait()

    bare_tasks = await spawn(n, bare, lambda: parked == n)
    return Figures(library, n, with_requests, bare_tasks)


async def _asyncio_spawner(
    n: int, fn: Callable[[], Awaitable[None]], ready: Callable[[], bool]
) -> int:
    """Start ``n`` tasks, measure once ``ready()``, cancel them; return bytes traced."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tasks = [asyncio.ensure_future(fn()) for _ in range(n)]
        for _ in range(1000):
            if ready():
                break
            await asyncio.sleep(0)
        assert ready(), "the tasks did not all get going"
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return used


async def _trio_spawner(
    n: int, fn: Callable[[], Awaitable[None]], ready: Callable[[], bool]
) -> int:
    import trio
    import trio.testing

    gc.collect()
    async with trio.open_nursery() as nursery:
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            for _ in range(n):
                nursery.start_soon(fn)
            await trio.testing.wait_all_tasks_blocked()
            assert ready(), "the tasks did not all get going"
            used = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
        nursery.cancel_scope.cancel()
    return used


def run(runtime: str, n: int) -> Figures:
    if runtime == "trio":
        import trio

        return trio.run(measure, n)
    return asyncio.run(measure(n))
