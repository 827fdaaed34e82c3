"""The blocking pool shared by many threads against a real loopback server.

Random early closes, slow responses and pool timeouts; afterwards the
bookkeeping must be consistent and the pool must serve the next request.
"""

from __future__ import annotations

import random
import threading

import httpool
from tests.support.http_server import HTTPServer, server

__all__ = ["server"]


def test_many_threads_share_one_pool(server: HTTPServer) -> None:
    failures: list[BaseException] = []
    timeouts = 0
    lock = threading.Lock()

    def worker(seed: int) -> None:
        nonlocal timeouts
        rng = random.Random(seed)
        for _ in range(25):
            choice = rng.random()
            try:
                if choice < 0.2:
                    with pool.stream("GET", server.url + "/bytes?size=50000") as response:
                        next(iter(response.iter_stream()))  # close early: connection discarded
                elif choice < 0.3:
                    pool.request(
                        "GET",
                        server.url + "/slow?delay=0.02",
                        extensions={"timeout": {"pool": 0.001}},
                    )
                else:
                    response = pool.request("GET", server.url + "/")
                    assert response.content == b"Hello, world!"
            except httpool.PoolTimeout:
                with lock:
                    timeouts += 1
            except BaseException as exc:
                failures.append(exc)

    with httpool.ConnectionPool(max_connections=4) as pool:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failures, failures[:3]
        pool.check_invariants()
        stats = pool.stats()
        assert stats.queued == 0 and stats.streams_in_use == 0
        assert stats.connections <= 4
        assert pool.request("GET", server.url + "/").status == 200
