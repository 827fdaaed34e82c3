"""httpool's adapters: ``ConnectionPool`` on threads, ``AsyncConnectionPool`` on
asyncio and trio, used the way the README shows."""

from __future__ import annotations

import importlib.util
import typing

from compare_clients import Workload

RUNTIMES = frozenset({"sync", "asyncio", "trio"})


def supports(library: str, workload: Workload) -> bool:
    if workload.http2:
        # The HTTP/2 client is being written; until its module exists, "-".
        return importlib.util.find_spec("httpool._async.http2") is not None
    return workload.runtime in RUNTIMES


def _limits(workload: Workload) -> dict[str, typing.Any]:
    if workload.http2:
        return {"max_connections": workload.connections, "http1": False, "http2": True}
    return {"max_connections": workload.connections}


class SyncClient:
    def __init__(self, url: str, workload: Workload) -> None:
        import httpool

        self._url = url
        self._pool = httpool.ConnectionPool(**_limits(workload))

    def get(self) -> int:
        return len(self._pool.request("GET", self._url).content)

    def stream(self) -> int:
        total = 0
        with self._pool.stream("GET", self._url) as response:
            for chunk in response.iter_stream():
                total += len(chunk)
        return total

    def close(self) -> None:
        self._pool.close()


class AsyncClient:
    def __init__(self, url: str, workload: Workload) -> None:
        import httpool

        self._url = url
        self._pool = httpool.AsyncConnectionPool(**_limits(workload))

    async def get(self) -> int:
        return len((await self._pool.request("GET", self._url)).content)

    async def stream(self) -> int:
        total = 0
        async with self._pool.stream("GET", self._url) as response:
            async for chunk in response.aiter_stream():
                total += len(chunk)
        return total

    async def aclose(self) -> None:
        await self._pool.aclose()


def open_sync(library: str, url: str, workload: Workload) -> SyncClient:
    return SyncClient(url, workload)


async def open_async(library: str, url: str, workload: Workload) -> AsyncClient:
    return AsyncClient(url, workload)
