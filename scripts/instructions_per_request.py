"""CPU instructions per request, counted by valgrind: a noise-free scaling check.

Wall-clock benchmarks on a shared 2-core machine vary by ±30 % from run to
run; instruction counts do not. This runs the pool on the mock backend
(asyncio) under ``valgrind --tool=callgrind`` and prints instructions per
request for:

- 10 vs 10,000 concurrent requests on ``max_connections=10`` (1 and 10 origins);
- sequential requests on a pool holding 10 vs 1,000 idle connections.

Each figure subtracts a run that does the same set-up but no measured
requests, so imports and warm-up do not count.

    python scripts/instructions_per_request.py        # needs valgrind
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import sys
import tempfile

from callgrind import count_instructions

SCENARIO = r"""
import asyncio, sys
from httpool import AsyncConnectionPool, AsyncMockBackend
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
kind, a, b, origins = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

async def concurrent(batch, batches):
    pool = AsyncConnectionPool(network_backend=AsyncMockBackend(reply=OK), max_connections=10)
    urls = [f"http://h{i % origins}.test/" for i in range(max(batch, 10))]
    await asyncio.gather(*(pool.request("GET", u) for u in urls[:10]))
    for _ in range(batches):
        await asyncio.gather(*(pool.request("GET", u) for u in urls[:batch]))

async def idle(connections, requests):
    pool = AsyncConnectionPool(
        network_backend=AsyncMockBackend(reply=OK), max_connections=connections
    )
    await asyncio.gather(
        *(pool.request("GET", f"http://h{i}.test/") for i in range(connections))
    )
    for _ in range(requests):
        await pool.request("GET", "http://h0.test/")

asyncio.run(concurrent(a, b) if kind == "concurrent" else idle(a, b))
"""

REQUESTS = 10_000


def instructions(workdir: str, *args: object) -> int:
    out = os.path.join(workdir, "callgrind." + "-".join(map(str, args)))
    script = os.path.join(workdir, "scenario.py")
    return count_instructions(
        [sys.executable, script, *map(str, args)],
        out,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def main() -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    runs = {
        # name: (measured run, baseline run, requests measured)
        "1 origin, 10 concurrent": (("concurrent", 10, REQUESTS // 10, 1), REQUESTS),
        "1 origin, 10,000 concurrent": (("concurrent", REQUESTS, 1, 1), REQUESTS),
        "10 origins, 10 concurrent": (("concurrent", 10, REQUESTS // 10, 10), REQUESTS),
        "10 origins, 10,000 concurrent": (("concurrent", REQUESTS, 1, 10), REQUESTS),
        "sequential, 10 idle": (("idle", 10, REQUESTS // 2, 1), REQUESTS // 2),
        "sequential, 1,000 idle": (("idle", 1000, REQUESTS // 2, 1), REQUESTS // 2),
    }
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "scenario.py"), "w", encoding="utf-8") as file:
            file.write(SCENARIO)
        jobs: dict[tuple[object, ...], concurrent.futures.Future[int]] = {}
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as executor:
            for (kind, size, count, origins), _ in runs.values():
                for args in ((kind, size, count, origins), (kind, size, 0, origins)):
                    if args not in jobs:
                        jobs[args] = executor.submit(instructions, workdir, *args)
        cost = {}
        for name, ((kind, size, count, origins), requests) in runs.items():
            measured = jobs[kind, size, count, origins].result()
            baseline = jobs[kind, size, 0, origins].result()
            cost[name] = (measured - baseline) / requests
            print(f"{name:<30} {cost[name]:>10,.0f} instructions/request")
    for small, big in (
        ("1 origin, 10 concurrent", "1 origin, 10,000 concurrent"),
        ("10 origins, 10 concurrent", "10 origins, 10,000 concurrent"),
        ("sequential, 10 idle", "sequential, 1,000 idle"),
    ):
        print(f"{big} vs {small}: {cost[big] / cost[small]:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
