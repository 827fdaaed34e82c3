"""The asyncio backend, built on the event loop's protocols and transports.

Theory of operation: each connection is one ``_StreamProtocol`` (the loop
feeds it bytes) and one transport (we write to it). The protocol keeps the
``bytes`` objects the loop delivered, in arrival order, and one future for
the single reader waiting on it. Invariants:

- The body of a large response is copied once, by the kernel into the
  ``bytes`` the transport allocates: a read that asks for at least a whole
  chunk gets that very object. Only a read smaller than the chunk at the
  front slices it (one copy of the part handed out; an offset, not a copy,
  remembers the rest). A read answers from one chunk at most; joining chunks
  would copy them again.
- A read that the buffer, the end of stream or a recorded error can answer
  returns without suspending, and creates no future and no timer. Only an
  empty buffer makes ``read`` wait, and only a finite timeout arms a
  ``loop.call_later`` timer, which ends the wait with "timed out" (it does not
  cancel the task, so a real cancellation is never mistaken for a timeout).
- Flow control both ways: above 256 KiB buffered the protocol pauses the
  transport's reading, and resumes it once reads have drained the buffer to
  64 KiB; ``write`` hands bytes to the transport and suspends only while the
  transport has paused us (its write buffer is over its high-water mark).
- ``aclose`` never suspends: it closes (or aborts) the transport
  synchronously, so a cancellation cannot land in the middle of it. A TLS
  transport is aborted: a graceful TLS close waits for the peer's
  ``close_notify`` in the background and can outlive the event loop, leaking
  its socket. HTTP framing never relies on ``close_notify``.
- A connect or TLS handshake timeout is a timer that cancels the task; only
  that cancellation, not one from outside, is turned into ``ConnectTimeout``.
- ``start_tls`` keeps the protocol: the loop wraps the transport in TLS and
  the new stream reads the same protocol's buffer, now fed decrypted bytes.
  No byte is ever dropped there. The loop may deliver the server's first
  application data (an HTTP/2 server's SETTINGS, sent right after its
  Finished) to the protocol *before* ``loop.start_tls`` returns, so nothing
  is cleared after the handshake. Bytes already buffered *before* it are the
  server speaking before our ClientHello, which no TLS server does: the
  handshake is refused with ``ConnectError`` (a socket backend would feed
  them to OpenSSL and fail the same way), never silently discarded.
- The protocol knows whether it is behind TLS. On plain TCP a FIN leaves our
  half open (``eof_received`` returns True), as on the other runtimes. The
  TLS layer closes the transport after the peer's EOF whatever we return,
  so there ``eof_received`` returns None; a write that comes after that EOF
  while decrypted bytes are still unread is accepted and dropped, as the
  kernel accepts one on a half-closed socket, so that the reader gets to see
  those bytes (an HTTP/2 GOAWAY sent just before the FIN) instead of a
  ``WriteError``.

Errors come out as httpool's: ``OSError`` through the ``_exceptions`` tables.
Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
import typing
from collections import deque
from collections.abc import Coroutine, Iterable

from .._exceptions import (
    CONNECT_ERRORS,
    ConnectError,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
    translate,
)
from .base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream
from .sync import ReadableProbe

_T = typing.TypeVar("_T")

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
# asyncio reads None as "60 seconds"; the limit is ours to enforce.
_NO_HANDSHAKE_LIMIT = 7 * 24 * 3600.0


def _wake(waiter: asyncio.Future[bool] | None, result: bool) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(result)


class _StreamProtocol(asyncio.Protocol):
    """Buffers what the loop delivers; wakes the one waiting reader or writer."""

    __slots__ = (
        "buffered",
        "chunks",
        "eof",
        "exc",
        "loop",
        "lost",
        "offset",
        "read_waiter",
        "reading_paused",
        "tls",
        "transport",
        "write_waiter",
        "writing_paused",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        # Unread bytes: the chunks as delivered, of which the first has
        # already been read up to ``offset``; ``buffered`` counts what is left.
        self.chunks: deque[bytes] = deque()
        self.offset = 0
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.exc: BaseException | None = None
        self.read_waiter: asyncio.Future[bool] | None = None
        self.write_waiter: asyncio.Future[bool] | None = None
        self.reading_paused = False
        self.writing_paused = False
        # Set once the loop wraps the transport in TLS.
        self.tls = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not data:  # pragma: no cover - not from the stdlib loops
            return  # an empty chunk would read as end of stream
        if type(data) is not bytes:  # pragma: no cover - the stdlib loops give bytes
            data = bytes(data)
        self.chunks.append(data)
        self.buffered += len(data)
        # ``transport`` is None while a TLS handshake runs (see start_tls): the
        # bytes are kept, and reading is paused, if need be, once it is over.
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        _wake(self.read_waiter, True)

    def eof_received(self) -> bool | None:
        self.eof = True
        _wake(self.read_waiter, True)
        if self.tls:
            # The TLS layer closes the transport whatever we say (and logs a
            # warning if we ask otherwise); AsyncIOStream.write covers the
            # GOAWAY case below for it.
            return None
        # Keep our half open, as a socket does on the other runtimes: an
        # HTTP/2 server's GOAWAY and FIN may arrive while another stream is
        # being written, and that write must not find the transport gone
        # before the GOAWAY is read. The connection's owner closes it.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self.exc = exc
        _wake(self.read_waiter, True)
        _wake(self.write_waiter, True)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        _wake(self.write_waiter, True)

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` from the front chunk; the buffer must not be empty."""
        chunks = self.chunks
        chunk = chunks[0]
        start = self.offset
        end = start + max_bytes
        if end >= len(chunk):
            chunks.popleft()
            self.offset = 0
            data = chunk[start:] if start else chunk
        else:
            self.offset = end
            data = chunk[start:end]
        self.buffered -= len(data)
        if self.reading_paused and self.buffered <= _LOW_WATER:
            self.reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        return data


class AsyncIOStream(AsyncNetworkStream):
    """A connection on an asyncio transport, plain or TLS."""

    __slots__ = ("_closed", "_protocol", "_readable", "_tls", "_transport")

    # write() hands the whole buffer to the transport before it can suspend.
    whole_writes = True
    # The selector and TLS transports receive up to 256 KiB at a time: reads
    # this large get those chunks whole (see "Invariants" above).
    read_size = 256 * 1024

    def __init__(
        self, transport: asyncio.Transport, protocol: _StreamProtocol, tls: bool = False
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._tls = tls
        self._closed = False
        self._readable: ReadableProbe | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Return up to ``max_bytes`` bytes, or ``b""`` at end of stream.

        Raises:
            ReadTimeout: nothing arrived within ``timeout`` seconds.
            ReadError: the connection was reset, or this stream is closed.
        """
        protocol = self._protocol
        if not protocol.buffered and not protocol.eof and not self._closed:
            # Inline: a coroutine of its own cost some 800 instructions per wait.
            if protocol.read_waiter is not None:
                raise RuntimeError("read() called while another task is reading this stream")
            loop = protocol.loop
            waiter: asyncio.Future[bool] = loop.create_future()
            protocol.read_waiter = waiter
            try:
                if timeout is None:
                    await waiter
                else:
                    timer = loop.call_later(timeout, _wake, waiter, False)
                    try:
                        await waiter
                    finally:
                        timer.cancel()
            finally:
                protocol.read_waiter = None
            if not waiter.result() and not protocol.buffered and not protocol.eof:
                raise ReadTimeout(f"no data received within {timeout} seconds")
        if self._closed:
            raise ReadError("read from a closed stream")
        if protocol.buffered:
            return protocol.take(max_bytes)
        if protocol.exc is not None:
            raise ReadError(str(protocol.exc) or type(protocol.exc).__name__) from protocol.exc
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer``; wait only while the transport is paused.

        Raises:
            WriteTimeout: the transport stayed paused for ``timeout`` seconds.
            WriteError: the connection is closed or was lost.
        """
        if not buffer:
            return
        protocol = self._protocol
        if self._closed or protocol.lost or self._transport.is_closing():
            if (
                self._tls
                and not self._closed
                and protocol.eof
                and protocol.exc is None
                and protocol.buffered
            ):
                # The peer closed cleanly and what it said last is unread (see
                # "Invariants"): let the reader find it, as on a socket.
                return
            raise WriteError("write to a closed connection") from protocol.exc
        self._transport.write(buffer)
        if protocol.writing_paused:
            await self._drain(protocol, timeout)

    @staticmethod
    async def _drain(protocol: _StreamProtocol, timeout: float | None) -> None:
        loop = protocol.loop
        waiter: asyncio.Future[bool] = loop.create_future()
        protocol.write_waiter = waiter
        timer = None if timeout is None else loop.call_later(timeout, _wake, waiter, False)
        try:
            await waiter
        finally:
            protocol.write_waiter = None
            if timer is not None:
                timer.cancel()
        if protocol.lost:
            raise WriteError("connection lost while writing") from protocol.exc
        if protocol.writing_paused:
            raise WriteTimeout(f"the peer accepted no data for {timeout} seconds")

    async def aclose(self) -> None:
        """Close the connection at once, without suspending; idempotent."""
        if self._closed:
            return
        self._closed = True
        transport = self._transport
        if self._tls or transport.get_write_buffer_size():
            # Data the peer does not read would keep a closing transport,
            # and its socket, open indefinitely.
            transport.abort()
        else:
            transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        """Run a TLS handshake on this connection and return the TLS stream.

        On failure the connection is closed. Whatever the server sends once
        the handshake is over is kept for the new stream's reads, even when it
        arrives together with the handshake's last flight.

        Raises:
            ConnectTimeout: the handshake took longer than ``timeout``.
            ConnectError: the handshake failed (certificate, protocol, reset),
                or the server sent bytes before it began.
        """
        protocol = self._protocol
        if protocol.buffered:
            early = protocol.buffered
            await self.aclose()
            raise ConnectError(
                f"The server sent {early} bytes before the TLS handshake began: not TLS."
            )
        # While the loop owns the handshake, the protocol must not pause the
        # plain transport underneath it; what arrives is kept (see data_received).
        # It is behind TLS from now on: the loop may report the peer's EOF
        # before we resume, if it came with the handshake's last flight.
        protocol.transport = None
        protocol.tls = True
        try:
            # Timed by _within, like connects: asyncio's own handshake timeout
            # ends in an error that does not say it was a timeout.
            transport = await _within(
                timeout,
                protocol.loop.start_tls(
                    self._transport,
                    protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=_NO_HANDSHAKE_LIMIT,
                ),
            )
        except OSError as exc:
            await self.aclose()
            raise translate(exc, CONNECT_ERRORS) from exc
        except BaseException:
            await self.aclose()
            raise
        if transport is None:  # pragma: no cover - only for server_side=True
            raise RuntimeError("start_tls returned no transport")
        # The loop may already have delivered application data (it decrypts
        # what came with the handshake's last flight before we resume): it
        # stays in the buffer for the first read.
        protocol.transport = transport
        if protocol.buffered > _HIGH_WATER:
            protocol.reading_paused = True
            transport.pause_reading()
        return AsyncIOStream(transport, protocol, tls=True)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            protocol = self._protocol
            if self._closed or protocol.eof or protocol.buffered:
                return True
            # The loop may not have run since the peer's FIN or RST arrived:
            # ask the socket itself (one poll; only for the connection about
            # to be reused).
            probe = self._readable
            if probe is None:
                sock = self._transport.get_extra_info("socket")
                if sock is None:
                    return False
                probe = self._readable = ReadableProbe(sock)
            return probe()
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


async def _within(timeout: float | None, coro: Coroutine[typing.Any, typing.Any, _T]) -> _T:
    """Await ``coro``; past ``timeout`` seconds cancel it and raise TimeoutError."""
    if timeout is None:
        return await coro
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return await coro
    except asyncio.CancelledError:
        if not expired:
            raise
        # On 3.11+ a cancellation from outside that coincides with ours is
        # still counted, and wins; 3.10 cannot tell the two apart.
        if sys.version_info >= (3, 11) and task.uncancel() > 0:
            raise
        raise TimeoutError("timed out") from None
    finally:
        timer.cancel()


async def _connect_socket(
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    local_address: str | None,
    options: tuple[SOCKET_OPTION, ...],
) -> socket.socket:
    # Built by hand so that the options apply before connect().
    addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address found for {host!r}")
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in options:
                sock.setsockopt(*option)
            if local_address is not None:
                sock.bind((local_address, 0))
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    try:
        raise error
    finally:
        del error  # its traceback holds this frame: a reference cycle


async def _open_tcp(
    host: str, port: int, local_address: str | None, options: tuple[SOCKET_OPTION, ...]
) -> AsyncIOStream:
    loop = asyncio.get_running_loop()
    transport: asyncio.Transport
    if options:
        sock = await _connect_socket(loop, host, port, local_address, options)
        try:
            transport, protocol = await loop.create_connection(
                lambda: _StreamProtocol(loop), sock=sock
            )
        except BaseException:
            sock.close()
            raise
    else:
        local = None if local_address is None else (local_address, 0)
        transport, protocol = await loop.create_connection(
            lambda: _StreamProtocol(loop), host, port, local_addr=local
        )
        # The stdlib loops set it already; other loop implementations may not.
        raw = transport.get_extra_info("socket")
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return AsyncIOStream(transport, protocol)


async def _open_unix(path: str, options: tuple[SOCKET_OPTION, ...]) -> AsyncIOStream:
    # By hand, as create_unix_connection(path) does it, so that the options
    # apply before connect().
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        for option in options:
            sock.setsockopt(*option)
        await loop.sock_connect(sock, path)
        transport, protocol = await loop.create_unix_connection(
            lambda: _StreamProtocol(loop), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    return AsyncIOStream(transport, protocol)


class AsyncIOBackend(AsyncNetworkBackend):
    """asyncio transports; every stream it returns is an ``AsyncIOStream``."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        """Open a TCP connection (TCP_NODELAY set).

        Args:
            timeout: one deadline for resolving and connecting, in seconds.
            local_address: bind to this source IP (any port) before connecting.
            socket_options: ``setsockopt`` arguments, applied before connecting.

        Raises:
            ConnectTimeout: the deadline passed.
            ConnectError: resolution failed, or every address refused.
        """
        options = () if socket_options is None else tuple(socket_options)
        try:
            return await _within(timeout, _open_tcp(host, port, local_address, options))
        except OSError as exc:
            raise translate(exc, CONNECT_ERRORS) from exc

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        """Open a connection to the Unix domain socket at ``path``.

        Raises:
            ConnectTimeout: connecting took longer than ``timeout``.
            ConnectError: no such socket, or refused.
        """
        options = () if socket_options is None else tuple(socket_options)
        try:
            return await _within(timeout, _open_unix(path, options))
        except OSError as exc:
            raise translate(exc, CONNECT_ERRORS) from exc

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
