"""The suite's fixtures, registered as a plugin by ``tests/conftest.py``.

Theory of operation: every test module sees these fixtures without importing
them (``pytest_plugins`` in the root conftest); a module may still define a
fixture of the same name, which wins inside that module (``tests/bench``
does, for ``server`` and ``tls_server``). Each server fixture starts its
server, yields it, stops it, and checks that no connection of it is left
open; the autouse ``_no_leaked_fds`` fails a module that leaves file
descriptors behind. The servers themselves and the TLS material live in
their own modules beside this one; this module only wires them to pytest.
"""

from __future__ import annotations

import contextlib
import gc
import os
import ssl
import time
import typing
from collections.abc import Callable, Iterator

import pytest
import trustme

from tests.support.echo_server import EchoServer
from tests.support.fault_server import FaultServer
from tests.support.h2_hostile import Hostility, hostile_server
from tests.support.h2_server import H2Server, make_tls_server
from tests.support.http_server import HTTPServer, make_tls_contexts
from tests.support.tls import CERT_HOSTNAMES, make_client_context, make_server_context

# File descriptors.


def _open_fds() -> dict[str, str]:
    fds: dict[str, str] = {}
    for fd in os.listdir("/proc/self/fd"):
        # The descriptor listdir itself used is gone by now.
        with contextlib.suppress(OSError):
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return fds


@pytest.fixture(autouse=True, scope="module")
def _no_leaked_fds() -> Iterator[None]:
    """Fail the module if it leaves file descriptors open (Linux only)."""
    if not os.path.isdir("/proc/self/fd"):
        yield
        return
    before = _open_fds()
    yield
    # Server threads and closed-but-unreferenced sockets need a moment and a
    # collection to go away; a real leak survives both.
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        after = _open_fds()
        if len(after) <= len(before) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if len(after) > len(before):
        new = {fd: target for fd, target in after.items() if before.get(fd) != target}
        pytest.fail(
            f"test module leaked {len(after) - len(before)} file descriptor(s); new: {new}",
            pytrace=False,
        )


# TLS material (tests/support/tls.py).


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_certificate(tls_ca: trustme.CA) -> trustme.LeafCert:
    """A certificate for ``CERT_HOSTNAMES``, issued by ``tls_ca``."""
    return tls_ca.issue_cert(*CERT_HOSTNAMES)


@pytest.fixture
def server_ssl_context(tls_certificate: trustme.LeafCert) -> ssl.SSLContext:
    return make_server_context(tls_certificate, alpn=["h2", "http/1.1"])


@pytest.fixture
def client_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    return make_client_context(tls_ca)


# HTTP/1.1 (tests/support/http_server.py).


@pytest.fixture(scope="session")
def http_server_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    """A plain HTTP server, stopped (and checked for leaks) after the test."""
    with HTTPServer() as srv:
        yield srv
    assert srv.open_connections == 0


@pytest.fixture
def tls_server(http_server_ca: trustme.CA) -> Iterator[HTTPServer]:
    """An HTTPS server; ``tls_server.client_ssl_context`` trusts its certificate,
    which is valid for 127.0.0.1, localhost and example.org."""
    contexts = make_tls_contexts(http_server_ca, hostnames=("example.org",))
    with HTTPServer(ssl_context=contexts.server) as srv:
        srv.client_ssl_context = contexts.client
        yield srv
    assert srv.open_connections == 0


# HTTP/2 (tests/support/h2_server.py, tests/support/h2_hostile.py).


@pytest.fixture
def h2_server() -> Iterator[H2Server]:
    """A plain-TCP HTTP/2 server (prior knowledge), stopped after the test."""
    with H2Server() as server:
        yield server


@pytest.fixture
def h2_tls_server() -> Iterator[H2Server]:
    """An HTTP/2 server over TLS; ``client_ssl_context`` trusts it (set ALPN yourself)."""
    with make_tls_server() as server:
        yield server


@pytest.fixture
def make_h2_server() -> Iterator[Callable[..., H2Server]]:
    """A factory: ``make_h2_server(tls=False, **H2Server options)`` returns a
    started server, stopped after the test."""
    servers: list[H2Server] = []

    def make(*, tls: bool = False, **options: typing.Any) -> H2Server:
        server = make_tls_server(**options) if tls else H2Server(**options)
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def make_hostile_server() -> Iterator[Callable[..., tuple[H2Server, Hostility]]]:
    """A factory: ``make_hostile_server(name, **H2Server options)`` returns a
    started server and its ``Hostility`` record; stopped after the test."""
    servers: list[H2Server] = []

    def make(name: str, **options: typing.Any) -> tuple[H2Server, Hostility]:
        server, hostility = hostile_server(name, **options)
        servers.append(server.start())
        return server, hostility

    yield make
    for server in servers:
        server.stop()


# Faults and raw bytes (tests/support/fault_server.py, tests/support/echo_server.py).


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A ``FaultServer`` with the built-in ``FAULTS`` routes, stopped after the test."""
    with FaultServer() as srv:
        yield srv
    assert srv.open_connections == 0


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    """A plain TCP echo server."""
    with EchoServer() as server:
        yield server
