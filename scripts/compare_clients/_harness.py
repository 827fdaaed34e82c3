"""The workloads, written once against the adapter interface of every client.

Theory of operation: an adapter is a client already configured for one URL
and a number of connections; ``get()`` sends one request and reads its whole
(small) body, ``stream()`` reads a large body chunk by chunk, and both return
the body's length. A run opens the adapter, runs the workload briefly as a
warm-up, then runs it for real between two readings of ``perf_counter`` and
``process_time``. Every request's exception is counted, never raised, so a
client that fails fast cannot post a good number: the driver shows errors.
A streamed body of the wrong length counts as an error too.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import typing
from collections.abc import Awaitable, Callable

from compare_clients import Workload


class SyncClient(typing.Protocol):
    def get(self) -> int: ...
    def stream(self) -> int: ...
    def close(self) -> None: ...


class AsyncClient(typing.Protocol):
    async def get(self) -> int: ...
    async def stream(self) -> int: ...
    async def aclose(self) -> None: ...


class Tally:
    """Bytes read and errors of one run, from any number of threads or tasks."""

    def __init__(self, expected: int | None, seconds: float = float("inf")) -> None:
        self.done = 0
        self.bytes = 0
        self.errors = 0
        # Workers stop drawing requests after this instant: a very slow client
        # reports its rate over a bounded time instead of holding up the run.
        self.deadline = time.perf_counter() + seconds
        self.sample = ""
        self._expected = expected
        self._lock = threading.Lock()

    def add(self, done: int, nbytes: int, errors: int, sample: str) -> None:
        with self._lock:
            self.done += done
            self.bytes += nbytes
            self.errors += errors
            if sample and not self.sample:
                self.sample = sample

    def check(self, length: int) -> int:
        if self._expected is not None and length != self._expected:
            raise ValueError(f"body of {length} bytes, expected {self._expected}")
        return length


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _warmup_count(workload: Workload) -> int:
    if workload.shape == "queued":
        return min(workload.batch, 100)
    if workload.shape == "workers":
        return workload.workers * 4
    return 3 if workload.streams else 20


def _sync_loop(op: Callable[[], int], count: int, tally: Tally) -> None:
    nbytes = errors = done = 0
    sample = ""
    deadline, clock = tally.deadline, time.perf_counter
    while done < count and clock() < deadline:
        done += 1
        try:
            nbytes += tally.check(op())
        except Exception as exc:  # counted, not fatal: the table shows errors
            errors += 1
            sample = sample or repr(exc)
    tally.add(done, nbytes, errors, sample)


def _run_sync_shape(client: SyncClient, workload: Workload, count: int, tally: Tally) -> None:
    op = client.stream if workload.streams else client.get
    if workload.shape == "sequential":
        _sync_loop(op, count, tally)
        return
    if workload.shape != "workers":
        raise ValueError(f"workload shape {workload.shape!r} is not run on threads")
    threads = [
        threading.Thread(target=_sync_loop, args=(op, share, tally))
        for share in _split(count, workload.workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


async def _async_loop(op: Callable[[], Awaitable[int]], count: int, tally: Tally) -> None:
    nbytes = errors = done = 0
    sample = ""
    deadline, clock = tally.deadline, time.perf_counter
    while done < count and clock() < deadline:
        done += 1
        try:
            nbytes += tally.check(await op())
        except Exception as exc:  # counted, not fatal: the table shows errors
            errors += 1
            sample = sample or repr(exc)
    tally.add(done, nbytes, errors, sample)


SpawnAll = Callable[[list[Callable[[], Awaitable[None]]]], Awaitable[None]]


async def _run_async_shape(
    client: AsyncClient, workload: Workload, count: int, tally: Tally, spawn_all: SpawnAll
) -> None:
    op = client.stream if workload.streams else client.get
    if workload.shape == "sequential":
        await _async_loop(op, count, tally)
    elif workload.shape == "workers":
        shares = _split(count, workload.workers)
        await spawn_all([functools.partial(_async_loop, op, share, tally) for share in shares])
    else:  # queued: every request of a batch is started at once
        for batch in _split(count, max(1, count // workload.batch)):
            if time.perf_counter() >= tally.deadline:
                break
            await spawn_all([functools.partial(_async_loop, op, 1, tally)] * batch)


def _result(seconds: float, cpu: float, tally: Tally) -> dict[str, typing.Any]:
    return {
        "requests": tally.done,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "errors": tally.errors,
        "bytes": tally.bytes,
        "error_sample": tally.sample,
    }


def _expected(workload: Workload) -> int | None:
    return int(workload.path.rsplit("/", 1)[1]) if workload.streams else None


def run_sync(
    client: SyncClient, workload: Workload, count: int, seconds: float
) -> dict[str, typing.Any]:
    try:
        _run_sync_shape(client, workload, _warmup_count(workload), Tally(_expected(workload)))
        tally = Tally(_expected(workload), seconds)
        wall, cpu = time.perf_counter(), time.process_time()
        _run_sync_shape(client, workload, count, tally)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        client.close()
    return _result(wall, cpu, tally)


async def run_async(
    open_client: Callable[[], Awaitable[AsyncClient]],
    workload: Workload,
    count: int,
    seconds: float,
    spawn_all: SpawnAll,
) -> dict[str, typing.Any]:
    client = await open_client()
    try:
        warm = Tally(_expected(workload))
        await _run_async_shape(client, workload, _warmup_count(workload), warm, spawn_all)
        tally = Tally(_expected(workload), seconds)
        wall, cpu = time.perf_counter(), time.process_time()
        await _run_async_shape(client, workload, count, tally, spawn_all)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await client.aclose()
    return _result(wall, cpu, tally)


async def asyncio_spawn_all(functions: list[Callable[[], Awaitable[None]]]) -> None:
    await asyncio.gather(*(function() for function in functions))


async def trio_spawn_all(functions: list[Callable[[], Awaitable[None]]]) -> None:
    import trio

    async with trio.open_nursery() as nursery:
        for function in functions:
            nursery.start_soon(function)
