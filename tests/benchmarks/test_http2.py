"""HTTP/2 next to HTTP/1.1: 1, 64 and 1,000 concurrent requests on loopback.

Both protocols go to the same server, so the rows compare the client side:
nginx when it is installed (``nox -s interop`` installs it; its h2c port
speaks HTTP/2 with prior knowledge), else the embedded bench server, which
then runs twice (HTTP/1.1, and h2c built on the h2 library; that one is
slower than nginx, so the HTTP/2 rows are then partly the server's cost).
The pool allows 10 connections either way: HTTP/1.1 needs all ten for 64
concurrent requests; HTTP/2 carries them on one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator

import pytest

from httpool import AsyncConnectionPool, ConnectionPool
from httpool._bench.server import BenchServer
from tests.benchmarks.helpers import AsyncioRunner, measure
from tests.interop.servers import Nginx, find_nginx

POOL_SIZE = 10
BATCHES = [1, 64, 1_000]
PROTOCOLS = ["HTTP/1.1", "HTTP/2"]


class Target:
    def __init__(self, server: str, http11_url: str, h2c_url: str) -> None:
        self.server = server
        self.urls = {"HTTP/1.1": http11_url, "HTTP/2": h2c_url}


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    if find_nginx() is not None:
        with Nginx() as nginx:
            yield Target("nginx", nginx.http_url + "small.txt", nginx.h2c_url + "small.txt")
        return
    with BenchServer() as http11, BenchServer(h2c=True) as h2c:
        yield Target("embedded", http11.url, h2c.url)


def _pool_options(protocol: str) -> dict[str, object]:
    if protocol == "HTTP/2":
        return {"max_connections": POOL_SIZE, "http1": False, "http2": True}
    return {"max_connections": POOL_SIZE}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("batch", BATCHES)
def test_asyncio(
    benchmark: object, aio: AsyncioRunner, target: Target, protocol: str, batch: int
) -> None:
    pool = AsyncConnectionPool(**_pool_options(protocol))  # type: ignore[arg-type]
    url = target.urls[protocol]

    async def one() -> int:
        response = await pool.request("GET", url)
        assert response.extensions["http_version"] == protocol.encode()
        return response.status

    async def run_batch() -> list[int]:
        return list(await asyncio.gather(*(one() for _ in range(batch))))

    statuses = measure(
        benchmark,
        lambda: aio.run(run_batch()),
        requests=batch,
        group=f"HTTP/2 vs HTTP/1.1 ({target.server}), asyncio",
        kind="protocol",
        backend=f"loopback {target.server}",
        runtime="asyncio",
        protocol=protocol,
        batch=batch,
        origins=1,
    )
    assert statuses == [200] * batch
    assert pool.stats().connections <= POOL_SIZE
    aio.run(pool.aclose())


@pytest.fixture
def threads() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(BATCHES)) as executor:
        yield executor


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("batch", BATCHES)
def test_sync_threads(
    benchmark: object,
    threads: concurrent.futures.ThreadPoolExecutor,
    target: Target,
    protocol: str,
    batch: int,
) -> None:
    pool = ConnectionPool(**_pool_options(protocol))  # type: ignore[arg-type]
    url = target.urls[protocol]

    def one(_: int) -> int:
        return pool.request("GET", url).status

    statuses = measure(
        benchmark,
        lambda: list(threads.map(one, range(batch))),
        requests=batch,
        group=f"HTTP/2 vs HTTP/1.1 ({target.server}), sync",
        kind="protocol",
        backend=f"loopback {target.server}",
        runtime="sync",
        protocol=protocol,
        batch=batch,
        origins=1,
    )
    assert statuses == [200] * batch
    pool.close()
