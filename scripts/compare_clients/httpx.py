"""httpx's and httpx2's adapters (``library`` names the module): ``Client`` on
threads, ``AsyncClient`` on asyncio and trio, with as many connections as the
workload and keep-alive for all of them."""

from __future__ import annotations

import importlib
import typing

from compare_clients import Workload

RUNTIMES = frozenset({"sync", "asyncio", "trio"})


def supports(library: str, workload: Workload) -> bool:
    return workload.runtime in RUNTIMES


def _options(module: typing.Any, workload: Workload) -> dict[str, typing.Any]:
    limits = module.Limits(
        max_connections=workload.connections, max_keepalive_connections=workload.connections
    )
    # No timeouts, like the other clients: httpx's default 5 s pool timeout
    # would fail requests queued behind thousands of others.
    options: dict[str, typing.Any] = {"limits": limits, "timeout": None}
    if workload.http2:
        options.update(http1=False, http2=True)  # h2c, prior knowledge
    return options


class SyncClient:
    def __init__(self, library: str, url: str, workload: Workload) -> None:
        module: typing.Any = importlib.import_module(library)
        self._url = url
        self._client = module.Client(**_options(module, workload))

    def get(self) -> int:
        return len(self._client.get(self._url).content)

    def stream(self) -> int:
        total = 0
        with self._client.stream("GET", self._url) as response:
            for chunk in response.iter_bytes():
                total += len(chunk)
        return total

    def close(self) -> None:
        self._client.close()


class AsyncClient:
    def __init__(self, library: str, url: str, workload: Workload) -> None:
        module: typing.Any = importlib.import_module(library)
        self._url = url
        self._client = module.AsyncClient(**_options(module, workload))

    async def get(self) -> int:
        return len((await self._client.get(self._url)).content)

    async def stream(self) -> int:
        total = 0
        async with self._client.stream("GET", self._url) as response:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
        return total

    async def aclose(self) -> None:
        await self._client.aclose()


def open_sync(library: str, url: str, workload: Workload) -> SyncClient:
    return SyncClient(library, url, workload)


async def open_async(library: str, url: str, workload: Workload) -> AsyncClient:
    return AsyncClient(library, url, workload)
