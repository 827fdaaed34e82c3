"""The blocking backend: ``socket`` and ``ssl``, for the sync pool on threads.

Theory of operation: a ``SyncStream`` owns one socket (plain or
``ssl.SSLSocket``) and maps every ``OSError`` through the tables of
``_exceptions`` (plus a zero timeout, where Python raises
``BlockingIOError`` instead of ``socket.timeout``). Timeouts are the socket's
own: ``settimeout`` is called only when the caller's timeout differs from the
last one set, because it is a system call on every read otherwise.

Connecting resolves the host and tries each address in turn, on a socket
built by hand so that ``socket_options`` and ``local_address`` apply *before*
``connect`` (some options, like ``IP_BIND_ADDRESS_NO_PORT`` or
``TCP_FASTOPEN_CONNECT``, only work then). The connect timeout is one deadline
for the whole attempt, not one per address.

TLS over TLS (an HTTPS request through an HTTPS proxy) cannot use
``wrap_socket`` twice; ``_TLSOverTLSStream`` runs the inner session on memory
BIOs and carries its records over the outer ``SSLSocket``.

This module knows nothing of HTTP; ``socket_is_readable``, ``ReadableProbe``
and ``address_info`` are shared with the trio and asyncio backends.
"""

from __future__ import annotations

import contextlib
import functools
import math
import select
import socket
import ssl
import threading
import time
import typing
from collections.abc import Callable, Iterable

from .._exceptions import (
    CONNECT_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    ConnectError,
    ConnectTimeout,
    ExceptionMapping,
    ReadTimeout,
    WriteTimeout,
    translate,
)
from .base import SOCKET_OPTION, NetworkBackend, NetworkStream

_T = typing.TypeVar("_T")

# A zero timeout puts a Python socket in non-blocking mode, where "would
# block" is BlockingIOError (or SSLWant*Error), not socket.timeout.
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_READ: ExceptionMapping = {**dict.fromkeys(_WOULD_BLOCK, ReadTimeout), **READ_ERRORS}
_WRITE: ExceptionMapping = {**dict.fromkeys(_WOULD_BLOCK, WriteTimeout), **WRITE_ERRORS}
_CONNECT: ExceptionMapping = {**dict.fromkeys(_WOULD_BLOCK, ConnectTimeout), **CONNECT_ERRORS}

# One TLS record plus its overhead: what the TLS-over-TLS stream asks the
# outer socket for when the inner session needs more bytes.
_TLS_RECORD_READ = 16384 + 2048


class _HasFileno(typing.Protocol):
    def fileno(self) -> int: ...


class _HasAddresses(typing.Protocol):
    def getsockname(self) -> typing.Any: ...

    def getpeername(self) -> typing.Any: ...


def socket_is_readable(sock: _HasFileno) -> bool:
    """Return True if a read on ``sock`` would not block.

    That is: data or end-of-stream is waiting, the socket is in error, or it
    is already closed. For an idle keep-alive connection every one of those
    means "do not reuse it". An ``ssl.SSLSocket`` holding decrypted bytes
    counts as readable too.
    """
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    fd = sock.fileno()
    if fd < 0:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        # POLLHUP and POLLERR are reported whether asked for or not.
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)  # pragma: no cover - Windows
    return bool(readable)


class ReadableProbe:
    """``socket_is_readable(sock)`` for one plain socket, asked before every
    reuse of its connection: the poll object is made, and the socket
    registered, on the first call only (per call that saved some 2,000
    instructions, callgrind). A socket's descriptor never changes while it is
    open, and a closed one reports -1, which is checked first every time. A TLS
    socket, or a platform without ``poll``, gets ``socket_is_readable`` itself,
    and so does a thread that finds another one polling (a poll object refuses
    two calls at once).
    """

    __slots__ = ("_poller", "_sock")

    def __init__(self, sock: _HasFileno) -> None:
        self._sock = sock
        self._poller: typing.Any = None

    def __call__(self) -> bool:
        poller = self._poller
        if poller is None:
            sock = self._sock
            if isinstance(sock, ssl.SSLSocket) or not hasattr(select, "poll"):
                return socket_is_readable(sock)
            fd = sock.fileno()
            if fd < 0:
                return True
            poller = self._poller = select.poll()
            # POLLHUP and POLLERR are reported whether asked for or not.
            poller.register(fd, select.POLLIN)
        elif self._sock.fileno() < 0:
            return True
        try:
            return bool(poller.poll(0))
        except RuntimeError:
            # "concurrent poll() invocation": another thread (an HTTP/2
            # connection's requests each probe it) is polling it right now.
            return socket_is_readable(self._sock)


def _wait_for(sock: _HasFileno, events: int, timeout: float | None) -> bool:
    """Wait until ``sock`` is ready for ``events`` (or in error); False on timeout."""
    poller = select.poll()
    poller.register(sock.fileno(), events)
    if timeout is None:
        return bool(poller.poll())
    deadline = time.monotonic() + timeout
    while True:
        # poll takes whole milliseconds, at most a C int of them.
        wait = min(max(0, math.ceil((deadline - time.monotonic()) * 1000)), 2**31 - 1)
        if poller.poll(wait):
            return True
        if time.monotonic() >= deadline:
            return False


def _raise_mapped(exc: OSError, mapping: ExceptionMapping) -> typing.NoReturn:
    raise translate(exc, mapping) from exc


class SyncStream(NetworkStream):
    """A connected socket, plain or TLS."""

    __slots__ = ("_readable", "_sock", "_timeout", "_tls")

    def __init__(self, sock: socket.socket) -> None:
        self._tls = isinstance(sock, ssl.SSLSocket) or not hasattr(select, "poll")
        if not self._tls:
            sock.settimeout(None)
        self._sock = sock
        self._timeout = sock.gettimeout()
        self._readable = ReadableProbe(sock)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Return up to ``max_bytes`` bytes, or ``b""`` at end of stream.

        Raises:
            ReadTimeout: nothing arrived within ``timeout`` seconds.
            ReadError: the connection was reset, or this stream is closed.
        """
        try:
            if timeout is not None and not self._tls and self._timeout is None:
                return self._recv_within(max_bytes, timeout)
            if timeout != self._timeout:
                self._sock.settimeout(timeout)
                self._timeout = timeout
            return self._sock.recv(max_bytes)
        except OSError as exc:
            _raise_mapped(exc, _READ)

    # A plain socket stays in blocking mode, and a timeout is applied per call
    # with MSG_DONTWAIT and poll: an HTTP/2 connection reads in one thread and
    # writes in another, and a socket-wide settimeout from one would change
    # the other's call under it.

    def _recv_within(self, max_bytes: int, timeout: float) -> bytes:
        try:
            return self._sock.recv(max_bytes, socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
        if not _wait_for(self._sock, select.POLLIN, timeout):
            raise ReadTimeout(f"no data received within {timeout} seconds")
        return self._sock.recv(max_bytes, socket.MSG_DONTWAIT)

    def _send_within(self, buffer: bytes, timeout: float) -> None:
        view = memoryview(buffer)
        deadline = time.monotonic() + timeout
        while view:
            try:
                view = view[self._sock.send(view, socket.MSG_DONTWAIT) :]
                continue
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not _wait_for(self._sock, select.POLLOUT, remaining):
                raise WriteTimeout(f"the peer accepted no data for {timeout} seconds")

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer``.

        Raises:
            WriteTimeout: the peer accepted no data for ``timeout`` seconds.
            WriteError: the connection was reset, or this stream is closed.
        """
        if not buffer:
            return
        try:
            if timeout is not None and not self._tls and self._timeout is None:
                self._send_within(buffer, timeout)
                return
            if timeout != self._timeout:
                self._sock.settimeout(timeout)
                self._timeout = timeout
            self._sock.sendall(buffer)
        except OSError as exc:
            _raise_mapped(exc, _WRITE)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a late reset reported by close()
            self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        """Run a TLS handshake on this connection and return the TLS stream.

        The returned stream replaces this one. On failure the socket is closed.

        Raises:
            ConnectTimeout: the handshake took longer than ``timeout``.
            ConnectError: the handshake failed (certificate, protocol, reset).
        """
        try:
            self._sock.settimeout(timeout)
            self._timeout = timeout
            if isinstance(self._sock, ssl.SSLSocket):
                return _TLSOverTLSStream(self._sock, ssl_context, server_hostname, timeout)
            sock = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except OSError as exc:
            self.close()
            _raise_mapped(exc, _CONNECT)
        except BaseException:
            self.close()
            raise
        return SyncTLSStream(sock)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return self._readable()
        sock = self._sock
        if info == "ssl_object":
            # The SSLSocket itself: it offers SSLObject's query methods
            # (selected_alpn_protocol, getpeercert, version, cipher, ...).
            return sock if isinstance(sock, ssl.SSLSocket) else None
        if info == "socket":
            return sock
        return address_info(sock, info)


class SyncTLSStream(SyncStream):
    """A TLS connection that two threads may use at once, one reading, one writing.

    OpenSSL must not run one session's read and write at the same time, and an
    HTTP/2 connection reads in one thread while another writes. So the socket
    is non-blocking, every call into the session holds a lock, and the waiting
    (``poll``, with the call's own timeout) happens outside it.
    """

    __slots__ = ("_ssl_lock",)

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        sock.setblocking(False)
        self._timeout = 0.0
        self._ssl_lock = threading.Lock()

    def _session_call(self, call: Callable[[], _T], timeout: float | None, what: str) -> _T:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._ssl_lock:
                try:
                    return call()
                except ssl.SSLWantReadError:
                    events = select.POLLIN
                except ssl.SSLWantWriteError:
                    events = select.POLLOUT
            remaining = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or not _wait_for(
                self._sock, events, remaining
            ):
                raise TimeoutError(f"{what} within {timeout} seconds")

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._session_call(
                functools.partial(self._sock.recv, max_bytes), timeout, "no data received"
            )
        except OSError as exc:
            _raise_mapped(exc, _READ)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        try:
            while view:
                sent = self._session_call(
                    functools.partial(self._sock.send, view), timeout, "the peer accepted no data"
                )
                view = view[sent:]
        except OSError as exc:
            _raise_mapped(exc, _WRITE)


class _TLSOverTLSStream(NetworkStream):
    """An inner TLS session whose records travel over an outer ``SSLSocket``.

    As in ``SyncTLSStream``, an HTTP/2 connection reads in one thread while
    another writes, and neither OpenSSL session (the inner one on memory BIOs,
    the outer one on the socket) may run two calls at once. So every call into
    either session holds one lock, the outer socket is non-blocking, and the
    waiting (``poll``, with the call's own timeout) happens outside the lock.
    Records the inner session produced are written out before its call returns.
    """

    __slots__ = ("_incoming", "_lock", "_outgoing", "_sock", "_tls", "_unsent")

    def __init__(
        self,
        sock: ssl.SSLSocket,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> None:
        self._sock = sock
        sock.setblocking(False)
        self._lock = threading.Lock()
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._unsent = b""  # inner records the outer socket did not take yet
        self._tls = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        self._pump(self._tls.do_handshake, timeout, "TLS handshake")

    def _pump(
        self,
        operation: Callable[[], _T],
        timeout: float | None,
        what: str,
        *,
        flushed: bool = True,
    ) -> _T:
        """Run ``operation`` on the inner session until it needs no more input.

        With ``flushed``, return only once its output is on the socket; a read
        returns without waiting for that, so that a reader is never held up by
        a writer's records the peer is not taking yet.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        result: _T | None = None
        done = False
        while True:
            with self._lock:
                if not done:  # a call that succeeded is never made again
                    with contextlib.suppress(ssl.SSLWantReadError):
                        result, done = operation(), True
                events = self._flush()
                if done and (not events or not flushed):
                    return typing.cast(_T, result)
                if not done:
                    # The inner session needs input: take what the socket has.
                    wanted = self._feed()
                    if not wanted:
                        continue
                    events |= wanted
            remaining = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or not _wait_for(
                self._sock, events, remaining
            ):
                raise TimeoutError(f"{what}: nothing happened within {timeout} seconds")

    def _flush(self) -> int:
        """Write the inner session's output; the poll events to wait for, 0 if all went."""
        self._unsent += self._outgoing.read()
        while self._unsent:
            try:
                sent = self._sock.send(self._unsent)
            except ssl.SSLWantReadError:
                return select.POLLIN
            except (ssl.SSLWantWriteError, BlockingIOError):
                return select.POLLOUT
            self._unsent = self._unsent[sent:]
        return 0

    def _feed(self) -> int:
        """Give the inner session what the socket has; poll events to wait for, 0 if fed."""
        try:
            data = self._sock.recv(_TLS_RECORD_READ)
        except (ssl.SSLWantReadError, BlockingIOError):
            return select.POLLIN
        except ssl.SSLWantWriteError:
            return select.POLLOUT
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()
        return 0

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._pump(
                functools.partial(self._tls.read, max_bytes),
                timeout,
                "no data received",
                flushed=False,
            )
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            # A clean close_notify, or a TCP close without one: both are the
            # end of the stream, as the outer SSLSocket treats them too.
            return b""
        except OSError as exc:
            _raise_mapped(exc, _READ)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            view = memoryview(buffer)
            while view:
                sent = self._pump(
                    functools.partial(self._tls.write, view), timeout, "the peer accepted no data"
                )
                view = view[sent:]
        except OSError as exc:
            _raise_mapped(exc, _WRITE)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a late reset reported by close()
            self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        self.close()
        raise ConnectError("TLS nested more than two levels deep is not supported")

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return (
                self._tls.pending() > 0
                or self._incoming.pending > 0
                or socket_is_readable(self._sock)
            )
        if info == "ssl_object":
            return self._tls
        if info == "socket":
            return self._sock
        return address_info(self._sock, info)


def address_info(sock: _HasAddresses, info: str) -> typing.Any:
    """Answer ``"client_addr"`` and ``"server_addr"`` from ``sock``; None otherwise."""
    try:
        if info == "client_addr":
            return sock.getsockname()
        if info == "server_addr":
            return sock.getpeername()
    except OSError:  # closed, or the peer already gone
        return None
    return None


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def _apply_options(sock: socket.socket, options: Iterable[SOCKET_OPTION]) -> None:
    for option in options:
        sock.setsockopt(*option)


class SyncBackend(NetworkBackend):
    """Blocking sockets. Every stream it returns is a ``SyncStream``."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> NetworkStream:
        """Open a TCP connection, trying each address of ``host`` in turn.

        Args:
            timeout: one deadline for every connect attempt, in seconds. Name
                resolution counts against it but cannot be interrupted.
            local_address: bind to this source IP (any port) before connecting.
            socket_options: ``setsockopt`` arguments, applied before connecting.

        Raises:
            ConnectTimeout: the deadline passed.
            ConnectError: resolution failed, or every address refused.
        """
        options = () if socket_options is None else tuple(socket_options)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            error: OSError = OSError(f"no address found for {host!r}")
            for family, kind, proto, _, address in addresses:
                sock = socket.socket(family, kind, proto)
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    _apply_options(sock, options)
                    if local_address is not None:
                        sock.bind((local_address, 0))
                    sock.settimeout(_remaining(deadline))
                    sock.connect(address)
                except OSError as exc:
                    sock.close()
                    error = exc
                    if isinstance(exc, TimeoutError):
                        break
                    continue
                except BaseException:
                    sock.close()
                    raise
                return SyncStream(sock)
            try:
                raise error
            finally:
                del error  # its traceback holds this frame: a reference cycle
        except OSError as exc:
            _raise_mapped(exc, _CONNECT)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> NetworkStream:
        """Open a connection to the Unix domain socket at ``path``.

        Raises:
            ConnectTimeout: connecting took longer than ``timeout``.
            ConnectError: no such socket, refused, or no Unix sockets here.
        """
        family = getattr(socket, "AF_UNIX", None)
        if family is None:  # pragma: no cover - Windows
            raise ConnectError("Unix domain sockets are not supported on this platform")
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            _apply_options(sock, socket_options or ())
            sock.settimeout(timeout)
            sock.connect(path)
        except OSError as exc:
            sock.close()
            _raise_mapped(exc, _CONNECT)
        except BaseException:
            sock.close()
            raise
        return SyncStream(sock)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
