"""The exception hierarchy, and the one place where foreign errors are mapped to it.

Theory of operation: every error a caller can see from httpool is an
``HttpoolError`` (or a ``TypeError``/``ValueError`` for arguments of the wrong
type or value). OS, ``ssl`` and h11 errors are translated at the boundary
where they arise, through ``translate``/``map_exceptions`` and the mapping
tables below, so that the rest of the code never catches ``OSError`` itself.

The names follow httpcore 1.x, so ``except httpcore.ReadTimeout`` becomes
``except httpool.ReadTimeout``.
"""

from __future__ import annotations

import socket
import ssl
import types
import typing
from collections.abc import Mapping

import h11

ExceptionMapping = Mapping[type[BaseException], type["HttpoolError"]]


class HttpoolError(Exception):
    """Base class of every error raised by httpool."""


class UnsupportedProtocol(HttpoolError):
    """The URL has no scheme, or one httpool cannot speak."""


class ProxyError(HttpoolError):
    """The proxy refused or failed to set up the tunnel."""


class ProtocolError(HttpoolError):
    """A violation of HTTP, by either side."""


class RemoteProtocolError(ProtocolError):
    """The server sent something that is not valid HTTP, or hung up mid-message."""


class LocalProtocolError(ProtocolError):
    """The request cannot be sent as given: bad header, bad URL, bad body length."""


class TimeoutException(HttpoolError):
    """Base class of the four timeouts."""


class PoolTimeout(TimeoutException):
    """No connection became available within ``timeout["pool"]``."""


class ConnectTimeout(TimeoutException):
    """The TCP connect or TLS handshake took longer than ``timeout["connect"]``."""


class ReadTimeout(TimeoutException):
    """The server sent nothing for ``timeout["read"]`` seconds."""


class WriteTimeout(TimeoutException):
    """The socket accepted no data for ``timeout["write"]`` seconds."""


class NetworkError(HttpoolError):
    """Base class of errors of the transport itself."""


class ConnectError(NetworkError):
    """The connection could not be opened (refused, unreachable, DNS, TLS)."""


class ReadError(NetworkError):
    """Reading from the connection failed (reset, closed)."""


class WriteError(NetworkError):
    """Writing to the connection failed (reset, broken pipe)."""


class PoolInvariantError(HttpoolError, RuntimeError):
    """``check_invariants()`` found the pool's bookkeeping inconsistent: a bug in
    httpool (or in code that changed the pool's private state), never a network error."""


class ConnectionNotAvailable(HttpoolError):
    """Internal: the connection cannot take this request; the pool retries elsewhere."""


class StreamRefused(ConnectionNotAvailable):
    """Internal: the server refused the stream (HTTP/2 REFUSED_STREAM) without
    processing it; the pool retries on another connection, or after a backoff."""


# The tables the backends use. Order matters: the first matching entry wins,
# so the timeouts come before the OSError catch-all they subclass.
CONNECT_ERRORS: ExceptionMapping = {
    socket.timeout: ConnectTimeout,
    TimeoutError: ConnectTimeout,
    ssl.SSLError: ConnectError,
    OSError: ConnectError,
}
READ_ERRORS: ExceptionMapping = {
    socket.timeout: ReadTimeout,
    TimeoutError: ReadTimeout,
    OSError: ReadError,
}
WRITE_ERRORS: ExceptionMapping = {
    socket.timeout: WriteTimeout,
    TimeoutError: WriteTimeout,
    OSError: WriteError,
}
# h11 refusing what we send, and what the server sent. (The trio backend maps
# trio's own errors in its file, so that nothing else imports trio.)
H11_SEND_ERRORS: ExceptionMapping = {h11.LocalProtocolError: LocalProtocolError}
H11_RECEIVE_ERRORS: ExceptionMapping = {h11.RemoteProtocolError: RemoteProtocolError}


def translate(exc: BaseException, mapping: ExceptionMapping) -> BaseException:
    """Return the httpool error for ``exc`` under ``mapping``, or ``exc`` itself."""
    if isinstance(exc, HttpoolError):
        return exc
    for from_exc, to_exc in mapping.items():
        if isinstance(exc, from_exc):
            new = to_exc(str(exc) or type(exc).__name__)
            new.__cause__ = exc
            return new
    return exc


class ConvertExceptions:
    """A ``with`` block that raises ``convert(error)`` from any ``Exception``
    raised in it, unless ``convert`` returns None (the error goes on as it is).

    A class rather than a ``@contextmanager`` generator, for the reason
    ``_MapExceptions`` gives: the converted error must not keep its
    request's frames alive in a reference cycle."""

    __slots__ = ("_convert",)

    def __init__(self, convert: typing.Callable[[Exception], BaseException | None]) -> None:
        self._convert = convert

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        if not isinstance(exc_value, Exception):
            return
        new = self._convert(exc_value)
        if new is None or new is exc_value:
            return
        try:
            raise new from exc_value
        finally:
            del new


def map_exceptions(mapping: ExceptionMapping) -> _MapExceptions:
    """A ``with`` block that re-raises any exception matching ``mapping`` as
    its httpool counterpart."""
    return _MapExceptions(mapping)


class _MapExceptions:
    """A class rather than a ``@contextmanager`` generator, and the new error
    is not left in a local: either would put the error in a reference cycle
    with its own traceback's frames (on CPython 3.12+ a finished generator's
    frame links to contextlib's ``__exit__`` frame, which holds the old
    error; a local ``new`` would hold it on every version), and the failed
    request's frames, its connection among their locals, would stay alive
    until the cycle collector runs."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: ExceptionMapping) -> None:
        self._mapping = mapping

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        if not isinstance(exc_value, Exception):
            return
        new = translate(exc_value, self._mapping)
        if new is exc_value:
            return
        try:
            raise new from exc_value
        finally:
            del new
