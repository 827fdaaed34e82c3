"""aiohttp's adapter: one ``ClientSession`` on a ``TCPConnector`` limited to the
workload's connections; asyncio only, HTTP/1.1 only."""

from __future__ import annotations

import typing

from compare_clients import Workload

RUNTIMES = frozenset({"asyncio"})


def supports(library: str, workload: Workload) -> bool:
    return workload.runtime in RUNTIMES and not workload.http2


class AsyncClient:
    def __init__(self, url: str, session: typing.Any) -> None:
        self._url = url
        self._session = session

    async def get(self) -> int:
        async with self._session.get(self._url) as response:
            return len(await response.read())

    async def stream(self) -> int:
        total = 0
        async with self._session.get(self._url) as response:
            async for chunk in response.content.iter_any():
                total += len(chunk)
        return total

    async def aclose(self) -> None:
        await self._session.close()


async def open_async(library: str, url: str, workload: Workload) -> AsyncClient:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=workload.connections)
    # No timeouts, like the other clients (aiohttp's default is 5 minutes).
    timeout = aiohttp.ClientTimeout(total=None)
    return AsyncClient(url, aiohttp.ClientSession(connector=connector, timeout=timeout))
