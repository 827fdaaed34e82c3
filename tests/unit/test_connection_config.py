"""The pool resolves its connection arguments once, into one frozen
``ConnectionConfig`` that every connection it makes shares."""

from __future__ import annotations

import dataclasses
import ssl

import pytest

import httpool
from httpool._sync.connection_config import ConnectionConfig
from httpool._sync.http_proxy import ForwardHTTPConnection, TunnelHTTPConnection
from httpool._sync.socks_proxy import Socks5Connection

ORIGIN = httpool.Origin(b"https", b"example.com", 443)
PLAIN = httpool.Origin(b"http", b"example.com", 80)


def test_every_connection_shares_the_pools_config() -> None:
    context = ssl.create_default_context()
    backend = httpool.MockBackend([])
    pool = httpool.ConnectionPool(
        ssl_context=context,
        keepalive_expiry=5.0,
        http2=True,
        retries=2,
        local_address="127.0.0.1",
        network_backend=backend,
        socket_options=[(1, 2, 3)],
    )
    config = pool._config
    assert isinstance(config, ConnectionConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.retries = 3  # type: ignore[misc]
    assert (config.ssl_context, config.network_backend) == (context, backend)
    assert (config.keepalive_expiry, config.http1, config.http2, config.retries) == (
        5.0,
        True,
        True,
        2,
    )
    assert config.clock == backend.now
    first, second = pool.create_connection(ORIGIN), pool.create_connection(ORIGIN)
    assert first._config is second._config is config  # type: ignore[attr-defined]
    # httpcore's attribute names, which a create_connection written for it reads.
    assert (pool._ssl_context, pool._keepalive_expiry, pool._http1, pool._http2) == (
        context,
        5.0,
        True,
        True,
    )
    assert (pool._retries, pool._local_address, pool._uds) == (2, "127.0.0.1", None)
    assert (pool._network_backend, pool._socket_options) == (backend, [(1, 2, 3)])


def test_proxy_connections_share_it_too() -> None:
    proxy_context = ssl.create_default_context()
    pool = httpool.HTTPProxy(
        "https://127.0.0.1:8080", proxy_ssl_context=proxy_context, http2=True, retries=1
    )
    tunnel = pool.create_connection(ORIGIN)
    assert isinstance(tunnel, TunnelHTTPConnection) and tunnel._config is pool._config
    forward = pool.create_connection(pool._forward_key)  # type: ignore[arg-type]
    assert isinstance(forward, ForwardHTTPConnection)
    # Forwarding: HTTP/1.1 to the proxy, with the proxy's TLS context, built once.
    leg = forward._connection._config
    assert leg is pool.create_connection(PLAIN)._connection._config  # type: ignore[attr-defined]
    assert (leg.ssl_context, leg.http1, leg.http2, leg.retries) == (proxy_context, True, False, 1)
    socks = httpool.SOCKSProxy("socks5://127.0.0.1:1080", retries=1)
    connection = socks.create_connection(ORIGIN)
    assert isinstance(connection, Socks5Connection) and connection._config is socks._config


def test_a_connection_alone_builds_its_own() -> None:
    connection = httpool.HTTPConnection(ORIGIN, retries=3, uds="/tmp/x.sock")
    assert (connection._config.retries, connection._config.uds) == (3, "/tmp/x.sock")
