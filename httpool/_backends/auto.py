"""The default async backend: asyncio or trio, whichever runs the first call.

Theory of operation: the choice is made once, on first use, from the running
library, and the chosen backend then gets every call. trio is imported only
when trio is the one running.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._synchronization import current_async_library
from .base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream

__all__ = ["AutoBackend"]


class AutoBackend(AsyncNetworkBackend):
    """Delegates to ``AsyncIOBackend`` or ``TrioBackend``, picked on first use."""

    __slots__ = ("_backend",)

    def __init__(self) -> None:
        self._backend: AsyncNetworkBackend | None = None

    def _pick(self) -> AsyncNetworkBackend:
        if current_async_library() == "trio":
            from .trio import TrioBackend

            self._backend = TrioBackend()
        else:
            from .asyncio import AsyncIOBackend

            self._backend = AsyncIOBackend()
        return self._backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        backend = self._backend or self._pick()
        return await backend.connect_tcp(
            host,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        backend = self._backend or self._pick()
        return await backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        backend = self._backend or self._pick()
        await backend.sleep(seconds)
