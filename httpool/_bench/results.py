"""The outcome of an ``httpool bench`` run: recorded as it goes, reported at the end.

Theory of operation: every finished request is reported to one ``Recorder``
(safe across threads): its latency, status and protocol, or the type of the
exception it raised. A success costs one lock and three counts; the give-up
rule runs only on failures. The progress bar is drawn by a daemon thread of
its own every ``_PROGRESS_INTERVAL`` seconds (it reads the counts under the
same lock and writes outside it), so that it costs the requests nothing and
moves on even while no request finishes (its ETA and rate then show the
stall); it exists only when stderr is a terminal, and ``stop`` ends it and
wipes the line.

The give-up rule: while no request has succeeded, ``_GIVE_UP_AFTER``
failures end the run early (the recorder calls ``give_up``, which stops the
workers drawing requests), since a target that refuses every connection or
fails every TLS handshake would only fail the rest the same way. One success
turns the rule off: a run that fails now and then keeps going.

``BenchResult`` is the picture taken once the workers stopped (or were
interrupted): the numbers, the JSON summary and the human report, with a
latency histogram. Its verdict: ``ok`` (all succeeded), ``some failed``,
``failed`` (none succeeded) or ``interrupted`` (Ctrl-C, partial numbers).
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import math
import sys
import threading
import time
import typing
from collections.abc import Callable

from .._stats import PoolStats
from .config import BenchConfig

# Seconds between two refreshes of the progress bar.
_PROGRESS_INTERVAL = 0.2
_BAR_WIDTH = 20
# Failures, while none has succeeded, that end a run early.
_GIVE_UP_AFTER = 10
_HISTOGRAM_BUCKETS = 10
_HISTOGRAM_WIDTH = 40


class Recorder:
    """Collects the outcome of every request of one run; safe across threads."""

    def __init__(
        self, total: int, *, progress: bool = False, give_up: Callable[[], None] | None = None
    ) -> None:
        self.total = total
        self.latencies: list[float] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.http_versions: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.error_samples: dict[str, str] = {}
        self.gave_up = False
        self.started = time.perf_counter()
        self.finished = self.started
        self.lock = threading.Lock()
        self._give_up = give_up
        self._progress_width = 0
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None
        if progress:
            self._ticker = threading.Thread(target=self._tick, name="bench-progress", daemon=True)
            self._ticker.start()

    @property
    def done(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    def success(self, status: int, started: float, http_version: bytes = b"HTTP/1.1") -> None:
        now = time.perf_counter()
        with self.lock:
            self.latencies.append(now - started)
            self.statuses[status] += 1
            self.http_versions[http_version.decode("ascii", "replace")] += 1

    def failure(self, exc: BaseException, started: float) -> None:
        name = type(exc).__name__
        with self.lock:
            self.errors[name] += 1
            self.error_samples.setdefault(name, str(exc))
            if (
                not self.latencies
                and not self.gave_up
                and self._give_up is not None
                and sum(self.errors.values()) >= _GIVE_UP_AFTER
            ):
                self.gave_up = True
                self._give_up()

    def _tick(self) -> None:
        while not self._stopping.wait(_PROGRESS_INTERVAL):
            with self.lock:
                line = self.progress_line(time.perf_counter()).ljust(self._progress_width)
            # Outside the lock: a terminal that does not keep up must not stall the workers.
            sys.stderr.write("\r" + line)
            sys.stderr.flush()

    def progress_line(self, now: float) -> str:
        """``[####------]  42%  8,400/20,000  4,210 requests/s  ETA 2s  0 failed``."""
        done, total = self.done, self.total
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        fraction = min(done / total, 1.0)
        filled = int(fraction * _BAR_WIDTH)
        eta = _duration((total - done) / rate) if rate > 0 else "?"
        line = (
            f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {fraction * 100:3.0f}%  "
            f"{done:,}/{total:,}  {rate:,.0f} requests/s  ETA {eta}  "
            f"{sum(self.errors.values()):,} failed"
        )
        self._progress_width = max(self._progress_width, len(line))
        return line

    def stop(self) -> None:
        """Mark the end of the run; end the progress bar and wipe its line."""
        with self.lock:
            self.finished = time.perf_counter()
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1.0)  # its last line is out: wipe after it
            if self._progress_width:
                sys.stderr.write("\r" + " " * self._progress_width + "\r")
                sys.stderr.flush()
                self._progress_width = 0


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    if seconds >= 60:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{math.ceil(seconds)}s"


@dataclasses.dataclass
class BenchResult:
    """The numbers of one finished (or interrupted) run."""

    config: BenchConfig
    runtime: str
    elapsed: float
    latencies: list[float]  # seconds, sorted
    statuses: dict[int, int]
    http_versions: dict[str, int]
    errors: dict[str, int]
    error_samples: dict[str, str]
    pool_stats: PoolStats | None
    gave_up: bool = False  # stopped early: no request could succeed
    interrupted: bool = False  # Ctrl-C

    @classmethod
    def from_recorder(
        cls,
        config: BenchConfig,
        runtime: str,
        recorder: Recorder,
        stats: PoolStats | None,
        *,
        interrupted: bool = False,
    ) -> BenchResult:
        # Under the lock: after Ctrl-C, worker threads may still be recording.
        with recorder.lock:
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
                gave_up=recorder.gave_up,
                interrupted=interrupted,
            )

    @property
    def succeeded(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def sent(self) -> int:
        return self.succeeded + self.failed

    @property
    def throughput(self) -> float:
        """Succeeded requests per second of wall time (a failure is no throughput)."""
        return self.succeeded / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def outcome(self) -> str:
        if self.interrupted:
            return "interrupted"
        if not self.failed:
            return "ok"
        return "some failed" if self.succeeded else "failed"

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

    def histogram(self, buckets: int = _HISTOGRAM_BUCKETS) -> list[tuple[float, float, int]]:
        """Latency buckets ``(low_ms, high_ms, count)``, spaced evenly on a log scale
        from the fastest to the slowest request; empty without data."""
        if not self.latencies:
            return []
        low, high = max(self.latencies[0], 1e-7), max(self.latencies[-1], 1e-7)
        if high <= low * 1.001:
            return [(low * 1000, high * 1000, len(self.latencies))]
        ratio = (high / low) ** (1 / buckets)
        edges = [low * ratio**i for i in range(buckets)] + [high]
        counts, start = [], 0
        for edge in edges[1:-1]:
            end = bisect.bisect_right(self.latencies, edge, start)
            counts.append(end - start)
            start = end
        counts.append(len(self.latencies) - start)
        return [(edges[i] * 1000, edges[i + 1] * 1000, counts[i]) for i in range(buckets)]

    def verdict(self) -> str | None:
        """One sentence saying what went wrong; None for a run where all succeeded."""
        first_error = next(iter(self.errors), None)
        cause = "" if first_error is None else f": {first_error}: {self.error_samples[first_error]}"
        if self.interrupted:
            return (
                f"interrupted: partial results, {self.sent} of {self.config.requests} requests done"
            )
        if self.gave_up:
            return (
                f"run failed: stopped early, the first {self.failed} requests all failed "
                f"and none succeeded{cause}"
            )
        if not self.failed:
            return None
        if not self.succeeded:
            return f"run failed: no request succeeded{cause}"
        return f"{self.failed} of {self.sent} requests failed"

    def summary(self) -> dict[str, typing.Any]:
        """Everything as plain JSON-ready data."""
        config = self.config
        return {
            "outcome": self.outcome,
            "verdict": self.verdict(),
            "url": config.url,
            "runtime": self.runtime,
            "method": config.method,
            "requests": config.requests,
            "concurrency": config.workers,
            "max_connections": config.pool_size,
            "http2": config.http2,
            "body_size": len(config.content or b""),
            "sent": self.sent,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "stopped_early": self.gave_up,
            "elapsed_s": round(self.elapsed, 6),
            "throughput_rps": round(self.throughput, 1),
            "latency_ms": self.latency_ms(),
            "latency_histogram_ms": [
                {"low": round(low, 3), "high": round(high, 3), "count": count}
                for low, high, count in self.histogram()
            ],
            "statuses": {str(code): count for code, count in self.statuses.items()},
            "http_versions": self.http_versions,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "pool": None if self.pool_stats is None else dataclasses.asdict(self.pool_stats),
        }

    def report(self) -> str:
        """The human-readable report, one fact per line, the verdict last."""
        config = self.config
        requests = f"{self.sent} sent, {self.succeeded} succeeded, {self.failed} failed"
        if self.sent < config.requests:
            requests += f" (of {config.requests} asked)"
        lines = [
            f"target:      {config.method} {config.url}",
            f"runtime:     {self.runtime}, concurrency {config.workers}, "
            f"max connections {config.pool_size}, http2 {'on' if config.http2 else 'off'}",
            f"requests:    {requests}",
            f"elapsed:     {self.elapsed:.3f} s",
        ]
        latency = self.latency_ms()
        if latency["max"] is None:
            lines.append("throughput:  none (no request succeeded)")
            lines.append("latency ms:  n/a (no request succeeded)")
        else:
            lines.append(f"throughput:  {self.throughput:,.1f} requests/s succeeded")
            lines.append("latency ms:  " + "  ".join(f"{k} {v:.3f}" for k, v in latency.items()))
            lines.extend(self._histogram_lines())
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
        verdict = self.verdict()
        if verdict is not None:
            lines.append(f"result:      {verdict}")
        return "\n".join(lines)

    def _histogram_lines(self) -> list[str]:
        buckets = self.histogram()
        top = max(count for _, _, count in buckets)
        lines = ["latency histogram (ms, log scale):"]
        for low, high, count in buckets:
            bar = "#" * math.ceil(count / top * _HISTOGRAM_WIDTH) if count else ""
            share = count / self.succeeded * 100
            lines.append(
                f"  {low:9.3f} - {high:9.3f}  {bar:<{_HISTOGRAM_WIDTH}}  {count:>9,}  {share:5.1f}%"
            )
        return lines
