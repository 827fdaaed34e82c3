"""Connections through an HTTP proxy: forwarding for http://, CONNECT tunnels otherwise.

Theory of operation: a forwarding connection is an HTTP/1.1 connection to
the proxy that carries requests for any ``http://`` origin, each sent with
its absolute URL as the target and the proxy's headers added; the pool keys
all of them by the proxy. A tunnel is an ``AsyncHTTPConnection`` to one
origin whose raw stream is not a TCP connection to that origin but a
``CONNECT`` tunnel through the proxy (itself over TLS for an ``https://``
proxy): once the proxy answers 2xx, TLS to the origin (SNI and certificate
for the origin's host, ALPN for HTTP/2) and the protocol connection are set
up exactly as on a direct connection. A tunnel therefore serves one origin
only, and the pool treats both kinds like any other connection.

A refused ``CONNECT`` is a ``ProxyError`` naming the status; the connection
to the proxy is closed. Bytes the proxy sent after its 2xx head are kept for
a plain tunnel (ws://) and refused for a TLS one, where they cannot be TLS.
Nothing here knows of the pool.
"""

from __future__ import annotations

import http
import ssl
import sys
import types
from collections.abc import Iterable

from .._backends.base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream
from .._exceptions import CONNECT_ERRORS, ProxyError, map_exceptions
from .._models import Headers, Request, Response
from .._ssl import ssl_context_for
from .._synchronization import AsyncShieldCancellation, uninterruptible
from .._trace import Trace
from .._urls import URL, Origin
from .connection import AsyncHTTPConnection
from .connection_config import ConnectionConfig, connection_config
from .http11 import AsyncHTTP11Connection
from .interfaces import AsyncConnectionInterface
from .tls_in_tls import AsyncTLSCarrier
from .upgrade import AsyncHTTP11UpgradeStream

_TLS_SCHEMES = frozenset((b"https", b"wss"))


def authority(origin: Origin) -> bytes:
    """``host:port`` as a CONNECT target and Host header (IPv6 in brackets)."""
    host = origin.host
    if b":" in host:
        host = b"[" + host.partition(b"%")[0] + b"]"
    return b"%b:%d" % (host, origin.port)


def merge_headers(defaults: Headers, headers: Headers) -> Headers:
    """``defaults`` whose names ``headers`` does not have, then ``headers``."""
    if not defaults:
        return headers
    names = {name.lower() for name, _ in headers}
    return [(n, v) for n, v in defaults if n.lower() not in names] + headers


async def connect_to_proxy(
    config: ConnectionConfig, proxy: Origin, request: Request, timeout: float | None
) -> AsyncNetworkStream:
    """A TCP (or Unix socket) stream to the proxy, as ``config`` says (backend,
    local address, Unix socket, socket options). Raises ConnectError / ConnectTimeout."""
    backend = config.network_backend
    uds, local_address, socket_options = config.uds, config.local_address, config.socket_options
    if uds is not None:
        info = {"path": uds, "timeout": timeout, "socket_options": socket_options}
        async with Trace.start("connection.connect_unix_socket", request, info) as trace:
            with map_exceptions(CONNECT_ERRORS):
                stream = await backend.connect_unix_socket(
                    uds, timeout=timeout, socket_options=socket_options
                )
            trace.return_value = stream
        return stream
    host = proxy.host.decode("ascii")
    info = {
        "host": host,
        "port": proxy.port,
        "local_address": local_address,
        "timeout": timeout,
        "socket_options": socket_options,
    }
    async with Trace.start("connection.connect_tcp", request, info) as trace:
        with map_exceptions(CONNECT_ERRORS):
            stream = await backend.connect_tcp(
                host,
                proxy.port,
                timeout=timeout,
                local_address=local_address,
                socket_options=socket_options,
            )
        trace.return_value = stream
    return stream


class AsyncForwardHTTPConnection(AsyncConnectionInterface):
    """An HTTP/1.1 connection to the proxy carrying requests for any http:// origin.

    Each request goes with its absolute URL as the target (``GET
    http://example.com/ HTTP/1.1``) and the proxy's headers added (a request
    header of the same name wins). Args are those of ``AsyncHTTPConnection``,
    for the connection to the proxy (``config``: the configuration of that
    connection, HTTP/1.1 with the proxy's TLS context; the other arguments
    but ``proxy_origin`` and ``proxy_headers`` are then not used).
    """

    def __init__(
        self,
        proxy_origin: Origin,
        proxy_headers: Headers | None = None,
        proxy_ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float | None = None,
        retries: int = 0,
        local_address: str | None = None,
        uds: str | None = None,
        network_backend: AsyncNetworkBackend | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
        *,
        config: ConnectionConfig | None = None,
    ) -> None:
        self._proxy_origin = proxy_origin
        self._proxy_headers = list(proxy_headers or [])
        if config is None:
            config = connection_config(
                ssl_context=proxy_ssl_context,
                keepalive_expiry=keepalive_expiry,
                retries=retries,
                local_address=local_address,
                uds=uds,
                network_backend=network_backend,
                socket_options=socket_options,
            )
        self._connection = AsyncHTTPConnection(proxy_origin, config=config)

    @property
    def request_count(self) -> int:
        return self._connection.request_count

    @property
    def response_started(self) -> bool:
        return self._connection.response_started

    def _forwarded(self, request: Request) -> Request:
        proxy = self._proxy_origin
        url = URL(scheme=proxy.scheme, host=proxy.host, port=proxy.port, target=bytes(request.url))
        # sni_hostname is about the origin (the proxy gets its own), and a
        # target extension is already part of the URL sent as the target.
        extensions = {
            k: v for k, v in request.extensions.items() if k not in ("sni_hostname", "target")
        }
        return Request(
            request.method,
            url,
            headers=merge_headers(self._proxy_headers, request.headers),
            content=request.stream,
            extensions=extensions,
        )

    @uninterruptible
    async def aconnect(self, request: Request) -> None:
        await self._connection.aconnect(self._forwarded(request))

    @uninterruptible
    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` (an http:// one) through the proxy; raises what the
        connection to the proxy raises."""
        if request.url.scheme != b"http":
            raise RuntimeError(f"A forwarding connection cannot send {request.url.origin}")
        return await self._connection.handle_async_request(self._forwarded(request))

    @uninterruptible
    async def aclose(self) -> None:
        await self._connection.aclose()

    def can_handle_request(self, origin: Origin) -> bool:
        return origin.scheme == b"http"

    def capacity(self) -> int:
        return self._connection.capacity()

    def is_available(self) -> bool:
        return self._connection.is_available()

    def has_expired(self) -> bool:
        return self._connection.has_expired()

    def is_idle(self) -> bool:
        return self._connection.is_idle()

    def is_closed(self) -> bool:
        return self._connection.is_closed()

    def is_alive(self) -> bool:
        return self._connection.is_alive()

    def info(self) -> str:
        return self._connection.info()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.info()}]>"

    async def __aenter__(self) -> AsyncForwardHTTPConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        await self.aclose()


class AsyncTunnelHTTPConnection(AsyncHTTPConnection):
    """A connection to ``remote_origin`` through a CONNECT tunnel.

    Args:
        proxy_origin: the proxy (``https`` scheme: TLS to the proxy first).
        remote_origin: the one origin this tunnel serves.
        proxy_headers: sent with the CONNECT request.
        proxy_ssl_context: for TLS to an https proxy (default: the shared one).
        ssl_context: for TLS to the origin, as on a direct connection.
        The rest as for ``AsyncHTTPConnection`` (``uds``: reach the proxy there;
        ``config``: the pool's, for everything but the proxy's arguments).

    ``aconnect`` raises ``ProxyError`` when the proxy refuses the tunnel, and
    what a direct connection raises otherwise.
    """

    def __init__(
        self,
        proxy_origin: Origin,
        remote_origin: Origin,
        proxy_headers: Headers | None = None,
        proxy_ssl_context: ssl.SSLContext | None = None,
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
        super().__init__(
            remote_origin,
            ssl_context,
            keepalive_expiry,
            http1,
            http2,
            retries,
            local_address,
            uds,
            network_backend,
            socket_options,
            config=config,
        )
        self._proxy_origin = proxy_origin
        self._proxy_headers = list(proxy_headers or [])
        self._proxy_ssl_context = proxy_ssl_context

    async def _connect_once(self, request: Request, timeout: float | None) -> AsyncNetworkStream:
        # The "raw" stream of this connection: the tunnel, before the origin's TLS.
        stream = await connect_to_proxy(self._config, self._proxy_origin, request, timeout)
        try:
            if self._proxy_origin.scheme == b"https":
                stream = await self._proxy_tls(request, stream, timeout)
            return await self._open_tunnel(request, stream)
        except BaseException:
            with AsyncShieldCancellation():
                await stream.aclose()
            raise

    async def _proxy_tls(
        self, request: Request, stream: AsyncNetworkStream, timeout: float | None
    ) -> AsyncNetworkStream:
        if self._proxy_ssl_context is None:
            ssl_context = ssl_context_for(http1=True, http2=False)
        else:
            ssl_context = self._proxy_ssl_context
            ssl_context.set_alpn_protocols(["http/1.1"])
        server_hostname = self._proxy_origin.host.decode("ascii")
        info = {"ssl_context": ssl_context, "server_hostname": server_hostname, "timeout": timeout}
        async with Trace.start("connection.start_tls", request, info) as trace:
            with map_exceptions(CONNECT_ERRORS):
                tls_stream = await stream.start_tls(ssl_context, server_hostname, timeout)
            trace.return_value = tls_stream
        return tls_stream

    async def _open_tunnel(
        self, request: Request, stream: AsyncNetworkStream
    ) -> AsyncNetworkStream:
        proxy = self._proxy_origin
        target = authority(self._origin)
        connect = Request(
            b"CONNECT",
            URL(scheme=proxy.scheme, host=proxy.host, port=proxy.port, target=target),
            headers=merge_headers(self._proxy_headers, [(b"Host", target)]),
            extensions={k: v for k, v in request.extensions.items() if k in ("timeout", "trace")},
        )
        connection = AsyncHTTP11Connection(proxy, stream, clock=self._config.clock)
        # On an error the HTTP/1.1 connection has closed the stream itself.
        response = await connection.handle_async_request(connect)
        if not 200 <= response.status < 300:
            reason = response.extensions.get("reason_phrase", b"").decode("ascii", "replace")
            reason = reason or _standard_reason(response.status)
            with AsyncShieldCancellation():
                await connection.aclose()
            # httpcore's wording, which code written for it may compare.
            raise ProxyError(f"{response.status} {reason}".rstrip())
        tunnel: AsyncNetworkStream = response.extensions["network_stream"]
        if (
            self._origin.scheme in _TLS_SCHEMES
            and isinstance(tunnel, AsyncHTTP11UpgradeStream)
            and tunnel._leading_data
        ):
            raise ProxyError(
                f"The proxy sent {len(tunnel._leading_data)} bytes after accepting the"
                " tunnel, before the TLS handshake (which the client begins)."
            )
        return tunnel

    async def _start_tls(
        self,
        request: Request,
        stream: AsyncNetworkStream,
        timeout: float | None,
        offer_h2: bool,
    ) -> AsyncNetworkStream:
        if self._proxy_origin.scheme == b"https" and needs_tls_in_tls_fallback(stream):
            stream = AsyncTLSCarrier(stream)
        return await super()._start_tls(request, stream, timeout, offer_h2)


def _standard_reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def needs_tls_in_tls_fallback(stream: AsyncNetworkStream) -> bool:
    """Whether TLS over this TLS stream must run in memory: asyncio before 3.11
    cannot run ``loop.start_tls`` over a TLS transport."""
    if sys.version_info >= (3, 11):
        return False
    inner = getattr(stream, "_stream", stream)
    return type(inner).__module__.endswith("_backends.asyncio")
