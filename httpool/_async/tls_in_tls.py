"""TLS run in memory (``ssl.SSLObject`` over two ``MemoryBIO``) on top of any stream.

Theory of operation: ``AsyncTLSCarrier`` wraps a stream whose own
``start_tls`` cannot nest TLS (asyncio before Python 3.11 refuses
``loop.start_tls`` over a TLS transport) and runs the handshake itself;
``AsyncTLSInTLSStream`` is the result. OpenSSL only ever sees memory
buffers: whenever it wants input, the bytes it produced so far are written
to the stream below and the next chunk is read from it. No call into the
``SSLObject`` awaits, so a reader and a writer in two tasks never run
OpenSSL at once. The backends that nest TLS natively (threads, trio,
asyncio 3.11+) never get here; it is the fallback for the one that cannot.
"""

from __future__ import annotations

import functools
import ssl
import typing
from collections.abc import Callable

from .._backends.base import AsyncNetworkStream
from .._exceptions import CONNECT_ERRORS, READ_ERRORS, WRITE_ERRORS, map_exceptions
from .._synchronization import AsyncShieldCancellation

_T = typing.TypeVar("_T")
_READ_SIZE = 65536


class AsyncTLSCarrier(AsyncNetworkStream):
    """A stream whose ``start_tls`` runs TLS in memory over it, nesting inside TLS."""

    def __init__(self, stream: AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
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
        """The handshake, with ``timeout`` for each read and write of it. On
        failure the stream is closed; raises ConnectError / ConnectTimeout."""
        tls = AsyncTLSInTLSStream(self._stream, ssl_context, server_hostname)
        try:
            with map_exceptions(CONNECT_ERRORS):
                await tls.pump(tls.ssl_object.do_handshake, timeout)
        except BaseException:
            with AsyncShieldCancellation():
                await self._stream.aclose()
            raise
        return tls

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class AsyncTLSInTLSStream(AsyncNetworkStream):
    """A TLS session whose records travel over another stream (see the module doc)."""

    def __init__(
        self,
        stream: AsyncNetworkStream,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
    ) -> None:
        self._stream = stream
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )

    async def pump(self, operation: Callable[[], _T], timeout: float | None) -> _T:
        """Run ``operation`` on the session until it needs no more input."""
        while True:
            try:
                result = operation()
            except ssl.SSLWantReadError:
                await self._flush(timeout)
                data = await self._stream.read(_READ_SIZE, timeout)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            await self._flush(timeout)
            return result

    async def _flush(self, timeout: float | None) -> None:
        pending = self._outgoing.read()
        if pending:
            await self._stream.write(pending, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with map_exceptions(READ_ERRORS):
            try:
                return await self.pump(functools.partial(self.ssl_object.read, max_bytes), timeout)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                # close_notify, or the stream below ended without one: end of stream.
                return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        with map_exceptions(WRITE_ERRORS):
            while view:
                written = await self.pump(functools.partial(self.ssl_object.write, view), timeout)
                view = view[written:]

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        return await AsyncTLSCarrier(self).start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "ssl_object":
            return self.ssl_object
        if info == "is_readable":
            return (
                self.ssl_object.pending() > 0
                or self._incoming.pending > 0
                or bool(self._stream.get_extra_info(info))
            )
        return self._stream.get_extra_info(info)
