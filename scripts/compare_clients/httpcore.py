"""httpcore's and httpcore2's adapters (the same API; ``library`` names the
module): ``ConnectionPool`` on threads, ``AsyncConnectionPool`` on asyncio
(through anyio, as they ship) and trio."""

from __future__ import annotations

import importlib
import typing

from compare_clients import Workload

RUNTIMES = frozenset({"sync", "asyncio", "trio"})


def supports(library: str, workload: Workload) -> bool:
    return workload.runtime in RUNTIMES


def _pool_options(workload: Workload) -> dict[str, typing.Any]:
    options: dict[str, typing.Any] = {"max_connections": workload.connections}
    if workload.http2:
        options.update(http1=False, http2=True)  # h2c, prior knowledge
    return options


class SyncClient:
    def __init__(self, library: str, url: str, workload: Workload) -> None:
        module: typing.Any = importlib.import_module(library)
        self._url = url
        self._pool = module.ConnectionPool(**_pool_options(workload))

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
    def __init__(self, library: str, url: str, workload: Workload) -> None:
        module: typing.Any = importlib.import_module(library)
        self._url = url
        self._pool = module.AsyncConnectionPool(**_pool_options(workload))

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
    return SyncClient(library, url, workload)


async def open_async(library: str, url: str, workload: Workload) -> AsyncClient:
    return AsyncClient(library, url, workload)
