"""The network stream handed over after an HTTP/1.1 protocol switch (101, CONNECT).

Theory of operation: h11 may have read bytes of the new protocol together
with the response head; they are handed out first, then the socket's. Every
other call goes straight to the stream underneath, which the caller owns from
now on. No byte is dropped: ``start_tls`` while some of those bytes are still
unread (a tunnel whose far end spoke before our ClientHello, which no TLS
server does) is refused with ``ConnectError`` instead of wrapping the socket
behind them. Nothing here knows HTTP.
"""

from __future__ import annotations

import ssl
import typing

from .._backends.base import AsyncNetworkStream
from .._exceptions import ConnectError


class AsyncHTTP11UpgradeStream(AsyncNetworkStream):
    """The stream after a protocol switch (101, CONNECT): the bytes h11 had
    buffered past the response head come first, then the socket's."""

    def __init__(self, stream: AsyncNetworkStream, leading_data: bytes) -> None:
        self._stream = stream
        self._leading_data = leading_data

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._leading_data:
            data = self._leading_data[:max_bytes]
            self._leading_data = self._leading_data[max_bytes:]
            return data
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        if self._leading_data:
            early = len(self._leading_data)
            await self._stream.aclose()
            raise ConnectError(
                f"The server sent {early} bytes before the TLS handshake began: not TLS."
            )
        return await self._stream.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable" and self._leading_data:
            return True
        return self._stream.get_extra_info(info)
