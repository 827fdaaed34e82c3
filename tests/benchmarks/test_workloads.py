"""httpool alone on the workloads of ``scripts/compare.py``, against the bench server.

``scripts/compare.py`` answers "how does httpool do against its peers?"; this
module answers "did httpool get slower?" in one ``nox -s bench``, on the same
workloads: sync sequential, sync with 8 threads sharing a pool, trio with 64
tasks, 64 KiB and 1 MiB bodies streamed on every runtime, and 10,000 requests
queued on 10 connections over real TCP (it joins the loopback family of
``test_pool_loopback.py``, so ``scripts/bench_report.py`` prints its ratio to
the 10-request batch).

The pool stays warm across rounds. For trio that needs one ``trio.run`` for
the whole benchmark: ``TrioRunner`` keeps it going in a thread and runs each
round in it with ``trio.from_thread.run``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import typing
from collections.abc import Awaitable, Callable, Iterator

import pytest
import trio

from httpool import AsyncConnectionPool, ConnectionPool
from httpool._bench.server import BenchServer
from tests.benchmarks.helpers import AsyncioRunner, measure

T = typing.TypeVar("T")
SIZES = {"64KiB": 64 * 1024, "1MiB": 1024 * 1024}
# Requests per round: about 13 MB for 64 KiB bodies, 50 MB for 1 MiB ones.
STREAMED = {"64KiB": 200, "1MiB": 50}
STREAMED_ROUNDS = 10


class TrioRunner:
    """One ``trio.run`` in a thread for a whole benchmark; ``run`` calls an async
    function in it and returns its result."""

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("trio did not start")

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        self._ready.set()
        await self._stop.wait()

    def run(self, function: Callable[[], Awaitable[T]]) -> T:
        return trio.from_thread.run(function, trio_token=self._token)

    def close(self) -> None:
        if self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)


@pytest.fixture
def trio_runner() -> Iterator[TrioRunner]:
    runner = TrioRunner()
    try:
        yield runner
    finally:
        runner.close()


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def test_sync_sequential(benchmark: object, bench_server: BenchServer) -> None:
    requests = 1_000
    url = bench_server.url
    with ConnectionPool(max_connections=1) as pool:
        statuses = measure(
            benchmark,
            lambda: [pool.request("GET", url).status for _ in range(requests)],
            requests=requests,
            group="loopback workloads, small body",
            kind="workload",
            backend="loopback",
            runtime="sync",
        )
        assert statuses == [200] * requests
        assert pool.stats().opened == 1


@pytest.mark.parametrize("thread_pool", [8], indirect=True)
def test_sync_8_threads(
    benchmark: object, thread_pool: concurrent.futures.ThreadPoolExecutor, bench_server: BenchServer
) -> None:
    """8 threads sharing a pool of 8 connections, each sending its share in a loop."""
    requests, threads = 2_000, 8
    url = bench_server.url
    with ConnectionPool(max_connections=threads) as pool:

        def share(count: int) -> list[int]:
            return [pool.request("GET", url).status for _ in range(count)]

        def run() -> list[int]:
            return [s for part in thread_pool.map(share, _split(requests, threads)) for s in part]

        statuses = measure(
            benchmark,
            run,
            requests=requests,
            group="loopback workloads, small body",
            kind="workload",
            backend="loopback",
            runtime="sync, 8 threads",
        )
        assert statuses == [200] * requests
        assert pool.stats().connections <= threads


def test_trio_64_tasks(
    benchmark: object, trio_runner: TrioRunner, bench_server: BenchServer
) -> None:
    requests, tasks = 4_000, 64
    url = bench_server.url
    pool = AsyncConnectionPool(max_connections=tasks)

    async def run() -> list[int]:
        statuses: list[int] = []

        async def share(count: int) -> None:
            for _ in range(count):
                statuses.append((await pool.request("GET", url)).status)

        async with trio.open_nursery() as nursery:
            for count in _split(requests, tasks):
                nursery.start_soon(share, count)
        return statuses

    statuses = measure(
        benchmark,
        lambda: trio_runner.run(run),
        requests=requests,
        group="loopback workloads, small body",
        kind="workload",
        backend="loopback",
        runtime="trio, 64 tasks",
    )
    assert statuses == [200] * requests
    assert pool.stats().connections <= tasks
    trio_runner.run(pool.aclose)


def test_asyncio_10000_queued(
    benchmark: object, aio: AsyncioRunner, bench_server: BenchServer
) -> None:
    """10,000 requests started at once on 10 connections; with the batches of
    ``test_pool_loopback.py`` this gives the 10,000 vs 10 ratio."""
    batch = 10_000
    url = bench_server.url
    pool = AsyncConnectionPool(max_connections=10)

    async def one() -> int:
        return (await pool.request("GET", url)).status

    async def run() -> list[int]:
        return list(await asyncio.gather(*(one() for _ in range(batch))))

    statuses = measure(
        benchmark,
        lambda: aio.run(run()),
        requests=batch,
        group="loopback concurrent, asyncio",
        kind="concurrent",
        backend="loopback",
        runtime="asyncio",
        batch=batch,
        origins=1,
    )
    assert statuses == [200] * batch
    assert pool.stats().connections <= 10
    aio.run(pool.aclose())


def _measure_streamed(
    benchmark: typing.Any, target: Callable[[], T], size: int, requests: int, **info: object
) -> T:
    """Like ``helpers.measure``, with fewer rounds (a round moves 13 to 50 MB)
    and the throughput in MB/s beside the cost per request."""
    benchmark.group = f"loopback workloads, {info['body']} bodies streamed"
    result: T = benchmark.pedantic(target, rounds=STREAMED_ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(info, requests_per_round=requests)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        median = stats.stats.median
        benchmark.extra_info["us_per_request"] = median / requests * 1e6
        benchmark.extra_info["mb_per_s"] = size * requests / median / 1e6
    return result


@pytest.mark.parametrize("body", list(SIZES))
@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_streamed_body(
    benchmark: typing.Any,
    aio: AsyncioRunner,
    trio_runner: TrioRunner,
    bench_server: BenchServer,
    runtime: str,
    body: str,
) -> None:
    """Large bodies read chunk by chunk on one connection; MB/s in ``extra_info``."""
    size, requests = SIZES[body], STREAMED[body]
    url = f"{bench_server.url}size/{size}"
    info = {
        "kind": "workload",
        "backend": "loopback",
        "runtime": f"{runtime}, {body} streamed",
        "body": body,
    }
    if runtime == "sync":
        with ConnectionPool(max_connections=1) as pool:

            def run_sync() -> list[int]:
                lengths = []
                for _ in range(requests):
                    with pool.stream("GET", url) as response:
                        lengths.append(sum(len(chunk) for chunk in response.iter_stream()))
                return lengths

            lengths = _measure_streamed(benchmark, run_sync, size, requests, **info)
    else:
        async_pool = AsyncConnectionPool(max_connections=1)

        async def run_async() -> list[int]:
            lengths = []
            for _ in range(requests):
                async with async_pool.stream("GET", url) as response:
                    total = 0
                    async for chunk in response.aiter_stream():
                        total += len(chunk)
                    lengths.append(total)
            return lengths

        if runtime == "asyncio":
            lengths = _measure_streamed(
                benchmark, lambda: aio.run(run_async()), size, requests, **info
            )
            aio.run(async_pool.aclose())
        else:
            lengths = _measure_streamed(
                benchmark, lambda: trio_runner.run(run_async), size, requests, **info
            )
            trio_runner.run(async_pool.aclose)
    assert lengths == [size] * requests
