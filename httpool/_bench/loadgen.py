"""The load generator: one runner per runtime, and the statistics they share.

Theory of operation: a run sends ``requests`` requests through ONE pool with
``concurrency`` workers (threads for ``sync``, tasks for ``asyncio`` and
``trio``). Workers draw tickets from a shared ``_Tickets`` counter
until none is left, so the total is exact whatever the scheduling, and an
interrupted run stops drawing at once. Each finished request is reported to
one ``Recorder``: its latency and status, or the type of the exception it
raised. Nothing is retried or hidden; a request counts as failed when the
pool raised, whatever the status of the responses that did arrive.

The pool's own counters (``pool.stats()``) are read after the last request
and before the pool closes, so they show what the run left behind (idle
connections, connections opened in total).

This module knows nothing of argument parsing or of the embedded server;
``httpool._bench.cli`` does.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import ssl
import sys
import threading
import time
import typing
from collections.abc import Awaitable, Callable

from .._async.connection_pool import AsyncConnectionPool
from .._exceptions import UnsupportedProtocol
from .._stats import PoolStats
from .._sync.connection_pool import ConnectionPool
from .._urls import URL

RUNTIMES = ("sync", "asyncio", "trio")
# Seconds between two refreshes of the progress line.
_PROGRESS_INTERVAL = 0.2


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to send, how hard, and through what kind of pool."""

    url: str
    requests: int
    concurrency: int
    method: str = "GET"
    body_size: int = 0
    max_connections: int | None = None  # None: as many as workers
    http2: bool = False  # https: offered by ALPN; http: with prior knowledge (h2c)
    timeout: float | None = None
    progress: bool = False  # refresh a progress line on stderr
    ssl_context: ssl.SSLContext | None = None  # None: the pool's default (verifying)

    @property
    def pool_size(self) -> int:
        return self.max_connections or self.concurrency

    @property
    def pool_options(self) -> dict[str, typing.Any]:
        """Keyword arguments for the run's pool."""
        options: dict[str, typing.Any] = {"max_connections": self.pool_size, "http2": self.http2}
        if self.http2 and URL(self.url).scheme == b"http":
            # Cleartext has no ALPN: HTTP/2 there means prior knowledge.
            options["http1"] = False
        if self.ssl_context is not None:
            options["ssl_context"] = self.ssl_context
        return options

    @property
    def content(self) -> bytes | None:
        return b"x" * self.body_size if self.body_size else None

    @property
    def extensions(self) -> dict[str, typing.Any]:
        if self.timeout is None:
            return {}
        limits = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout)
        return {"timeout": limits}


def check_url(url: str) -> None:
    """Reject a URL the pool could never send, before any worker starts.

    Raises the error sending to it would raise (``UnsupportedProtocol``,
    ``LocalProtocolError``), and ``UnsupportedProtocol`` for a scheme other
    than http or https.
    """
    scheme = URL(url).origin.scheme
    if scheme not in (b"http", b"https"):
        raise UnsupportedProtocol(
            f"URL {url!r}: the load generator speaks http and https, not {scheme.decode()!r}"
        )


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


class Recorder:
    """Collects the outcome of every request of one run; safe across threads."""

    def __init__(self, total: int, *, progress: bool = False) -> None:
        self.total = total
        self.latencies: list[float] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.http_versions: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.error_samples: dict[str, str] = {}
        self.started = time.perf_counter()
        self.finished = self.started
        self._lock = threading.Lock()
        self._progress = progress
        self._next_progress = self.started + _PROGRESS_INTERVAL
        self._progress_width = 0

    @property
    def done(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    def success(self, status: int, started: float, http_version: bytes = b"HTTP/1.1") -> None:
        now = time.perf_counter()
        with self._lock:
            self.latencies.append(now - started)
            self.statuses[status] += 1
            self.http_versions[http_version.decode("ascii", "replace")] += 1
            if self._progress and now >= self._next_progress:
                self._show_progress(now)

    def failure(self, exc: BaseException, started: float) -> None:
        now = time.perf_counter()
        name = type(exc).__name__
        with self._lock:
            self.errors[name] += 1
            self.error_samples.setdefault(name, str(exc))
            if self._progress and now >= self._next_progress:
                self._show_progress(now)

    def _show_progress(self, now: float) -> None:
        self._next_progress = now + _PROGRESS_INTERVAL
        done = self.done
        rate = done / (now - self.started) if now > self.started else 0.0
        line = f"\r{done}/{self.total} requests, {rate:,.0f} requests/s"
        if self.errors:
            line += f", {sum(self.errors.values())} errors"
        self._progress_width = max(self._progress_width, len(line))
        sys.stderr.write(line.ljust(self._progress_width))
        sys.stderr.flush()

    def stop(self) -> None:
        """Mark the end of the run and wipe the progress line."""
        self.finished = time.perf_counter()
        if self._progress_width:
            sys.stderr.write("\r" + " " * self._progress_width + "\r")
            sys.stderr.flush()
            self._progress_width = 0


@dataclasses.dataclass
class BenchResult:
    """The numbers of one finished run."""

    config: BenchConfig
    runtime: str
    elapsed: float
    latencies: list[float]  # seconds, sorted
    statuses: dict[int, int]
    http_versions: dict[str, int]
    errors: dict[str, int]
    error_samples: dict[str, str]
    pool_stats: PoolStats | None

    @classmethod
    def from_recorder(
        cls, config: BenchConfig, runtime: str, recorder: Recorder, stats: PoolStats | None
    ) -> BenchResult:
        return cls(
            config=config,
            runtime=runtime,
            elapsed=recorder.finished - recorder.started,
            latencies=sorted(recorder.latencies),
            statuses=dict(sorted(recorder.statuses.items())),
            http_versions=dict(sorted(recorder.http_versions.items())),
            errors=dict(recorder.errors.most_common()),
            error_samples=dict(recorder.error_samples),
            pool_stats=stats,
        )

    @property
    def succeeded(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        """Completed requests (failed ones included) per second of wall time."""
        done = self.succeeded + self.failed
        return done / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """The latency in seconds at percentile ``q`` (nearest rank), None without data."""
        if not self.latencies:
            return None
        rank = max(1, math.ceil(q / 100 * len(self.latencies)))
        return self.latencies[rank - 1]

    def latency_ms(self) -> dict[str, float | None]:
        points = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
        result: dict[str, float | None] = {}
        for name, q in points.items():
            value = self.percentile(q)
            result[name] = None if value is None else round(value * 1000, 3)
        return result

    def summary(self) -> dict[str, typing.Any]:
        """Everything as plain JSON-ready data."""
        config = self.config
        return {
            "url": config.url,
            "runtime": self.runtime,
            "method": config.method,
            "requests": config.requests,
            "concurrency": config.concurrency,
            "max_connections": config.pool_size,
            "http2": config.http2,
            "body_size": config.body_size,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed, 6),
            "throughput_rps": round(self.throughput, 1),
            "latency_ms": self.latency_ms(),
            "statuses": {str(code): count for code, count in self.statuses.items()},
            "http_versions": self.http_versions,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "pool": None if self.pool_stats is None else dataclasses.asdict(self.pool_stats),
        }

    def report(self) -> str:
        """The human-readable report, one fact per line."""
        config = self.config
        lines = [
            f"target:      {config.method} {config.url}",
            f"runtime:     {self.runtime}, concurrency {config.concurrency}, "
            f"max connections {config.pool_size}, http2 {'on' if config.http2 else 'off'}",
            f"requests:    {config.requests} sent, {self.succeeded} succeeded, "
            f"{self.failed} failed",
            f"elapsed:     {self.elapsed:.3f} s",
            f"throughput:  {self.throughput:,.1f} requests/s",
        ]
        latency = self.latency_ms()
        if latency["max"] is None:
            lines.append("latency ms:  n/a (no request succeeded)")
        else:
            lines.append("latency ms:  " + "  ".join(f"{k} {v:.3f}" for k, v in latency.items()))
        statuses = ", ".join(f"{code}: {count}" for code, count in self.statuses.items())
        lines.append(f"statuses:    {statuses or 'none'}")
        versions = ", ".join(f"{name}: {count}" for name, count in self.http_versions.items())
        lines.append(f"protocols:   {versions or 'none'}")
        if not self.errors:
            lines.append("errors:      none")
        else:
            lines.append("errors:")
            for name, count in self.errors.items():
                lines.append(f"  {name}: {count} (e.g. {self.error_samples[name]!r})")
        if self.pool_stats is not None:
            fields = dataclasses.asdict(self.pool_stats)
            lines.append("pool:        " + ", ".join(f"{k} {v}" for k, v in fields.items()))
        return "\n".join(lines)


# The runners. Each builds one pool, runs the workers on it and returns the result.


def run_sync(config: BenchConfig) -> BenchResult:
    """Run on ``concurrency`` threads sharing one ``ConnectionPool``."""
    tickets = _Tickets(config.requests)
    recorder = Recorder(config.requests, progress=config.progress)
    content, extensions = config.content, config.extensions

    def worker(pool: ConnectionPool) -> None:
        while tickets.take():
            started = time.perf_counter()
            try:
                response = pool.request(
                    config.method, config.url, content=content, extensions=extensions
                )
            except Exception as exc:  # every failure is counted, none is fatal
                recorder.failure(exc, started)
            else:
                recorder.success(
                    response.status, started, response.extensions.get("http_version", b"?")
                )

    with ConnectionPool(**config.pool_options) as pool:
        # Daemon threads: if Ctrl-C ends the run, a request stuck in the
        # network must not keep the interpreter from exiting.
        threads = [
            threading.Thread(target=worker, args=(pool,), name=f"bench-{i}", daemon=True)
            for i in range(config.concurrency)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        except BaseException:
            tickets.cancel()
            raise
        finally:
            recorder.stop()
        stats = pool.stats()
    return BenchResult.from_recorder(config, "sync", recorder, stats)


async def _run_async(
    config: BenchConfig,
    runtime: str,
    run_workers: Callable[[Callable[[], Awaitable[None]], int], Awaitable[None]],
) -> BenchResult:
    """The body of both async runners; ``run_workers(worker, n)`` runs ``n`` copies
    of ``worker`` concurrently on its runtime and returns when all are done."""
    tickets = _Tickets(config.requests)
    recorder = Recorder(config.requests, progress=config.progress)
    content, extensions = config.content, config.extensions
    async with AsyncConnectionPool(**config.pool_options) as pool:

        async def worker() -> None:
            while tickets.take():
                started = time.perf_counter()
                try:
                    response = await pool.request(
                        config.method, config.url, content=content, extensions=extensions
                    )
                except Exception as exc:  # every failure is counted, none is fatal
                    recorder.failure(exc, started)
                else:
                    recorder.success(
                        response.status, started, response.extensions.get("http_version", b"?")
                    )

        try:
            await run_workers(worker, config.concurrency)
        finally:
            recorder.stop()
        stats = pool.stats()
    return BenchResult.from_recorder(config, runtime, recorder, stats)


def run_asyncio(config: BenchConfig) -> BenchResult:
    """Run ``concurrency`` asyncio tasks sharing one ``AsyncConnectionPool``."""

    async def gather(worker: Callable[[], Awaitable[None]], count: int) -> None:
        await asyncio.gather(*(worker() for _ in range(count)))

    return asyncio.run(_run_async(config, "asyncio", gather))


def run_trio(config: BenchConfig) -> BenchResult:
    """Run ``concurrency`` trio tasks sharing one ``AsyncConnectionPool``."""
    import trio

    async def in_nursery(worker: Callable[[], Awaitable[None]], count: int) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(worker)

    try:
        return trio.run(_run_async, config, "trio", in_nursery)
    except BaseException as exc:
        # trio's nurseries wrap a Ctrl-C in an exception group; callers
        # expect the plain KeyboardInterrupt that the other runtimes raise.
        if _holds_keyboard_interrupt(exc):
            raise KeyboardInterrupt from None
        raise


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
