"""How a pool's connections connect: one frozen record, built once per pool.

Theory of operation: the arguments of a pool that are about connecting (TLS
context, protocols, connect retries, local address, Unix socket, socket
options, network backend, keep-alive expiry) are resolved once into a
``ConnectionConfig``, which the pool hands to every connection it makes:
direct, CONNECT tunnel, SOCKS5 (and, with the proxy's TLS context and
HTTP/1.1 only, forwarding). A connection built on its own builds one from its
own arguments. The record is frozen and shared by every connection and
thread of a pool; nothing changes it after construction, so connections
read it without copying. Building one fails at once for an optional
dependency that is missing (``http2=True`` without h2), not on the first
request. This module knows nothing of the pool, of requests or of I/O.
"""

from __future__ import annotations

import dataclasses
import importlib
import ssl
import time
from collections.abc import Callable, Iterable

from .._backends.base import SOCKET_OPTION, AsyncNetworkBackend
from .._backends.default import async_default_backend

HTTP2_EXTRA_MISSING = (
    "http2=True needs the 'http2' extra (the h2 package): pip install 'httpool[http2]'"
)


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Everything a connection needs to know to connect, as the pool was given it.

    Attributes:
        ssl_context: for https/wss (None: a shared verifying context).
        keepalive_expiry: seconds an idle connection stays reusable.
        http1: offer HTTP/1.1.
        http2: offer HTTP/2.
        retries: how many times a failed connect is retried.
        local_address: the local IP to bind to.
        uds: connect to this Unix socket instead of the origin's host.
        network_backend: where streams come from.
        socket_options: ``setsockopt`` arguments applied before connecting.
        clock: the backend's clock (virtual on the mock backend); None for a
            backend written for httpcore, which has none.
    """

    ssl_context: ssl.SSLContext | None
    keepalive_expiry: float | None
    http1: bool
    http2: bool
    retries: int
    local_address: str | None
    uds: str | None
    network_backend: AsyncNetworkBackend
    socket_options: Iterable[SOCKET_OPTION] | None
    clock: Callable[[], float] | None


def connection_config(
    ssl_context: ssl.SSLContext | None = None,
    keepalive_expiry: float | None = None,
    http1: bool = True,
    http2: bool = False,
    retries: int = 0,
    local_address: str | None = None,
    uds: str | None = None,
    network_backend: AsyncNetworkBackend | None = None,
    socket_options: Iterable[SOCKET_OPTION] | None = None,
) -> ConnectionConfig:
    """The configuration for these arguments (``network_backend`` None: the
    running runtime's). Raises ``ImportError`` naming the ``http2`` extra when
    ``http2`` is true and h2 cannot be imported."""
    if http2:
        require_http2()
    backend = async_default_backend() if network_backend is None else network_backend
    clock = getattr(backend, "now", None)
    if getattr(type(backend), "now", None) is AsyncNetworkBackend.now:
        # The base class's clock, read without its Python frame (the pool and
        # its connections read it several times per request).
        clock = time.monotonic
    return ConnectionConfig(
        ssl_context=ssl_context,
        keepalive_expiry=keepalive_expiry,
        http1=http1,
        http2=http2,
        retries=retries,
        local_address=local_address,
        uds=uds,
        network_backend=backend,
        socket_options=socket_options,
        clock=clock,
    )


def require_http2() -> None:
    """Import the sibling ``http2`` module (and with it h2), or raise
    ``ImportError`` saying which extra to install."""
    try:
        importlib.import_module(f"{__package__}.http2")
    except ImportError as exc:
        raise ImportError(HTTP2_EXTRA_MISSING) from exc
