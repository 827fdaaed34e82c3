"""The per-client workload runners of ``scripts/compare.py``.

Theory of operation: the driver runs every (client, workload) pair in a fresh
process, ``python -m compare_clients CLIENT WORKLOAD URL REQUESTS`` with
``scripts/`` on ``sys.path``, so that no client warms caches or leaves threads
for the next one. The child builds the client's adapter, runs a short warm-up
(connections opened, code paths hot), then the timed run, and prints one JSON
line: ``{"requests", "seconds", "cpu_seconds", "errors", "bytes"}``.
``cpu_seconds`` is ``time.process_time()`` around the timed run only, so
imports and warm-up are not counted.

A workload is written once, in ``_harness``, against a tiny adapter interface
(``get`` reads a whole small body, ``stream`` iterates a large one chunk by
chunk; both return the body's length). One module per client family supplies
the adapters: ``httpool``, ``httpcore`` (also httpcore2, by module name),
``urllib3``, ``aiohttp``, ``httpx`` (also httpx2) and ``raw``, the floor: a
raw-socket client with pre-built request bytes that parses only the
Content-Length of each response. A family without an adapter for a runtime
does not support that runtime's workloads ("-" in the table).

This package imports no client library at import time: the driver imports it
to read ``WORKLOADS`` and ``CLIENTS`` even where a peer is not installed.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Workload:
    """One row of the comparison.

    ``shape``: ``sequential`` (one worker), ``workers`` (``workers`` threads or
    tasks sharing one client, each doing its share of the requests) or
    ``queued`` (batches of ``batch`` requests started at once on a client of
    ``connections`` connections). ``path`` is appended to the server URL; a
    non-empty one names a large body, read with ``stream`` and reported in MB/s.
    """

    name: str
    title: str
    runtime: str  # sync, asyncio or trio
    shape: str
    requests: int  # per run, for --requests 2000 (the default)
    workers: int = 1
    connections: int = 1
    batch: int = 0
    path: str = ""
    http2: bool = False

    @property
    def streams(self) -> bool:
        return bool(self.path)


_KIB64 = "size/65536"
_MIB1 = "size/1048576"

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("sync_seq", "sync, sequential", "sync", "sequential", 2000),
        Workload("sync_8threads", "sync, 8 threads, one pool", "sync", "workers", 2000, 8, 8),
        Workload("asyncio_1", "asyncio, 1 task", "asyncio", "sequential", 2000),
        Workload("asyncio_64", "asyncio, 64 tasks", "asyncio", "workers", 4000, 64, 64),
        Workload("trio_64", "trio, 64 tasks", "trio", "workers", 4000, 64, 64),
        Workload("stream64k_sync", "64 KiB bodies, sync", "sync", "sequential", 1000, path=_KIB64),
        Workload(
            "stream64k_asyncio",
            "64 KiB bodies, asyncio",
            "asyncio",
            "sequential",
            1000,
            path=_KIB64,
        ),
        Workload("stream64k_trio", "64 KiB bodies, trio", "trio", "sequential", 1000, path=_KIB64),
        Workload("stream1m_sync", "1 MiB bodies, sync", "sync", "sequential", 200, path=_MIB1),
        Workload(
            "stream1m_asyncio", "1 MiB bodies, asyncio", "asyncio", "sequential", 200, path=_MIB1
        ),
        Workload("stream1m_trio", "1 MiB bodies, trio", "trio", "sequential", 200, path=_MIB1),
        Workload(
            "queued100", "100 queued on 10 conns, asyncio", "asyncio", "queued", 2000, 1, 10, 100
        ),
        Workload(
            "queued1000",
            "1,000 queued on 10 conns, asyncio",
            "asyncio",
            "queued",
            2000,
            1,
            10,
            1000,
        ),
        Workload(
            "queued10000",
            "10,000 queued on 10 conns, asyncio",
            "asyncio",
            "queued",
            10000,
            1,
            10,
            10000,
        ),
        Workload(
            "h2_64",
            "HTTP/2 (h2c), 64 streams, 1 conn",
            "asyncio",
            "workers",
            4000,
            64,
            1,
            http2=True,
        ),
    ]
}

# Client name -> (adapter module in this package, library it needs or None).
CLIENTS: dict[str, tuple[str, str | None]] = {
    "httpool": ("httpool", "httpool"),
    "raw": ("raw", None),
    "aiohttp": ("aiohttp", "aiohttp"),
    "urllib3": ("urllib3", "urllib3"),
    "httpcore": ("httpcore", "httpcore"),
    "httpcore2": ("httpcore", "httpcore2"),
    "httpx": ("httpx", "httpx"),
    "httpx2": ("httpx", "httpx2"),
}
