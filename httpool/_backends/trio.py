"""The trio backend, on ``trio.SocketStream`` and ``trio.SSLStream``.

Theory of operation: a ``TrioStream`` wraps one trio stream (a socket stream,
or TLS layered on one, possibly twice for TLS through an HTTPS proxy) and
remembers the socket at the bottom for addresses and the readability probe.

On a plain socket (not TLS) and on POSIX, reads go to the file descriptor
itself (``os.read``; trio keeps it non-blocking) and wait with
``trio.lowlevel.wait_readable`` only when it would block; writes likewise
(``os.write``, ``wait_writable``). Every read and write is a cancellation
point (``checkpoint_if_cancelled``), but one that did not have to wait yields
to the scheduler only every ``_READS_PER_YIELD``-th time: trio's
``receive_some`` and ``send_all`` yield on every call, and that scheduler pass
cost more than the read of 64 KiB itself (a 1 MiB body took 16 of them); on
the write of a small request it was 6 % of the request's instructions. Other
tasks still run at least every 4 calls (256 KiB of body), and one that waits
has yielded anyway. On TLS everything goes through trio's streams. A cancel
scope (``_FailAt``, not trio's generator-based ``fail_at``: see there) is
entered only when a timeout is given, and on the direct paths only around a wait.

trio's errors are mapped here, once: ``TooSlowError`` becomes the timeout of
the operation that ran out of time, ``BrokenResourceError``,
``ClosedResourceError`` and ``OSError`` the matching network error. The
message says what the other backends say for the same failure: the timeout
and what it bounded, the ``ssl`` error a bare ``BrokenResourceError`` carries
as its cause, and for a refused connect the errno, strerror and address that
``open_tcp_stream`` keeps in the group behind its summary. The trio error stays
the ``__cause__``. Only the ``except`` blocks do this work.

``aclose`` closes forcefully: a TLS stream skips waiting to send its
``close_notify`` (a peer that stopped reading would make it wait forever,
and HTTP framing never needs it), and cancellation cannot interrupt it.

This is the only module of httpool that imports trio, and so the only one
that touches it: at its end are the few trio calls the runtime-neutral
modules need (locks, events, shields, Ctrl-C protection, name resolution).
It is loaded only once trio is: when trio runs the first call, or a pool is
made in a program that has imported trio.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import ssl
import sys
import types
import typing
from collections.abc import Iterable

import trio

from .._exceptions import (
    ConnectError,
    ConnectTimeout,
    HttpoolError,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from .base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream
from .sync import ReadableProbe, address_info

_MAPPED = (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _described(exc: BaseException, otherwise: str) -> str:
    """What went wrong, in the words of the first error of ``exc``'s cause chain
    that has any: trio's ``BrokenResourceError`` says nothing itself and carries
    the ``ssl`` or OS error as its cause, which the other backends show as it is."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if text:
            return text
        seen = seen.__cause__
    if isinstance(exc, trio.ClosedResourceError):
        return otherwise
    if isinstance(exc, trio.BrokenResourceError):
        # What an SSLStream says once an earlier call failed or read the peer's hang-up.
        return "the TLS connection is broken: the peer closed it or an earlier call failed"
    return type(exc).__name__


def _read_error(exc: BaseException, timeout: float | None) -> HttpoolError:
    if isinstance(exc, trio.TooSlowError):
        return ReadTimeout(f"no data received within {timeout} seconds")
    return ReadError(_described(exc, "read from a closed stream"))


def _write_error(exc: BaseException, timeout: float | None) -> HttpoolError:
    if isinstance(exc, trio.TooSlowError):
        return WriteTimeout(f"the peer accepted no data for {timeout} seconds")
    return WriteError(_described(exc, "write to a closed stream"))


def _connect_error(exc: BaseException, timeout: float | None, what: str) -> HttpoolError:
    """The error for a failed connect or TLS handshake, ``what`` naming it."""
    if isinstance(exc, trio.TooSlowError):
        return ConnectTimeout(f"{what} timed out after {timeout} seconds")
    attempts = getattr(exc.__cause__, "exceptions", None)
    if isinstance(exc, OSError) and exc.errno is None and attempts:
        # trio.open_tcp_stream raises "all attempts to connect to host:port
        # failed" from a group of each address's error, and only those carry
        # the errno, the strerror and the address.
        if len(attempts) == 1:
            return ConnectError(str(attempts[0]))
        return ConnectError(f"{exc}: " + "; ".join(str(error) for error in attempts))
    return ConnectError(_described(exc, f"{what} on a closed stream"))


# os.read works on socket descriptors on POSIX only.
_DIRECT_READS = sys.platform != "win32"
_READS_PER_YIELD = 4
_checkpoint = trio.lowlevel.checkpoint
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled


class _FailAt:
    """``trio.fail_at`` as a class: a cancel scope with a deadline, raising
    ``trio.TooSlowError`` when the deadline cancelled the block.

    Not trio's ``fail_at``/``fail_after``: they are ``@contextmanager``
    generators, and on CPython 3.12+ the ``Cancelled`` they turn into
    ``TooSlowError`` holds the generator's frame in its traceback, that
    frame's ``f_back`` is contextlib's ``__exit__`` frame, and that frame holds
    the ``Cancelled`` in its locals (CPython gh-129280). Through the
    ``f_back`` chain the cycle kept every frame of the timed-out request, so
    its connection, pool entry and the caller's locals, alive until the cycle
    collector ran.
    """

    __slots__ = ("_scope",)

    def __init__(self, deadline: float) -> None:
        self._scope = trio.CancelScope(deadline=deadline)

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> bool:
        handled = self._scope.__exit__(exc_type, exc_value, traceback)
        if self._scope.cancelled_caught:
            raise trio.TooSlowError
        return handled


def _deadline(timeout: float | None) -> contextlib.AbstractContextManager[object]:
    return contextlib.nullcontext() if timeout is None else _FailAt(trio.current_time() + timeout)


def _deadline_at(deadline: float | None) -> contextlib.AbstractContextManager[object]:
    return contextlib.nullcontext() if deadline is None else _FailAt(deadline)


async def _close_quietly(stream: trio.abc.AsyncResource) -> None:
    # A peer that already hung up, or a second close, is not an error here.
    with contextlib.suppress(trio.BrokenResourceError, trio.BusyResourceError, OSError):
        await trio.aclose_forcefully(stream)


class TrioStream(AsyncNetworkStream):
    """A trio stream, plain or TLS, and the socket underneath it."""

    __slots__ = ("_direct", "_readable", "_socket", "_stream", "_unyielded")

    def __init__(self, stream: trio.abc.Stream, sock: trio.socket.SocketType) -> None:
        self._stream = stream
        self._socket = sock
        self._readable = ReadableProbe(sock)
        self._direct = _DIRECT_READS and type(stream) is trio.SocketStream
        self._unyielded = 0  # direct reads since the last yield to the scheduler

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Return up to ``max_bytes`` bytes, or ``b""`` at end of stream.

        Raises:
            ReadTimeout: nothing arrived within ``timeout`` seconds.
            ReadError: the connection was reset, or this stream is closed.
        """
        try:
            if self._direct:
                # Inline, as in write(): each coroutine layer between the
                # caller and os.read cost some 800 instructions per call.
                self._unyielded += 1
                if self._unyielded >= _READS_PER_YIELD:
                    self._unyielded = 0
                    await _checkpoint()
                else:
                    await _checkpoint_if_cancelled()
                fd = self._fileno()
                try:
                    return os.read(fd, max_bytes)
                except BlockingIOError:
                    pass
                return await self._read_when_ready(fd, max_bytes, timeout)
            if timeout is None:
                data = await self._stream.receive_some(max_bytes)
            else:
                with _deadline(timeout):
                    data = await self._stream.receive_some(max_bytes)
        except _MAPPED as exc:
            raise _read_error(exc, timeout) from exc
        return data if type(data) is bytes else bytes(data)

    def _fileno(self) -> int:
        # Asked every time: after a close the number may belong to another file.
        fd = self._socket.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the stream is closed")
        return fd

    async def _read_when_ready(self, fd: int, max_bytes: int, timeout: float | None) -> bytes:
        deadline = None if timeout is None else trio.current_time() + timeout
        while True:
            with _deadline_at(deadline):
                await trio.lowlevel.wait_readable(fd)
            self._unyielded = 0
            try:
                return os.read(fd, max_bytes)
            except BlockingIOError:  # pragma: no cover - a spurious wake-up
                continue

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer``.

        Raises:
            WriteTimeout: the peer accepted no data for ``timeout`` seconds.
            WriteError: the connection was reset, or this stream is closed.
        """
        if not buffer:
            return
        try:
            if self._direct:
                # A cancellation point, and every _READS_PER_YIELD-th call a
                # schedule point (counted with the reads), as in read().
                self._unyielded += 1
                if self._unyielded >= _READS_PER_YIELD:
                    self._unyielded = 0
                    await _checkpoint()
                else:
                    await _checkpoint_if_cancelled()
                await self._write_direct(self._fileno(), buffer, timeout)
            elif timeout is None:
                await self._stream.send_all(buffer)
            else:
                with _deadline(timeout):
                    await self._stream.send_all(buffer)
        except _MAPPED as exc:
            raise _write_error(exc, timeout) from exc

    async def _write_direct(self, fd: int, buffer: bytes, timeout: float | None) -> None:
        try:
            sent = os.write(fd, buffer)
        except BlockingIOError:
            sent = 0
        if sent == len(buffer):
            return
        # The timeout bounds the whole write, as a deadline around send_all does.
        deadline = None if timeout is None else trio.current_time() + timeout
        view = memoryview(buffer)[sent:]
        while view:
            with _deadline_at(deadline):
                await trio.lowlevel.wait_writable(fd)
            self._unyielded = 0
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:  # pragma: no cover - a spurious wake-up
                continue

    async def aclose(self) -> None:
        """Close the connection at once; idempotent, never raises."""
        await _close_quietly(self._stream)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        """Run a TLS handshake on this connection and return the TLS stream.

        On failure the connection is closed.

        Raises:
            ConnectTimeout: the handshake took longer than ``timeout``.
            ConnectError: the handshake failed (certificate, protocol, reset).
        """
        ssl_stream = trio.SSLStream(
            self._stream,
            ssl_context,
            server_hostname=server_hostname,
            # Treat a TCP close without close_notify as end of stream, as
            # browsers and every other HTTP client do.
            https_compatible=True,
        )
        try:
            with _deadline(timeout):
                await ssl_stream.do_handshake()
        except _MAPPED as exc:
            await _close_quietly(ssl_stream)
            raise _connect_error(exc, timeout, "the TLS handshake") from exc
        except BaseException:
            await _close_quietly(ssl_stream)
            raise
        return TrioStream(ssl_stream, self._socket)

    def get_extra_info(self, info: str) -> typing.Any:
        stream = self._stream
        if info == "is_readable":
            return _tls_has_buffered(stream) or self._readable()
        if info == "ssl_object":
            if isinstance(stream, trio.SSLStream):
                # The ssl.SSLObject itself, as the other backends give; the
                # SSLStream only forwards part of its methods.
                return getattr(stream, "_ssl_object", stream)
            return None
        if info == "socket":
            return self._socket
        return address_info(self._socket, info)


def _tls_has_buffered(stream: trio.abc.Stream) -> bool:
    # An SSLStream moves a whole transport read into its incoming BIO but
    # decrypts one record per read, so later records can wait there, out of
    # sight of the socket probe. Each TLS layer keeps its own buffer.
    while isinstance(stream, trio.SSLStream):
        if stream.pending() or stream._incoming.pending:
            return True
        stream = stream.transport_stream
    return False


async def _connect_socket(
    host: str, port: int, local_address: str | None, options: tuple[SOCKET_OPTION, ...]
) -> trio.socket.SocketType:
    # Built by hand so that the options apply before connect().
    addresses = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address found for {host!r}")
    for family, kind, proto, _, address in addresses:
        sock = trio.socket.socket(family, kind, proto)
        try:
            for option in options:
                sock.setsockopt(*option)
            if local_address is not None:
                await sock.bind((local_address, 0))
            await sock.connect(address)
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


class TrioBackend(AsyncNetworkBackend):
    """trio sockets; every stream it returns is a ``TrioStream``."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        """Open a TCP connection (trio sets TCP_NODELAY).

        Without ``socket_options`` this is ``trio.open_tcp_stream`` (happy
        eyeballs); with them, each address is tried in turn on a socket that
        gets the options before connecting.

        Raises:
            ConnectTimeout: ``timeout`` passed before the connection was made.
            ConnectError: resolution failed, or every address refused.
        """
        options = () if socket_options is None else tuple(socket_options)
        try:
            with _deadline(timeout):
                if options:
                    sock = await _connect_socket(host, port, local_address, options)
                    stream = trio.SocketStream(sock)
                else:
                    stream = await trio.open_tcp_stream(host, port, local_address=local_address)
        except _MAPPED as exc:
            raise _connect_error(exc, timeout, f"connecting to {host}:{port}") from exc
        return TrioStream(stream, stream.socket)

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
            with _deadline(timeout):
                # By hand, as trio.open_unix_socket does it, so that the
                # options apply before connect().
                sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    for option in options:
                        sock.setsockopt(*option)
                    await sock.connect(path)
                except BaseException:
                    sock.close()
                    raise
                stream = trio.SocketStream(sock)
        except _MAPPED as exc:
            raise _connect_error(exc, timeout, f"connecting to {path}") from exc
        return TrioStream(stream, stream.socket)

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


# What the runtime-neutral modules need from trio (_synchronization.py for
# locks, events, shields and Ctrl-C protection, _resolver.py, the mock
# backend), so that none of them imports trio: they load this module through
# ``_synchronization.trio_runtime()`` once trio is loaded. Plain aliases where
# a wrapper would only add a call to the request path.

new_lock = trio.Lock
new_event = trio.Event
checkpoint = trio.lowlevel.checkpoint
current_task = trio.lowlevel.current_task  # RuntimeError outside a trio task
# A cancel scope that shields its block from cancellation (a partial, not a
# function: no Python frame per close).
shield = functools.partial(trio.CancelScope, shield=True)


def protect_from_keyboard_interrupt(function: typing.Callable[..., typing.Any]) -> None:
    """Have trio deliver ``KeyboardInterrupt`` at the next checkpoint outside
    ``function`` (and what it calls) rather than inside it."""
    trio.lowlevel.enable_ki_protection(function)


async def acquire(lock: trio.Lock, timeout: float | None) -> bool:
    """Wait for ``lock``; ``False`` if ``timeout`` seconds passed first."""
    if timeout is None:
        await lock.acquire()
        return True
    with trio.move_on_after(timeout):
        await lock.acquire()
        return True
    return False


async def wait(event: trio.Event, timeout: float | None) -> None:
    """Wait until ``event`` is set, or ``timeout`` seconds passed."""
    if timeout is None:
        await event.wait()
        return
    with trio.move_on_after(timeout):
        await event.wait()


async def getaddrinfo(host: str, port: int) -> list[typing.Any]:
    """trio's ``getaddrinfo`` (in a worker thread) for TCP to ``host:port``."""
    return await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
