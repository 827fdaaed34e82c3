"""The connection pool: a request's path from arrival to a released connection.

Theory of operation: every decision about which request gets which
connection is made by ``AsyncPoolState`` (``assignment.py``), under the pool
lock, in O(1). This module only drives a request through it: *arrive* (and
wait on the waiter's event if queued), establish the connection if the
request was given a new one, send the request, and *release* the connection
when the response is closed. Whatever goes wrong at any await on that path,
including cancellation at the instant a connection is assigned, the
reservation is returned to the state, and connections the state retires are
closed outside the lock, shielded from cancellation.

The async pool needs no lock: its state changes never await. The lock type
is a no-op here and a ``threading.Lock`` in the generated sync pool.

How to connect (TLS context, protocols, retries, addresses, socket options,
backend) is resolved once, when the pool is built, into one frozen
``ConnectionConfig`` that every connection the pool makes shares; the pool
itself keeps only what it decides with (limits, the proxy, the clock).
"""

from __future__ import annotations

import dataclasses
import random
import ssl
import time
import types
import typing
from collections.abc import AsyncIterable, AsyncIterator, Iterable

from .._backends.base import SOCKET_OPTION, AsyncNetworkBackend
from .._deadline import Deadline, deadline_of, start_deadline
from .._exceptions import (
    ConnectionNotAvailable,
    PoolTimeout,
    ReadError,
    RemoteProtocolError,
    StreamRefused,
    WriteError,
)
from .._models import ByteStream, Request, Response
from .._proxy import Proxy
from .._stats import PoolStats
from .._synchronization import (
    AsyncPoolLock,
    AsyncShieldCancellation,
    protect_on_trio,
    uninterruptible,
)
from .._urls import REQUEST_SCHEMES, Origin, unsupported_protocol
from .assignment import AsyncPoolState
from .connection import AsyncHTTPConnection
from .connection_config import ConnectionConfig, connection_config
from .http_proxy import AsyncForwardHTTPConnection, AsyncTunnelHTTPConnection
from .interfaces import AsyncConnectionInterface, AsyncRequestInterface
from .pool_records import PoolEntry, Waiter
from .socks_proxy import AsyncSocks5Connection, import_socksio

_IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"))
# How often a request goes elsewhere because its connection could not take
# it (an HTTP/2 GOAWAY or refused stream: never processed, so always safe).
MAX_UNAVAILABLE_RETRIES = 8
# A stream the server refused (HTTP/2 REFUSED_STREAM: not processed) goes at
# once to another connection of its origin that has a free slot; without one
# it waits this long, doubled at each refusal (with jitter) up to the maximum,
# and then takes any connection. No connection is opened for it: a server
# that refuses streams is usually busy, and a new connection costs it more.
REFUSED_BACKOFF = 0.05
REFUSED_BACKOFF_MAX = 1.0
# How often a request goes again after a *reused* connection turned out dead
# before any response byte. Each such connection is closed, and the request
# prefers a new one; only a failure on a new connection is final.
MAX_STALE_RETRIES = 8
_WAITING = "waiting for a connection"


def _from_config(name: str) -> typing.Any:
    """A read-only pool attribute read from its ``ConnectionConfig``."""
    return property(lambda pool: getattr(pool._config, name), doc=f"``_config.{name}``")


class AsyncConnectionPool(AsyncRequestInterface):
    """A pool of HTTP connections shared by concurrent requests.

    Args:
        ssl_context: for https; the default verifies against the system CA store.
        proxy: send every request through this ``Proxy`` (HTTP, HTTPS or SOCKS5).
        max_connections: connections open at once, over all origins.
        max_keepalive_connections: idle connections kept; the oldest beyond it are closed.
        keepalive_expiry: seconds an idle connection is kept before it is closed.
        http1: offer HTTP/1.1.
        http2: offer HTTP/2 (needs the ``http2`` extra).
        retries: connect attempts to retry, with exponential backoff.
        local_address: local IP to bind outgoing connections to.
        uds: connect every request to this Unix socket instead.
        network_backend: where connections come from (default: the running runtime's).
        socket_options: ``setsockopt`` triples applied before connecting.
        max_connections_per_origin: connections open at once to one origin.

    Raises ``ValueError`` for a limit that is not a positive whole number, and
    ``ImportError`` naming the extra for ``http2=True`` without h2 installed
    (or a SOCKS proxy without socksio).
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
        max_connections: int | None = 10,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = None,
        http1: bool = True,
        http2: bool = False,
        retries: int = 0,
        local_address: str | None = None,
        uds: str | None = None,
        network_backend: AsyncNetworkBackend | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
        max_connections_per_origin: int | None = None,
    ) -> None:
        _check_limit("max_connections", max_connections, minimum=1)
        _check_limit("max_keepalive_connections", max_keepalive_connections, minimum=0)
        _check_limit("max_connections_per_origin", max_connections_per_origin, minimum=1)
        _check_limit("retries", retries, minimum=0)
        if keepalive_expiry is not None and not (0 <= keepalive_expiry < float("inf")):
            raise ValueError(f"keepalive_expiry must be None or >= 0, not {keepalive_expiry!r}")
        if not (http1 or http2):
            raise ValueError("at least one of http1 and http2 must be enabled")
        # Built once, shared by every connection (raises ImportError for
        # http2=True without h2, now rather than on the first request).
        self._config = connection_config(
            ssl_context,
            keepalive_expiry,
            http1,
            http2,
            retries,
            local_address,
            uds,
            network_backend,
            socket_options,
        )
        self._proxy = proxy
        # Every http:// request through an HTTP proxy goes to one pool key, the
        # proxy's: forwarding connections serve any http origin. (Its scheme is
        # http whatever the proxy's, and a tunnel's key, its origin, never is.)
        self._forward_key: Origin | None = None
        # An HTTP proxy's forwarding connections: HTTP/1.1 with the proxy's TLS context.
        self._forward_config: ConnectionConfig | None = None
        if proxy is not None:
            if proxy.is_socks:
                import_socksio()  # fail now, not on the first request
            else:
                url = proxy.url
                self._forward_key = Origin(b"http", url.host, url.origin.port)
                self._forward_config = dataclasses.replace(
                    self._config, ssl_context=proxy.ssl_context, http1=True, http2=False
                )
        self._max_connections = 2**62 if max_connections is None else max_connections
        # The backend's clock (virtual on the mock backend); a third-party
        # backend written for httpcore has none, and gets the monotonic one.
        self._now: typing.Callable[[], float] = self._config.clock or time.monotonic
        self._lock = AsyncPoolLock()
        protect_on_trio()  # Ctrl-C must not land inside the bookkeeping
        self._state = AsyncPoolState(
            create_connection=self.create_connection,
            may_multiplex=self._may_multiplex,
            max_connections=self._max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            max_connections_per_origin=max_connections_per_origin,
        )

    def create_connection(self, origin: Origin) -> AsyncConnectionInterface:
        """Make the connection object for ``origin`` (no I/O). Override to customise.

        With a proxy: a SOCKS5 connection, a forwarding connection to an HTTP
        proxy (for the proxy's key, an http origin) or a CONNECT tunnel.
        """
        if self._proxy is not None:
            return self._proxy_connection(self._proxy, origin)
        return AsyncHTTPConnection(origin, config=self._config)

    def _proxy_connection(self, proxy: Proxy, origin: Origin) -> AsyncConnectionInterface:
        if proxy.is_socks:
            return AsyncSocks5Connection(
                proxy.url.origin, origin, proxy_auth=proxy.auth, config=self._config
            )
        if origin.scheme == b"http":
            return AsyncForwardHTTPConnection(
                proxy.url.origin, proxy.headers, config=self._forward_config
            )
        return AsyncTunnelHTTPConnection(
            proxy.url.origin,
            origin,
            proxy.headers,
            proxy.ssl_context,
            config=self._config,
        )

    def _may_multiplex(self, origin: Origin) -> bool:
        if self._forward_key is not None and origin.scheme == b"http":
            return False  # forwarding is HTTP/1.1 to the proxy
        # HTTP/2 comes from ALPN on TLS, or from prior knowledge without HTTP/1.1.
        config = self._config
        return config.http2 and (origin.scheme in (b"https", b"wss") or not config.http1)

    # httpcore's attribute names, which a create_connection written for it reads.
    _ssl_context = _from_config("ssl_context")
    _keepalive_expiry = _from_config("keepalive_expiry")
    _http1 = _from_config("http1")
    _http2 = _from_config("http2")
    _retries = _from_config("retries")
    _local_address = _from_config("local_address")
    _uds = _from_config("uds")
    _network_backend = _from_config("network_backend")
    _socket_options = _from_config("socket_options")

    @property
    def connections(self) -> list[AsyncConnectionInterface]:
        """The pool's connections, oldest first: a snapshot for inspection."""
        with self._lock:
            return [entry.connection for entry in self._state.entries]

    def stats(self) -> PoolStats:
        """Connections by state, queued requests and running totals."""
        with self._lock:
            return self._state.stats()

    def check_invariants(self) -> None:
        """Raise ``PoolInvariantError`` if the pool's bookkeeping is inconsistent.
        Costs O(connections + queued requests); meant for tests and debugging.
        Plain checks, not ``assert``: it works under ``python -O`` too."""
        with self._lock:
            self._state.check_invariants()

    @uninterruptible
    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` on a pooled connection and return the response.

        The response body is unread; closing the response releases the
        connection. Raises ``PoolTimeout`` when no connection came within
        ``timeout["pool"]``, UnsupportedProtocol or LocalProtocolError for a URL
        it cannot send to, and the connection's errors otherwise.
        With ``timeout["total"]``, the whole request (waiting here, connecting,
        sending, and the response until it is closed) ends by that deadline,
        with the timeout of the phase it cut short.
        """
        # Raises for a URL without an origin (no or unknown scheme, no host, a
        # port out of range): httpcore accepts those when a URL is built.
        origin = request.url.origin
        if origin.scheme not in REQUEST_SCHEMES:
            raise unsupported_protocol(origin.scheme)
        if self._forward_key is not None and origin.scheme == b"http":
            origin = self._forward_key
        timeout = request.extensions.get("timeout")
        pool_timeout = None
        deadline = None
        if timeout:
            pool_timeout = timeout.get("pool")
            if timeout.get("total") is not None:
                request = start_deadline(request, self._now)
                deadline = deadline_of(request)
        stale = 0
        unavailable = 0
        refused = 0
        avoid: PoolEntry | None = None
        while True:
            waiter = Waiter(origin)
            waiter.wants_new_connection = stale > 0
            waiter.avoid = avoid
            try:
                with self._lock:
                    to_close = self._state.arrive(waiter, self._now())
            except BaseException:
                await self._acquire_failed(waiter)
                raise
            if to_close or waiter.entry is None:
                # Only a request that must close or wait pays for a coroutine.
                await self._acquire(waiter, to_close, pool_timeout, deadline)
            entry = waiter.entry
            assert entry is not None
            connection = entry.connection
            if waiter.connect:
                await self._connect(entry, request)
            try:
                # Handed straight over from a closing response, unprobed: bytes
                # or an EOF that came since would be read as this request's
                # response (and after a cancelled hand-over the connection may
                # remember an older probe). Probe it now, just before the request.
                if not (
                    waiter.connect or waiter.probed or entry.multiplexed or connection.is_alive()
                ):
                    raise ConnectionNotAvailable()
                response = await entry.handler.handle_async_request(request)
            except BaseException as exc:
                if not entry.multiplexed and not connection.is_closed():
                    # The request died at an unknown point of the exchange: the
                    # connection's state is unknowable, so it is not reused.
                    await self._close_connections([connection])
                await self._release(entry)
                if isinstance(exc, ConnectionNotAvailable):
                    unavailable += 1
                    refused += isinstance(exc, StreamRefused)
                    if unavailable > MAX_UNAVAILABLE_RETRIES:
                        raise RemoteProtocolError(
                            f"No connection took the request in {unavailable} attempts"
                            f" ({refused} refused by the server with REFUSED_STREAM)."
                        ) from exc
                    if isinstance(exc, StreamRefused):
                        avoid = entry
                        await self._after_refusal(origin, entry, refused)
                    continue
                if (
                    waiter.connect
                    or stale >= MAX_STALE_RETRIES
                    or not _may_retry(exc, request, connection)
                ):
                    raise
                # A reused keep-alive connection the server had closed: the
                # request never reached it, so it goes again.
                stale += 1
                continue
            response.stream = PoolByteStream(response.stream, self, entry)
            return response

    async def _acquire(
        self,
        waiter: Waiter,
        to_close: Iterable[AsyncConnectionInterface],
        timeout: float | None,
        deadline: Deadline | None,
    ) -> None:
        """After ``waiter`` arrived: close what its arrival retired, and wait if
        it was queued, until it holds its connection (``waiter.entry``)."""
        try:
            await self._close_connections(to_close)
            if waiter.entry is None:
                await self._wait(waiter, timeout, deadline)
            if waiter.error is not None:
                # The connection it waited for failed, and so did the ones
                # before (see assignment.py): its error, raised afresh for
                # this request.
                raise _reraisable(waiter.error) from waiter.error
        except BaseException:
            await self._acquire_failed(waiter)
            raise

    async def _acquire_failed(self, waiter: Waiter) -> None:
        """The request gave up (or failed) while arriving or waiting: no
        reservation stays behind."""
        with self._lock:
            to_close = self._state.cancel(waiter, self._now())
        await self._close_connections(to_close)

    async def _after_refusal(self, origin: Origin, entry: PoolEntry, refused: int) -> None:
        """Back off before a refused request goes again, unless another
        connection of its origin has a free slot for it now."""
        with self._lock:
            elsewhere = self._state.has_other_free_slot(origin, entry)
        if not elsewhere:
            delay = min(REFUSED_BACKOFF * 2 ** (refused - 1), REFUSED_BACKOFF_MAX)
            await self._config.network_backend.sleep(delay * (0.5 + random.random() / 2))

    async def _wait(self, waiter: Waiter, timeout: float | None, deadline: Deadline | None) -> None:
        event = waiter.event
        assert event is not None
        by_deadline = False
        if deadline is not None:
            timeout, by_deadline = deadline.limit(timeout, PoolTimeout, _WAITING)
        if await event.wait(timeout):
            return
        with self._lock:
            assigned = waiter.entry is not None or waiter.error is not None
        if not assigned:
            if deadline is not None and by_deadline:
                raise deadline.error(PoolTimeout, _WAITING)
            raise PoolTimeout(f"No connection became available within {timeout} seconds.")

    async def _connect(self, entry: PoolEntry, request: Request) -> None:
        try:
            await entry.connection.aconnect(request)
        except BaseException as exc:
            # A cancellation is this request's own business, not a failure
            # to hand on to the requests blocked behind the connection. (No
            # local names the error: this frame is in its traceback, and the
            # cycle would keep the connection until the collector ran.)
            with self._lock:
                to_close = self._state.failed(entry, exc if isinstance(exc, Exception) else None)
            await self._close_connections(to_close)
            raise
        entry.handler = _handler(entry.connection)
        with self._lock:
            to_close = self._state.connected(entry, self._now())
        if to_close:
            await self._close_connections(to_close)

    async def _release(self, entry: PoolEntry) -> None:
        with self._lock:
            to_close = self._state.release(entry, self._now())
        if to_close:
            await self._close_connections(to_close)

    async def _close_connections(self, connections: Iterable[AsyncConnectionInterface]) -> None:
        with AsyncShieldCancellation():
            for connection in connections:
                await connection.aclose()

    @uninterruptible
    async def aclose(self) -> None:
        """Close every connection. The pool stays usable: later requests open new ones."""
        with self._lock:
            to_close = self._state.close_all()
        await self._close_connections(to_close)

    async def __aenter__(self) -> AsyncConnectionPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # httpcore's wording (a connection being opened counts as active);
        # stats() has the finer counts.
        s = self.stats()
        return (
            f"<{type(self).__name__} [Requests: {s.streams_in_use} active, {s.queued} queued"
            f" | Connections: {s.active} active, {s.idle} idle]>"
        )


class PoolByteStream:
    """A response body that gives its connection back to the pool when closed.

    An iterator object rather than an async generator, so that a body left
    half-read holds no generator frame for the garbage collector to finalise.
    """

    __slots__ = ("_closed", "_entry", "_iterator", "_pool", "_stream")

    def __init__(self, stream: typing.Any, pool: AsyncConnectionPool, entry: PoolEntry) -> None:
        self._stream = stream
        self._iterator: AsyncIterator[bytes] | None = None
        self._pool = pool
        self._entry = entry
        self._closed = False

    def __aiter__(self) -> PoolByteStream:
        return self

    @uninterruptible
    async def __anext__(self) -> bytes:
        if self._iterator is None:
            stream: AsyncIterable[bytes] = self._stream
            self._iterator = stream.__aiter__()
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            raise
        except BaseException:
            await self.aclose()
            raise

    @uninterruptible
    async def aclose(self) -> None:
        # Not shielded here: a connection's body stream shields the steps of
        # its own close that must not be cut short (on trio a cancel scope per
        # response cost a twelfth of a request's CPU), and the release below
        # runs whatever happens.
        if self._closed:
            return
        self._closed = True
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            # The pool's _release, inline: one coroutine less per response.
            pool = self._pool
            with pool._lock:
                to_close = pool._state.release(self._entry, pool._now())
            if to_close:
                await pool._close_connections(to_close)


def _handler(connection: AsyncConnectionInterface) -> AsyncConnectionInterface:
    """What the pool sends requests on: an ``AsyncHTTPConnection``'s protocol
    connection once it is open (its ``handle_async_request`` only forwards to
    it, past an origin check the pool has made: one coroutine less per
    request), any other connection itself. Its other methods are still asked
    through the connection the pool made."""
    if type(connection) is AsyncHTTPConnection:
        protocol = connection.connection
        if protocol is not None:
            return protocol
    return connection


def _may_retry(exc: BaseException, request: Request, connection: AsyncConnectionInterface) -> bool:
    """Whether a request that failed on a reused connection may be sent again:
    nothing of the response arrived, the failure is the connection's, and
    sending twice is harmless (an idempotent method, or the caller said so
    with the ``retry_non_idempotent`` extension) and possible (bytes body)."""
    return (
        isinstance(exc, (ReadError, WriteError, RemoteProtocolError))
        and not connection.response_started
        and (request.method in _IDEMPOTENT or bool(request.extensions.get("retry_non_idempotent")))
        and isinstance(request.stream, ByteStream)
    )


def _reraisable(error: BaseException) -> BaseException:
    """A copy of ``error`` to raise in another request, so that concurrent
    requests do not all grow one traceback; ``error`` itself if it cannot be
    copied from its arguments."""
    try:
        return type(error)(*error.args)
    except Exception:
        return error


def _check_limit(name: str, value: int | None, *, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value}")
