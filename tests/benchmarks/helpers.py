"""Helpers of the pool benchmarks.

Every benchmark times one whole batch of requests per round and stores the
cost of one request, in microseconds (median round / requests per round), in
``extra_info["us_per_request"]``, next to the scenario's parameters, which is
what ``scripts/bench_report.py`` reads.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Callable, Coroutine

T = typing.TypeVar("T")

# Rounds are chosen so that a round costs about the same whatever the batch:
# plenty of rounds for small batches, at least three for the largest.
_REQUESTS_PER_BENCHMARK = 20_000
_MIN_ROUNDS = 3
_MAX_ROUNDS = 100


class AsyncioRunner:
    """One event loop kept for a whole benchmark, so that a pool and its
    connections survive from round to round."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coroutine: Coroutine[typing.Any, typing.Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def measure(
    benchmark: typing.Any,
    target: Callable[[], T],
    *,
    requests: int,
    group: str,
    **info: object,
) -> T:
    """Time ``target`` (which sends ``requests`` requests) over several rounds
    after one warm-up round, and record the cost per request."""
    rounds = max(_MIN_ROUNDS, min(_MAX_ROUNDS, _REQUESTS_PER_BENCHMARK // requests))
    benchmark.group = group
    result: T = benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(info)
    benchmark.extra_info["requests_per_round"] = requests
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["us_per_request"] = stats.stats.median / requests * 1e6
    return result
