"""The blocking pool shared by many threads against a real loopback server.

64 threads, each with its own seeded RNG, mix plain keep-alive requests with
the paths that stress the pool's bookkeeping: responses closed after their
first chunk (the connection is discarded), requests given up by a tiny pool
timeout (a waiter that leaves the queue, possibly at the instant it is handed
a connection) or a tiny read timeout (a connection that dies under a
request), ``Connection: close`` responses and uploads. A checker thread runs
``check_invariants()`` all along; afterwards nothing may be active or
queued, the limit must hold, and the pool must serve the next request.
"""

from __future__ import annotations

import random
import threading
import time

import httpool
from tests.support.http_server import HTTPServer

THREADS = 64
ROUNDS = 40
MAX_CONNECTIONS = 8
# What a request given up on purpose raises; anything else is a failure.
EXPECTED = (httpool.PoolTimeout, httpool.ReadTimeout)


def _one_request(pool: httpool.ConnectionPool, url: str, rng: random.Random) -> None:
    choice = rng.random()
    if choice < 0.15:
        with pool.stream("GET", url + "/bytes?size=200000") as response:
            next(iter(response.iter_stream()))  # closed early: the connection is discarded
    elif choice < 0.25:
        pool.request("GET", url + "/slow?delay=0.01", extensions={"timeout": {"pool": 0.001}})
    elif choice < 0.32:
        pool.request("GET", url + "/slow?delay=0.05", extensions={"timeout": {"read": 0.005}})
    elif choice < 0.40:
        assert pool.request("GET", url + "/close").content == b"Closing."
    elif choice < 0.50:
        body = rng.randbytes(rng.randrange(1, 100000))
        assert pool.request("POST", url + "/echo", content=body).content == body
    else:
        assert pool.request("GET", url + "/").content == b"Hello, world!"


def test_many_threads_share_one_pool(server: HTTPServer) -> None:
    failures: list[BaseException] = []
    expected: list[BaseException] = []
    violations: list[AssertionError] = []
    done = threading.Event()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(ROUNDS):
            try:
                _one_request(pool, server.url, rng)
            except EXPECTED as exc:
                expected.append(exc)
            except BaseException as exc:
                failures.append(exc)

    def checker() -> None:
        while not done.wait(0.005):
            try:
                pool.check_invariants()
                assert pool.stats().connections <= MAX_CONNECTIONS
            except AssertionError as exc:
                violations.append(exc)

    started = time.monotonic()
    with httpool.ConnectionPool(max_connections=MAX_CONNECTIONS) as pool:
        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(THREADS)]
        watcher = threading.Thread(target=checker)
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        done.set()
        watcher.join(10)
        assert not any(thread.is_alive() for thread in [*threads, watcher]), "a thread hung"
        assert not failures, failures[:3]
        assert not violations, violations[:3]
        pool.check_invariants()
        stats = pool.stats()
        assert stats.queued == 0 and stats.streams_in_use == 0 and stats.active == 0
        assert stats.connections <= MAX_CONNECTIONS
        assert stats.requests >= THREADS * ROUNDS - len(expected)
        assert pool.request("GET", server.url + "/").status == 200
    assert pool.stats().connections == 0
    # Both ways of giving up happened, so the test exercised what it claims.
    assert {type(exc) for exc in expected} == set(EXPECTED)
    assert time.monotonic() - started < 30
