"""A connection to one origin that connects itself: TCP or Unix socket, TLS, protocol.

Theory of operation: ``AsyncHTTPConnection`` starts unconnected. ``aconnect``
opens the stream (retrying connect failures with exponential backoff on the
backend's clock), wraps it in TLS for https and wss, and hands it to the
protocol connection that ALPN (or the configuration) picks. From then on
every call is delegated to that protocol connection. Before it exists the
answers describe a connection about to be opened (capacity 1, not idle, not
closed); after a failed connect, a closed one.

Everything about how to connect is read from one shared, frozen
``ConnectionConfig`` (``connection_config.py``): the pool's, or one built
from the arguments. HTTP/2 is offered only when asked for, and asking for it
without h2 installed fails when the connection (or pool) is built; a server
that picks ``h2`` all the same gets HTTP/2 if ``h2`` is installed (as in
httpcore), else a protocol error. Connect failures, TLS handshakes included,
are retried ``retries`` times. This module knows nothing of the pool; it
makes no I/O outside ``aconnect``, requests and ``aclose``.
"""

from __future__ import annotations

import importlib
import ssl
import time
import types
from collections.abc import Iterable

from .._backends.base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream
from .._deadline import Deadline, deadline_of, start_deadline
from .._exceptions import (
    CONNECT_ERRORS,
    ConnectError,
    ConnectionNotAvailable,
    ConnectTimeout,
    RemoteProtocolError,
    map_exceptions,
)
from .._logging import check as check_logging
from .._models import Request, Response, get_timeout
from .._ssl import ssl_context_for
from .._synchronization import AsyncShieldCancellation, uninterruptible
from .._trace import Trace
from .._urls import REQUEST_SCHEMES, Origin, unsupported_protocol
from .connection_config import ConnectionConfig, connection_config
from .http11 import AsyncHTTP11Connection
from .interfaces import AsyncConnectionInterface

RETRIES_BACKOFF_FACTOR = 0.5  # the n-th retry (from 0) waits 0.5 s * 2**n
_TLS_SCHEMES = frozenset((b"https", b"wss"))


def _http2_module() -> types.ModuleType | None:
    """The sibling ``http2`` module, or ``None`` while it (or ``h2``) is missing."""
    try:
        return importlib.import_module(f"{__package__}.http2")
    except ImportError:
        return None


class AsyncHTTPConnection(AsyncConnectionInterface):
    """One connection to ``origin``, opened on first use.

    Args:
        origin: where to connect; requests must be for this origin.
        ssl_context: for https/wss; by default a shared verifying context.
            A context given here gets its ALPN protocols set.
        keepalive_expiry: seconds an idle connection stays reusable.
        http1: offer HTTP/1.1.
        http2: offer HTTP/2.
        retries: how many times a failed connect is retried, after 0.5 s,
            1 s, 2 s, ... on the backend's clock.
        local_address: the local IP to bind to.
        uds: connect to this Unix socket instead of the origin's host.
        network_backend: where streams come from (default: the running runtime's).
        socket_options: ``setsockopt`` arguments applied before connecting.
        config: the pool's configuration, shared by its connections; when it
            is given, the arguments above (all but ``origin``) are not used.

    Raises ``ImportError`` naming the ``http2`` extra for ``http2=True``
    without h2 installed.
    """

    def __init__(
        self,
        origin: Origin,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float | None = None,
        http1: bool = True,
        http2: bool = False,
        retries: int = 0,
        local_address: str | None = None,
        uds: str | None = None,
        network_backend: AsyncNetworkBackend | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
        *,
        config: ConnectionConfig | None = None,
    ) -> None:
        self._origin = origin
        if config is None:
            config = connection_config(
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
        self._config = config
        self._connection: AsyncConnectionInterface | None = None
        # Set when connecting failed or the connection was closed unopened.
        self._closed = False
        self._failed = False

    @property
    def connection(self) -> AsyncConnectionInterface | None:
        """The protocol connection, once connected."""
        return self._connection

    @property
    def request_count(self) -> int:
        """Requests carried so far (0 before connecting)."""
        return int(getattr(self._connection, "request_count", 0))

    @property
    def response_started(self) -> bool:
        """Whether any byte of the current response arrived (``False`` before connecting)."""
        connection = self._connection
        return False if connection is None else connection.response_started

    @uninterruptible
    async def aconnect(self, request: Request) -> None:
        """Open the connection; does nothing if it is already open.

        Raises ``UnsupportedProtocol`` for a scheme other than http, https, ws
        and wss, ``ConnectError`` / ``ConnectTimeout`` when every attempt
        failed, ``RemoteProtocolError`` when the server picked HTTP/2 and h2 is
        not installed, and ``ConnectionNotAvailable`` after a failed connect
        or a close.
        """
        if self._connection is not None:
            return
        if self._closed:
            raise ConnectionNotAvailable()
        check_logging()  # notice a change of logging levels before the first step
        try:
            if self._origin.scheme not in REQUEST_SCHEMES:
                raise unsupported_protocol(self._origin.scheme)
            # Importable: building the configuration checked it.
            http2_module = _http2_module() if self._config.http2 else None
            stream = await self._open_stream(request, offer_h2=http2_module is not None)
            try:
                connection = self._protocol_connection(stream, http2_module)
            except BaseException:
                with AsyncShieldCancellation():
                    await stream.aclose()
                raise
            try:
                # HTTP/2 exchanges SETTINGS here, so its capacity is known.
                await connection.aconnect(request)
            except BaseException:
                with AsyncShieldCancellation():
                    await connection.aclose()
                raise
            self._connection = connection
            if self._closed:  # aclose() was called while we were connecting
                await connection.aclose()
        except BaseException:
            self._closed = self._failed = True
            raise

    def _protocol_connection(
        self, stream: AsyncNetworkStream, http2_module: types.ModuleType | None
    ) -> AsyncConnectionInterface:
        if self._origin.scheme in _TLS_SCHEMES:
            ssl_object = stream.get_extra_info("ssl_object")
            alpn = None if ssl_object is None else ssl_object.selected_alpn_protocol()
        else:
            alpn = None if self._config.http1 else "h2"  # prior knowledge
        if alpn == "h2":
            # Not offered (http2=False) yet selected: speak it if h2 is there, as
            # httpcore does (a scripted mock stream does this; a TLS server may not).
            http2_module = http2_module or _http2_module()
            if http2_module is None:
                raise RemoteProtocolError("The server selected HTTP/2, which is not installed.")
            connection: AsyncConnectionInterface = http2_module.AsyncHTTP2Connection(
                origin=self._origin,
                stream=stream,
                keepalive_expiry=self._config.keepalive_expiry,
                clock=self._config.clock,
            )
            return connection
        return AsyncHTTP11Connection(
            self._origin, stream, self._config.keepalive_expiry, clock=self._config.clock
        )

    async def _open_stream(self, request: Request, *, offer_h2: bool) -> AsyncNetworkStream:
        timeout = get_timeout(request.extensions, "connect")
        deadline = deadline_of(request)
        delays = (RETRIES_BACKOFF_FACTOR * 2**n for n in range(self._config.retries))
        while True:
            try:
                # A failed TLS handshake is retried too, as in httpcore.
                return await self._connect_once_with_tls(request, timeout, deadline, offer_h2)
            except (ConnectError, ConnectTimeout):
                delay = next(delays, None)
                if delay is None:
                    raise
                if deadline is not None:
                    if deadline.remaining() <= 0:
                        raise
                    delay = min(delay, deadline.remaining())
                async with Trace.start("connection.retry", request, {"delay": delay}):
                    await self._config.network_backend.sleep(delay)

    async def _connect_once_with_tls(
        self,
        request: Request,
        timeout: float | None,
        deadline: Deadline | None,
        offer_h2: bool,
    ) -> AsyncNetworkStream:
        limit, by_deadline = _limit(timeout, deadline)
        try:
            stream = await self._connect_once(request, limit)
        except ConnectTimeout as exc:
            _raise_if_cut_short(deadline, by_deadline, exc)
            raise
        if self._origin.scheme in _TLS_SCHEMES:
            try:
                limit, by_deadline = _limit(timeout, deadline)
                stream = await self._start_tls(request, stream, limit, offer_h2)
            except BaseException as exc:
                with AsyncShieldCancellation():
                    await stream.aclose()
                _raise_if_cut_short(deadline, by_deadline, exc)
                raise
        return stream

    async def _connect_once(self, request: Request, timeout: float | None) -> AsyncNetworkStream:
        config = self._config
        backend = config.network_backend
        if config.uds is not None:
            info = {"path": config.uds, "timeout": timeout, "socket_options": config.socket_options}
            async with Trace.start("connection.connect_unix_socket", request, info) as trace:
                with map_exceptions(CONNECT_ERRORS):
                    stream = await backend.connect_unix_socket(
                        config.uds, timeout=timeout, socket_options=config.socket_options
                    )
                trace.return_value = stream
            return stream
        host = self._origin.host.decode("ascii")
        info = {
            "host": host,
            "port": self._origin.port,
            "local_address": config.local_address,
            "timeout": timeout,
            "socket_options": config.socket_options,
        }
        async with Trace.start("connection.connect_tcp", request, info) as trace:
            with map_exceptions(CONNECT_ERRORS):
                stream = await backend.connect_tcp(
                    host,
                    self._origin.port,
                    timeout=timeout,
                    local_address=config.local_address,
                    socket_options=config.socket_options,
                )
            trace.return_value = stream
        return stream

    async def _start_tls(
        self,
        request: Request,
        stream: AsyncNetworkStream,
        timeout: float | None,
        offer_h2: bool,
    ) -> AsyncNetworkStream:
        if self._config.ssl_context is None:
            # Shared and cached: its ALPN list is part of what is cached.
            ssl_context = ssl_context_for(http1=self._config.http1 or not offer_h2, http2=offer_h2)
        else:
            ssl_context = self._config.ssl_context
            ssl_context.set_alpn_protocols(["http/1.1", "h2"] if offer_h2 else ["http/1.1"])
        sni = request.extensions.get("sni_hostname")
        if isinstance(sni, bytes):
            sni = sni.decode("ascii")
        server_hostname = sni or self._origin.host.decode("ascii")
        info = {"ssl_context": ssl_context, "server_hostname": server_hostname, "timeout": timeout}
        async with Trace.start("connection.start_tls", request, info) as trace:
            with map_exceptions(CONNECT_ERRORS):
                tls_stream = await stream.start_tls(ssl_context, server_hostname, timeout)
            trace.return_value = tls_stream
        return tls_stream

    @uninterruptible
    async def handle_async_request(self, request: Request) -> Response:
        """Connect if needed, then send ``request`` on the protocol connection.

        Raises what ``aconnect`` and the protocol connection raise.
        """
        if request.url.origin != self._origin:
            raise RuntimeError(
                f"Attempted to send request to {request.url.origin} on connection to {self._origin}"
            )
        timeout = request.extensions.get("timeout")
        if timeout and "total" in timeout:  # used without a pool: the deadline starts here
            request = start_deadline(request, self._config.clock or time.monotonic)
        if self._connection is None:
            await self.aconnect(request)
            assert self._connection is not None
        return await self._connection.handle_async_request(request)

    @uninterruptible
    async def aclose(self) -> None:
        """Close the connection (opened or not). Idempotent; never raises."""
        self._closed = True
        if self._connection is not None:
            await self._connection.aclose()

    def can_handle_request(self, origin: Origin) -> bool:
        return origin == self._origin

    def capacity(self) -> int:
        if self._connection is None:
            return 0 if self._closed else 1
        return self._connection.capacity()

    def is_available(self) -> bool:
        if self._connection is None:
            return False
        return self._connection.is_available()

    def has_expired(self) -> bool:
        if self._connection is None:
            return self._closed
        return self._connection.has_expired()

    def is_idle(self) -> bool:
        if self._connection is None:
            return False
        return self._connection.is_idle()

    def is_closed(self) -> bool:
        if self._connection is None:
            return self._closed
        return self._connection.is_closed()

    def is_alive(self) -> bool:
        if self._connection is None:
            return not self._closed
        return self._connection.is_alive()

    def info(self) -> str:
        if self._connection is None:
            if self._closed:
                return "CONNECTION FAILED" if self._failed else "CLOSED"
            return "CONNECTING"
        return self._connection.info()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.info()}]>"

    async def __aenter__(self) -> AsyncHTTPConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        await self.aclose()


_CONNECTING = "connecting"


def _limit(timeout: float | None, deadline: Deadline | None) -> tuple[float | None, bool]:
    """The connect timeout, or what is left of the deadline if that is less
    (and whether it is); the deadline's ConnectTimeout if nothing is left."""
    if deadline is None:
        return timeout, False
    return deadline.limit(timeout, ConnectTimeout, _CONNECTING)


def _raise_if_cut_short(deadline: Deadline | None, by_deadline: bool, exc: BaseException) -> None:
    """A connect timeout that the deadline set is the deadline's."""
    if deadline is not None and by_deadline and isinstance(exc, ConnectTimeout):
        raise deadline.error(ConnectTimeout, _CONNECTING) from exc
