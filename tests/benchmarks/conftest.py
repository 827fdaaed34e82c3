"""Fixtures of the pool benchmarks, and the rule that keeps them out of test runs.

The benchmarks report numbers, they assert little; running them takes a
while. So they are collected only when pytest-benchmark is asked to
measure (``--benchmark-only``, as ``nox -s bench`` does, or
``--benchmark-enable``); a plain ``pytest`` run ignores this directory.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest

from httpool._bench.server import BenchServer
from tests.benchmarks.helpers import AsyncioRunner


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    measuring = config.getoption("benchmark_only", False) or config.getoption(
        "benchmark_enable", False
    )
    if not measuring and collection_path.name.startswith("test_"):
        return True
    return None


@pytest.fixture
def aio() -> Iterator[AsyncioRunner]:
    runner = AsyncioRunner()
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def thread_pool(request: pytest.FixtureRequest) -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """An executor of ``request.param`` threads (parametrize it indirectly); the threads
    outlive the rounds, so that a round measures requests, not thread starts."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=request.param) as executor:
        yield executor


@pytest.fixture(scope="session")
def bench_server() -> Iterator[BenchServer]:
    """The embedded bench server, in its own process for the whole session."""
    with BenchServer() as server:
        yield server
