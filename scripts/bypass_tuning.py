"""How many connections the pool opens when many origins share a small pool.

Queues N requests at once on a pool of 10 connections (mock backend, asyncio),
spread at random over a number of origins, for several bypass bounds, and
prints connections opened, µs per request and tail latency. This is the
measurement behind the default bound (``max_connections``) in
httpool/_async/assignment.py.

    python scripts/bypass_tuning.py [--requests 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from httpool import AsyncConnectionPool, AsyncMockBackend

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def run(bound: int, origins: int, requests: int) -> None:
    pool = AsyncConnectionPool(network_backend=AsyncMockBackend(reply=REPLY), max_connections=10)
    pool._state._max_bypass = bound  # a private knob, for this measurement only
    rng = random.Random(1)
    urls = [f"http://h{rng.randrange(origins)}.test/" for _ in range(requests)]
    latencies: list[float] = []

    async def one(url: str) -> None:
        start = time.perf_counter()
        await pool.request("GET", url)
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(url) for url in urls))
    elapsed = time.perf_counter() - start
    latencies.sort()
    stats = pool.stats()
    label = "unbounded" if bound >= 10**9 else str(bound)
    print(
        f"{origins:>7} {label:>9} {stats.opened:>7} {elapsed / requests * 1e6:>10.1f}"
        f" {latencies[len(latencies) // 2] * 1e3:>8.1f} {latencies[-1] * 1e3:>8.1f}"
    )


async def main(requests: int) -> None:
    print(f"{requests} requests queued at once on 10 connections")
    print(
        f"{'origins':>7} {'bound':>9} {'opened':>7} {'us/request':>10} {'p50 ms':>8} {'max ms':>8}"
    )
    for origins in (20, 100, 1000):
        for bound in (0, 10, 100, 10**9):
            await run(bound, origins, requests)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    asyncio.run(main(parser.parse_args().requests))
