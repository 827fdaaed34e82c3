"""urllib3's adapter: one ``HTTPConnectionPool`` (blocking, as many connections
as the workload), threads only; no HTTP/2 over cleartext."""

from __future__ import annotations

import urllib.parse

from compare_clients import Workload

RUNTIMES = frozenset({"sync"})


def supports(library: str, workload: Workload) -> bool:
    return workload.runtime in RUNTIMES and not workload.http2


class SyncClient:
    def __init__(self, url: str, workload: Workload) -> None:
        import urllib3

        parts = urllib.parse.urlsplit(url)
        assert parts.hostname is not None
        self._path = parts.path or "/"
        self._pool = urllib3.HTTPConnectionPool(
            parts.hostname, parts.port, maxsize=workload.connections, block=True, retries=False
        )

    def get(self) -> int:
        return len(self._pool.request("GET", self._path).data)

    def stream(self) -> int:
        total = 0
        response = self._pool.request("GET", self._path, preload_content=False)
        for chunk in response.stream(256 * 1024):
            total += len(chunk)
        response.release_conn()
        return total

    def close(self) -> None:
        self._pool.close()


def open_sync(library: str, url: str, workload: Workload) -> SyncClient:
    return SyncClient(url, workload)
