"""Connections through a SOCKS5 proxy, the protocol spoken by socksio (sans-IO).

Theory of operation: a SOCKS5 connection is an ``AsyncHTTPConnection`` to
one origin whose raw stream is a TCP connection to the proxy on which the
SOCKS5 handshake (method selection, optional username/password, CONNECT)
succeeded. From then on the stream is the origin's: TLS (SNI, certificate,
ALPN for HTTP/2) and the protocol connection are set up as on a direct
connection, so a SOCKS connection serves one origin only.

socksio builds every message and parses every reply; this module only
reads exactly as many bytes as the next reply is long, so that nothing the
origin sends after the handshake is read into the wrong hands. ``socks5``
sends the address resolved here (by the network backend's ``resolve``, so a
mock backend never touches DNS), ``socks5h`` the host name for the proxy
to resolve. Every failure of the handshake (no acceptable method, refused
credentials, a refused CONNECT, a malformed reply, a connection lost
midway) is a ``ProxyError`` naming it. socksio is imported only when a
SOCKS proxy is used, so ``import httpool`` works without it.
"""

from __future__ import annotations

import ssl
import types
from collections.abc import Iterable

from .._backends.base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream
from .._exceptions import (
    ConnectTimeout,
    ConvertExceptions,
    ProxyError,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from .._models import Request
from .._resolver import AsyncResolver
from .._synchronization import AsyncShieldCancellation
from .._trace import Trace
from .._urls import Origin
from .connection import AsyncHTTPConnection
from .connection_config import ConnectionConfig
from .http_proxy import connect_to_proxy

# httpcore's names for what the proxy says, so that its messages read the same.
_AUTH_METHODS = {
    0x00: "NO AUTHENTICATION REQUIRED",
    0x01: "GSSAPI",
    0x02: "USERNAME/PASSWORD",
    0xFF: "NO ACCEPTABLE METHODS",
}
_REPLY_MESSAGES = {
    b"\x01": "General SOCKS server failure",
    b"\x02": "Connection not allowed by ruleset",
    b"\x03": "Network unreachable",
    b"\x04": "Host unreachable",
    b"\x05": "Connection refused",
    b"\x06": "TTL expired",
    b"\x07": "Command not supported",
    b"\x08": "Address type not supported",
}
# The length of a CONNECT reply after its first 5 bytes, by address type
# (IPv4, domain name: its length byte was the 5th, IPv6), port included.
_ADDRESS_REST = {1: 3 + 2, 4: 15 + 2}


def import_socksio() -> types.ModuleType:
    """socksio's ``socks5`` module; ImportError naming the extra when missing."""
    try:
        import socksio.socks5
    except ImportError as exc:
        raise ImportError(
            "Using a SOCKS proxy requires the 'socks' extra: pip install 'httpool[socks]'"
        ) from exc
    return socksio.socks5


class AsyncSocks5Connection(AsyncHTTPConnection):
    """A connection to ``remote_origin`` through a SOCKS5 proxy (httpcore's class
    name, so that its repr reads as httpcore's).

    Args:
        proxy_origin: the proxy; scheme ``socks5`` (resolve the origin's host
            here) or ``socks5h`` (let the proxy resolve it).
        remote_origin: the one origin this connection serves.
        proxy_auth: ``(username, password)`` for username/password authentication.
        The rest as for ``AsyncHTTPConnection`` (``uds``: reach the proxy there;
        ``config``: the pool's, for everything but the proxy's arguments).

    ``aconnect`` raises ``ProxyError`` for a failed handshake, and what a
    direct connection raises otherwise.
    """

    def __init__(
        self,
        proxy_origin: Origin,
        remote_origin: Origin,
        proxy_auth: tuple[bytes, bytes] | None = None,
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
        import_socksio()
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
        self._proxy_auth = proxy_auth

    async def _connect_once(self, request: Request, timeout: float | None) -> AsyncNetworkStream:
        stream = await connect_to_proxy(self._config, self._proxy_origin, request, timeout)
        host, port = self._origin.host.decode("ascii"), self._origin.port
        info = {"stream": stream, "host": host, "port": port}
        try:
            async with Trace.start("socks.setup_socks5_connection", request, info) as trace:
                handshake = _Handshake(stream, timeout)
                with _handshake_errors():
                    await handshake.authenticate(self._proxy_auth)
                if self._proxy_origin.scheme == b"socks5":
                    # Resolved here, once the proxy has let us in.
                    host = await _resolve(self._config.network_backend, host, port)
                with _handshake_errors():
                    await handshake.connect(host, port)
                trace.return_value = stream
        except BaseException:
            with AsyncShieldCancellation():
                await stream.aclose()
            raise
        return stream


async def _resolve(backend: AsyncNetworkBackend, host: str, port: int) -> str:
    """The address ``socks5`` sends for ``host``: the backend's ``resolve`` (a mock
    answers without DNS), the system resolver for a backend that has none."""
    resolve = getattr(backend, "resolve", None)
    if resolve is None:
        return await AsyncResolver().resolve(host, port)
    return str(await resolve(host, port))


def _handshake_error(exc: Exception) -> BaseException | None:
    """Every failure of a handshake step as ``ProxyError`` (timeouts: ``ConnectTimeout``)."""
    from socksio.exceptions import SOCKSError

    if isinstance(exc, (SOCKSError, ValueError, OverflowError)):
        # A malformed reply (socksio), or a name or credential too long to send.
        return ProxyError(f"SOCKS5 handshake failed: {exc}")
    if isinstance(exc, (ReadTimeout, WriteTimeout)):
        return ConnectTimeout(f"SOCKS5 handshake timed out: {exc}")
    if isinstance(exc, (ReadError, WriteError)):
        return ProxyError(f"SOCKS5 handshake failed: {exc}")
    return None


def _handshake_errors() -> ConvertExceptions:
    return ConvertExceptions(_handshake_error)


class _Handshake:
    """One SOCKS5 handshake on ``stream``, driven through socksio."""

    def __init__(self, stream: AsyncNetworkStream, timeout: float | None) -> None:
        self._socks5 = import_socksio()
        self._connection = self._socks5.SOCKS5Connection()
        self._stream = stream
        self._timeout = timeout

    async def authenticate(self, auth: tuple[bytes, bytes] | None) -> None:
        s5 = self._socks5
        method = s5.SOCKS5AuthMethod.NO_AUTH_REQUIRED
        if auth is not None:
            method = s5.SOCKS5AuthMethod.USERNAME_PASSWORD
        await self._send(s5.SOCKS5AuthMethodsRequest([method]))
        reply = self._connection.receive_data(await self._read_exactly(2))
        if reply.method != method:
            requested = _AUTH_METHODS[method.value[0]]
            got = _AUTH_METHODS.get(reply.method.value[0], "UNKNOWN")
            raise ProxyError(f"Requested {requested} from proxy server, but got {got}.")
        if auth is not None:
            await self._send(s5.SOCKS5UsernamePasswordRequest(*auth))
            if not self._connection.receive_data(await self._read_exactly(2)).success:
                raise ProxyError("Invalid username/password")

    async def connect(self, host: str, port: int) -> None:
        s5 = self._socks5
        await self._send(
            s5.SOCKS5CommandRequest.from_address(s5.SOCKS5Command.CONNECT, (host, port))
        )
        head = await self._read_exactly(5)
        rest = head[4] + 2 if head[3] == 3 else _ADDRESS_REST.get(head[3])
        if head[0] != 5 or rest is None:
            raise ProxyError(f"The SOCKS5 proxy sent a malformed reply: {head!r}.")
        reply = self._connection.receive_data(head + await self._read_exactly(rest))
        if reply.reply_code != s5.SOCKS5ReplyCode.SUCCEEDED:
            reason = _REPLY_MESSAGES.get(reply.reply_code.value, repr(reply.reply_code))
            raise ProxyError(f"Proxy Server could not connect: {reason}.")

    async def _send(self, message: object) -> None:
        self._connection.send(message)
        await self._stream.write(self._connection.data_to_send(), self._timeout)

    async def _read_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = await self._stream.read(n - len(data), self._timeout)
            if not chunk:
                raise ProxyError("The SOCKS5 proxy closed the connection during the handshake.")
            data += chunk
        return data
