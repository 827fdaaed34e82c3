"""Pools that send every request through one proxy, with httpcore's names and arguments.

Theory of operation: ``AsyncHTTPProxy`` and ``AsyncSOCKSProxy`` are
``AsyncConnectionPool(proxy=Proxy(...))`` with the proxy given as httpcore
gives it (``proxy_url``, ``proxy_auth``, ...), and httpcore's attribute
names (``_proxy_url``, ...) set for code written for it. Everything else,
which connection a proxied request gets included, is the pool's: these
classes add no behaviour. They live apart from the proxy connections
(``http_proxy.py``, ``socks_proxy.py``), which the pool imports, so that no
module imports the pool back.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

from .._backends.base import SOCKET_OPTION, AsyncNetworkBackend
from .._models import HeaderTypes
from .._proxy import Proxy
from .._urls import URL
from .connection_pool import AsyncConnectionPool


class AsyncHTTPProxy(AsyncConnectionPool):
    """A connection pool that sends every request through an HTTP(S) proxy.

    The same as ``AsyncConnectionPool(proxy=Proxy(proxy_url, proxy_auth,
    proxy_headers, proxy_ssl_context), ...)``, with httpcore's arguments (the
    rest as for ``AsyncConnectionPool``):

    Args:
        proxy_url: ``http://`` or ``https://`` (TLS to the proxy).
        proxy_auth: ``(username, password)`` for Basic ``Proxy-Authorization``.
        proxy_headers: added to every forwarded request and every CONNECT.
        ssl_context: TLS to the origins (inside the tunnels).
        proxy_ssl_context: TLS to an https proxy.
    """

    def __init__(
        self,
        proxy_url: URL | bytes | str,
        proxy_auth: tuple[bytes | str, bytes | str] | None = None,
        proxy_headers: HeaderTypes = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy_ssl_context: ssl.SSLContext | None = None,
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
        proxy = Proxy(proxy_url, proxy_auth, proxy_headers, proxy_ssl_context)
        if proxy.is_socks:
            raise ValueError("AsyncHTTPProxy takes an http:// or https:// proxy URL.")
        super().__init__(
            ssl_context=ssl_context,
            proxy=proxy,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            http1=http1,
            http2=http2,
            retries=retries,
            local_address=local_address,
            uds=uds,
            network_backend=network_backend,
            socket_options=socket_options,
            max_connections_per_origin=max_connections_per_origin,
        )
        # httpcore's attribute names, which code written for it reads.
        self._proxy_url = proxy.url
        self._proxy_headers = proxy.headers
        self._proxy_ssl_context = proxy_ssl_context


class AsyncSOCKSProxy(AsyncConnectionPool):
    """A connection pool that sends every request through a SOCKS5 proxy.

    The same as ``AsyncConnectionPool(proxy=Proxy(proxy_url, proxy_auth), ...)``,
    with httpcore's arguments: ``proxy_url`` is ``socks5://`` or ``socks5h://``,
    ``proxy_auth`` a ``(username, password)``; the rest as for
    ``AsyncConnectionPool``. Raises ``ImportError`` without the ``socks`` extra.
    """

    def __init__(
        self,
        proxy_url: URL | bytes | str,
        proxy_auth: tuple[bytes | str, bytes | str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
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
        proxy = Proxy(proxy_url, proxy_auth)
        if not proxy.is_socks:
            raise ValueError("AsyncSOCKSProxy takes a socks5:// or socks5h:// proxy URL.")
        super().__init__(
            ssl_context=ssl_context,
            proxy=proxy,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            http1=http1,
            http2=http2,
            retries=retries,
            local_address=local_address,
            uds=uds,
            network_backend=network_backend,
            socket_options=socket_options,
            max_connections_per_origin=max_connections_per_origin,
        )
        self._proxy_url = proxy.url
        self._proxy_auth = proxy.auth
