"""The load generator: one runner per runtime.

Theory of operation: a run sends ``requests`` requests through ONE pool with
``workers`` workers (threads for ``sync``, tasks for ``asyncio`` and
``trio``; never more workers than requests). Workers draw tickets from a
shared ``_Tickets`` counter until none is left, so the total is exact
whatever the scheduling, and a run that is interrupted or gives up stops
drawing at once. Each finished request is reported to one ``Recorder``
(``results.py``): its latency and status, or the type of the exception it
raised. Nothing is retried or hidden; a request counts as failed when the
pool raised, whatever the status of the responses that did arrive.

The worker loop is the hot path of every benchmark: per request it takes a
ticket, reads the clock, calls ``pool.request`` with arguments computed once
per run, and reports to the recorder. Nothing else belongs in it.

The pool's own counters (``pool.stats()``) are read after the last request
and before the pool closes, so they show what the run left behind (idle
connections, connections opened in total). Ctrl-C does not lose the run: the
runner stops the workers and returns the partial result, marked
``interrupted``.

This module knows nothing of argument parsing or of the embedded server;
``httpool._bench.cli`` does.
"""

from __future__ import annotations

import asyncio
import threading
import time
import typing
from collections.abc import Awaitable, Callable

from .._async.connection_pool import AsyncConnectionPool
from .._stats import PoolStats
from .._sync.connection_pool import ConnectionPool
from .config import BenchConfig
from .results import BenchResult, Recorder


class _Tickets:
    """Hands out the run's requests one at a time, to threads or tasks."""

    def __init__(self, total: int) -> None:
        self._left = total
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def cancel(self) -> None:
        with self._lock:
            self._left = 0


def _request_arguments(
    config: BenchConfig,
) -> tuple[str, str, list[tuple[bytes, bytes]] | None, bytes | None, dict[str, typing.Any]]:
    """Method, URL, headers, body and extensions of every request of the run, computed once."""
    headers = list(config.headers) or None
    return config.method, config.url, headers, config.content, config.extensions


# The runners. Each builds one pool, runs the workers on it and returns the result.


def run_sync(config: BenchConfig) -> BenchResult:
    """Run on ``workers`` threads sharing one ``ConnectionPool``."""
    tickets = _Tickets(config.requests)
    recorder = Recorder(config.requests, progress=config.progress, give_up=tickets.cancel)
    method, url, headers, content, extensions = _request_arguments(config)
    success, failure, take = recorder.success, recorder.failure, tickets.take

    def worker(pool: ConnectionPool) -> None:
        while take():
            started = time.perf_counter()
            try:
                response = pool.request(
                    method, url, headers=headers, content=content, extensions=extensions
                )
            except Exception as exc:  # every failure is counted, none is fatal
                failure(exc, started)
            else:
                success(response.status, started, response.extensions.get("http_version", b"?"))

    interrupted = False
    with ConnectionPool(**config.pool_options) as pool:
        # Daemon threads: if Ctrl-C ends the run, a request stuck in the
        # network must not keep the interpreter from exiting.
        threads = [
            threading.Thread(target=worker, args=(pool,), name=f"bench-{i}", daemon=True)
            for i in range(config.workers)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        except KeyboardInterrupt:
            tickets.cancel()
            interrupted = True
        finally:
            recorder.stop()
        # Taken before the pool closes: after Ctrl-C, threads still in a
        # request would fail because of the close, not because of the target.
        return BenchResult.from_recorder(
            config, "sync", recorder, pool.stats(), interrupted=interrupted
        )


async def _run_async(
    config: BenchConfig,
    tickets: _Tickets,
    recorder: Recorder,
    stats: list[PoolStats],
    run_workers: Callable[[Callable[[], Awaitable[None]], int], Awaitable[None]],
) -> None:
    """The body of both async runners; ``run_workers(worker, n)`` runs ``n`` copies
    of ``worker`` concurrently on its runtime and returns when all are done. The
    pool's counters are appended to ``stats``, also when the run is cancelled."""
    method, url, headers, content, extensions = _request_arguments(config)
    success, failure, take = recorder.success, recorder.failure, tickets.take
    async with AsyncConnectionPool(**config.pool_options) as pool:

        async def worker() -> None:
            while take():
                started = time.perf_counter()
                try:
                    response = await pool.request(
                        method, url, headers=headers, content=content, extensions=extensions
                    )
                except Exception as exc:  # every failure is counted, none is fatal
                    failure(exc, started)
                else:
                    success(response.status, started, response.extensions.get("http_version", b"?"))

        try:
            await run_workers(worker, config.workers)
        finally:
            recorder.stop()
            stats.append(pool.stats())


def run_asyncio(config: BenchConfig) -> BenchResult:
    """Run ``workers`` asyncio tasks sharing one ``AsyncConnectionPool``."""

    async def gather(worker: Callable[[], Awaitable[None]], count: int) -> None:
        await asyncio.gather(*(worker() for _ in range(count)))

    tickets = _Tickets(config.requests)
    recorder = Recorder(config.requests, progress=config.progress, give_up=tickets.cancel)
    stats: list[PoolStats] = []
    try:
        asyncio.run(_run_async(config, tickets, recorder, stats, gather))
    except KeyboardInterrupt:
        return _interrupted(config, "asyncio", tickets, recorder, stats)
    return BenchResult.from_recorder(config, "asyncio", recorder, stats[0])


def run_trio(config: BenchConfig) -> BenchResult:
    """Run ``workers`` trio tasks sharing one ``AsyncConnectionPool``."""
    import trio

    async def in_nursery(worker: Callable[[], Awaitable[None]], count: int) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(worker)

    tickets = _Tickets(config.requests)
    recorder = Recorder(config.requests, progress=config.progress, give_up=tickets.cancel)
    stats: list[PoolStats] = []
    try:
        trio.run(_run_async, config, tickets, recorder, stats, in_nursery)
    except BaseException as exc:
        # trio's nurseries wrap a Ctrl-C in an exception group.
        if _holds_keyboard_interrupt(exc):
            return _interrupted(config, "trio", tickets, recorder, stats)
        raise
    return BenchResult.from_recorder(config, "trio", recorder, stats[0])


def _interrupted(
    config: BenchConfig,
    runtime: str,
    tickets: _Tickets,
    recorder: Recorder,
    stats: list[PoolStats],
) -> BenchResult:
    """The partial result of a run that Ctrl-C ended."""
    tickets.cancel()
    recorder.stop()
    return BenchResult.from_recorder(
        config, runtime, recorder, stats[0] if stats else None, interrupted=True
    )


def _holds_keyboard_interrupt(exc: BaseException) -> bool:
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner: typing.Sequence[BaseException] = getattr(exc, "exceptions", ())
    return any(_holds_keyboard_interrupt(child) for child in inner)


RUNNERS: dict[str, Callable[[BenchConfig], BenchResult]] = {
    "sync": run_sync,
    "asyncio": run_asyncio,
    "trio": run_trio,
}
