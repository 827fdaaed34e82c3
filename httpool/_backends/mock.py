"""Scripted backends for tests and benchmarks: bytes in, writes recorded, virtual time.

Theory of operation: a mock backend holds a script, a list of byte chunks
(and exceptions) that the "server" sends. Every connect returns a new stream
that replays its own copy of the script: reads hand out the chunks in order
(split to ``max_bytes``), raise an exception item when they reach it, and
then return ``b""`` for end of stream. With ``reply`` set, every write that
carries a request head (``b" HTTP/1.1\\r\\n"``) queues ``reply`` on that
stream, so one connection can serve any number of keep-alive requests: the
benchmarks run on that.

Time is virtual: ``now()`` starts at 0.0 and moves only through ``advance``
and ``sleep``, so keep-alive expiry is tested without sleeping. The async
stream's read and write yield to the event loop once each (and the async
connect once) so that concurrent tasks interleave as they would on sockets.

The mock knows nothing of HTTP beyond that one marker, and stays cheap: a
deque pop per read, a list append per write.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import typing
from collections import deque
from collections.abc import Iterable

from .._exceptions import READ_ERRORS, ReadError, WriteError, translate
from .._synchronization import current_async_library, trio_runtime
from .base import (
    SOCKET_OPTION,
    AsyncNetworkBackend,
    AsyncNetworkStream,
    NetworkBackend,
    NetworkStream,
)

ScriptItem = bytes | BaseException

_REQUEST_MARK = b" HTTP/1.1\r\n"


class MockSSLObject:
    """What ``get_extra_info("ssl_object")`` returns: just the ALPN answer."""

    __slots__ = ("_http2",)

    def __init__(self, http2: bool) -> None:
        self._http2 = http2

    def selected_alpn_protocol(self) -> str:
        return "h2" if self._http2 else "http/1.1"


_ALPN = {False: MockSSLObject(False), True: MockSSLObject(True)}


class _Script:
    """The state shared by the sync and async streams: pending reads, writes.

    ``_http2`` is read at every ``get_extra_info("ssl_object")``, as httpcore's
    mock does, so a subclass may flip it (in ``start_tls``, say: a proxy that
    speaks HTTP/1.1 and an origin that answers ALPN "h2" inside the tunnel).
    """

    __slots__ = ("_http2", "_pending", "_reply", "closed", "peer_closed", "written")

    def __init__(self, buffer: Iterable[ScriptItem], http2: bool, reply: bytes | None) -> None:
        self._pending: deque[ScriptItem] = deque(buffer)
        self._reply = reply
        self._http2 = http2
        self.written: list[bytes] = []
        self.peer_closed = False
        self.closed = False

    def close_by_peer(self) -> None:
        """Act as if the server hung up: ``is_readable`` turns True."""
        self.peer_closed = True

    def _read(self, max_bytes: int) -> bytes:
        if self.closed:
            raise ReadError("read from a closed stream")
        pending = self._pending
        if not pending:
            return b""
        item = pending.popleft()
        if isinstance(item, BaseException):
            # An OSError comes out as a real backend would raise it.
            raise translate(item, READ_ERRORS)
        if len(item) > max_bytes:
            pending.appendleft(item[max_bytes:])
            return item[:max_bytes]
        return item

    def _write(self, buffer: bytes) -> None:
        if self.closed:
            raise WriteError("write to a closed stream")
        if not buffer:
            return
        data = buffer if type(buffer) is bytes else bytes(buffer)
        self.written.append(data)
        if self._reply is not None and _REQUEST_MARK in data:
            self._pending.append(self._reply)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "ssl_object":
            return _ALPN[bool(self._http2)]
        if info == "is_readable":
            return self.peer_closed
        if info == "client_addr":
            return ("127.0.0.1", 50000)
        if info == "server_addr":
            return ("127.0.0.1", 80)
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pending={len(self._pending)} written={len(self.written)}>"


class MockStream(_Script, NetworkStream):
    """A scripted stream for the sync API."""

    __slots__ = ()

    def __init__(
        self,
        buffer: Iterable[ScriptItem] = (),
        http2: bool = False,
        reply: bytes | None = None,
    ) -> None:
        _Script.__init__(self, buffer, http2, reply)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._read(max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._write(buffer)

    def close(self) -> None:
        self.closed = True

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        return self


class AsyncMockStream(_Script, AsyncNetworkStream):
    """A scripted stream for the async API; each read and write yields once."""

    __slots__ = ("_on_trio",)

    def __init__(
        self,
        buffer: Iterable[ScriptItem] = (),
        http2: bool = False,
        reply: bytes | None = None,
    ) -> None:
        _Script.__init__(self, buffer, http2, reply)
        self._on_trio: bool | None = None

    async def _checkpoint(self) -> None:
        on_trio = self._on_trio
        if on_trio is None:
            on_trio = self._on_trio = current_async_library() == "trio"
        await _yield_once(on_trio)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._checkpoint()
        return self._read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._checkpoint()
        self._write(buffer)

    async def aclose(self) -> None:
        self.closed = True

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        return self


async def _yield_once(on_trio: bool) -> None:
    if on_trio:
        await trio_runtime().checkpoint()
    else:
        await asyncio.sleep(0)


class _MockBackendState:
    """Script, counters and the virtual clock, shared by both backends."""

    __slots__ = ("_buffer", "_http2", "_now", "_reply", "connect_error", "connects")

    def __init__(
        self, buffer: Iterable[ScriptItem] | None, http2: bool, reply: bytes | None
    ) -> None:
        self._buffer: list[ScriptItem] = [] if buffer is None else list(buffer)
        self._http2 = http2
        self._reply = reply
        self._now = 0.0
        self.connect_error: BaseException | None = None
        self.connects = 0

    def _connect_attempt(self) -> None:
        self.connects += 1
        error = self.connect_error
        if error is not None:
            self.connect_error = None
            raise error

    @staticmethod
    def _address(host: str) -> str:
        """No DNS in a mock: an IP literal stands, every name is 127.0.0.1."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return "127.0.0.1"
        return host

    def now(self) -> float:
        """The virtual clock, in seconds since the backend was made."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward."""
        self._now += seconds


class MockBackend(_MockBackendState, NetworkBackend):
    """A sync backend whose every connection replays ``buffer``.

    Args:
        buffer: the chunks (or exceptions) each new stream's reads return.
        http2: the mock TLS layer reports ALPN "h2" instead of "http/1.1".
        reply: queue these bytes on a stream after each request head written.

    Attributes:
        streams: every stream made, in order.
        connects: how many connects were attempted, failed ones included.
        connect_error: raised by the next connect, then cleared.
    """

    __slots__ = ("streams",)

    def __init__(
        self,
        buffer: Iterable[ScriptItem] | None = None,
        http2: bool = False,
        *,
        reply: bytes | None = None,
    ) -> None:
        _MockBackendState.__init__(self, buffer, http2, reply)
        self.streams: list[MockStream] = []

    def _new_stream(self) -> MockStream:
        self._connect_attempt()
        stream = MockStream(self._buffer, self._http2, self._reply)
        self.streams.append(stream)
        return stream

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> NetworkStream:
        return self._new_stream()

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> NetworkStream:
        return self._new_stream()

    def sleep(self, seconds: float) -> None:
        """Advance the virtual clock by ``seconds``; returns at once."""
        self._now += seconds

    def resolve(self, host: str, port: int) -> str:
        """Without DNS: an IP literal as it is, any name ``127.0.0.1``."""
        return self._address(host)


class AsyncMockBackend(_MockBackendState, AsyncNetworkBackend):
    """The async twin of ``MockBackend``; connects and sleeps yield once."""

    __slots__ = ("streams",)

    def __init__(
        self,
        buffer: Iterable[ScriptItem] | None = None,
        http2: bool = False,
        *,
        reply: bytes | None = None,
    ) -> None:
        _MockBackendState.__init__(self, buffer, http2, reply)
        self.streams: list[AsyncMockStream] = []

    async def _new_stream(self) -> AsyncMockStream:
        stream = AsyncMockStream(self._buffer, self._http2, self._reply)
        await stream._checkpoint()
        self._connect_attempt()
        self.streams.append(stream)
        return stream

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        return await self._new_stream()

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        return await self._new_stream()

    async def sleep(self, seconds: float) -> None:
        """Advance the virtual clock by ``seconds``, then yield once."""
        self._now += seconds
        await _yield_once(current_async_library() == "trio")

    async def resolve(self, host: str, port: int) -> str:
        """Without DNS: an IP literal as it is, any name ``127.0.0.1``; yields once."""
        await _yield_once(current_async_library() == "trio")
        return self._address(host)
