"""``response_started``, the question behind the pool's retry rule, is part of
the connection interface and answered by every connection class of httpool."""

from __future__ import annotations

import pytest

from httpool._async.connection import AsyncHTTPConnection
from httpool._async.http2 import AsyncHTTP2Connection
from httpool._async.http11 import AsyncHTTP11Connection
from httpool._async.http_proxy import AsyncForwardHTTPConnection, AsyncTunnelHTTPConnection
from httpool._async.interfaces import AsyncConnectionInterface
from httpool._async.socks_proxy import AsyncSocks5Connection
from httpool._sync.connection import HTTPConnection
from httpool._sync.http2 import HTTP2Connection
from httpool._sync.http11 import HTTP11Connection
from httpool._sync.http_proxy import ForwardHTTPConnection, TunnelHTTPConnection
from httpool._sync.interfaces import ConnectionInterface
from httpool._sync.socks_proxy import Socks5Connection

CONNECTIONS = [
    (AsyncConnectionInterface, AsyncHTTP11Connection),
    (AsyncConnectionInterface, AsyncHTTP2Connection),
    (AsyncConnectionInterface, AsyncHTTPConnection),
    (AsyncConnectionInterface, AsyncForwardHTTPConnection),
    (AsyncConnectionInterface, AsyncTunnelHTTPConnection),
    (AsyncConnectionInterface, AsyncSocks5Connection),
    (ConnectionInterface, HTTP11Connection),
    (ConnectionInterface, HTTP2Connection),
    (ConnectionInterface, HTTPConnection),
    (ConnectionInterface, ForwardHTTPConnection),
    (ConnectionInterface, TunnelHTTPConnection),
    (ConnectionInterface, Socks5Connection),
]


@pytest.mark.parametrize(("interface", "cls"), CONNECTIONS)
def test_every_connection_answers_response_started(interface: type, cls: type) -> None:
    assert "response_started" in vars(interface)
    assert issubclass(cls, interface)
    # Its own answer (or a base class's of httpool), not the interface's default.
    owner = next(klass for klass in cls.__mro__ if "response_started" in vars(klass))
    assert owner is not interface


class _Minimal(AsyncConnectionInterface):
    """A connection written against the interface alone, as for httpcore."""


def test_a_connection_that_cannot_tell_is_never_retried() -> None:
    assert _Minimal().response_started is True
