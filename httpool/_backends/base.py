"""The network backend interface: what a connection needs from a byte stream.

Theory of operation: a backend opens streams (TCP, Unix socket) and can
sleep; a stream reads, writes, upgrades to TLS and closes. Every method that
can block takes its own ``timeout`` in seconds (``None`` waits forever) and
raises the httpool timeout for its kind (``ConnectTimeout``, ``ReadTimeout``,
``WriteTimeout``) or the matching network error, never a raw ``OSError``.

``read`` returns ``b""`` at end of stream. ``close``/``aclose`` is idempotent
and never raises. ``get_extra_info`` answers at least ``"ssl_object"``,
``"client_addr"``, ``"server_addr"``, ``"socket"`` and ``"is_readable"``
(``True`` when a read would not block: data arrived or the peer closed; the
pool's liveness probe on an idle connection). A stream whose ``write``
hands the whole buffer over before it can suspend (the asyncio one) has a
``whole_writes = True`` attribute: a cancellation never splits its writes, so
an HTTP/2 connection survives a cancelled writer. An attribute, not an extra
info, so that a wrapper passing ``get_extra_info`` through does not claim it.
Likewise a stream that receives in chunks of its own may say how large with
a ``read_size`` attribute (the asyncio one: 256 KiB, the transport's reads):
HTTP/1.1 then reads bodies in pieces that large, so that each chunk is handed
over whole instead of sliced (copied) into 64 KiB pieces.

Beyond httpcore's interface each backend has ``now()``, the monotonic clock
the pool reads for keep-alive expiry, so that the mock backend can run on
virtual time, and ``resolve(host, port)``, the address a ``socks5://`` proxy
is sent for a host name (the system resolver here; the mock backends answer
without DNS). A backend without ``resolve`` (written for httpcore) gets the
system resolver.

The shape matches httpcore 1.x so third-party backends port unchanged.
"""

from __future__ import annotations

import ssl
import time
import typing
from collections.abc import Iterable

from .._resolver import AsyncResolver, Resolver

SOCKET_OPTION = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class NetworkStream:
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise NotImplementedError()  # pragma: no cover

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        raise NotImplementedError()  # pragma: no cover

    def close(self) -> None:
        raise NotImplementedError()  # pragma: no cover

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        raise NotImplementedError()  # pragma: no cover

    def get_extra_info(self, info: str) -> typing.Any:
        return None  # pragma: no cover


class NetworkBackend:
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> NetworkStream:
        raise NotImplementedError()  # pragma: no cover

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> NetworkStream:
        raise NotImplementedError()  # pragma: no cover

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # pragma: no cover

    def now(self) -> float:
        return time.monotonic()

    def resolve(self, host: str, port: int) -> str:
        """The first address ``host`` resolves to (system resolver). Raises ``ConnectError``."""
        return Resolver().resolve(host, port)


class AsyncNetworkStream:
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise NotImplementedError()  # pragma: no cover

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        raise NotImplementedError()  # pragma: no cover

    async def aclose(self) -> None:
        raise NotImplementedError()  # pragma: no cover

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        raise NotImplementedError()  # pragma: no cover

    def get_extra_info(self, info: str) -> typing.Any:
        return None  # pragma: no cover


class AsyncNetworkBackend:
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise NotImplementedError()  # pragma: no cover

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise NotImplementedError()  # pragma: no cover

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError()  # pragma: no cover

    def now(self) -> float:
        return time.monotonic()

    async def resolve(self, host: str, port: int) -> str:
        """The first address ``host`` resolves to (system resolver). Raises ``ConnectError``."""
        return await AsyncResolver().resolve(host, port)
