"""HTTP/2 over TLS through the pool: fresh connections, and failed handshakes (issue 15).

Written once; runs on asyncio, trio and (generated) threads. The good server
is the h2 test server (``tests/support/h2_server.py``); the broken ones are
``TLSScriptServer`` (``tests/support/tls_script_server.py``): TLS with ALPN
``h2`` completes, then nothing, or a close. No request here sets a timeout:
what bounds them is the pool's own rules, and a watchdog that stops the broken
server (so that a regression fails the test instead of hanging it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import trustme

import httpool
from httpool import AsyncConnectionPool
from httpool._async import assignment, http2
from httpool._backends.default import async_default_backend
from tests.support.concurrency import AsyncTaskGroup
from tests.support.fault_server import HANG, FaultServer, send
from tests.support.h2_server import H2Server, tls_material
from tests.support.tls import make_server_context
from tests.support.tls_script_server import TLSScriptServer, limit_version

# Stops a broken server that still holds requests after this long: far beyond
# what the pool's bounds allow, so only a regression trips it.
WATCHDOG = 30.0
WAITERS = 10
ERRORS = (httpool.ConnectError, httpool.RemoteProtocolError, httpool.ConnectTimeout)


@pytest.fixture
def short_settings_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The default bound on the wait for SETTINGS, shortened for the test.
    monkeypatch.setattr(http2, "SETTINGS_TIMEOUT", 0.5)
    yield


def _h2_tls_pool(server: H2Server, **kwargs: object) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        http2=True,
        ssl_context=server.client_ssl_context,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
async def test_a_fresh_connection_per_request(h2_tls_server: H2Server, version: str) -> None:
    # Where the handshake race of issue 15 lives: the server's SETTINGS come
    # right behind its last handshake flight, on every connection.
    assert h2_tls_server.client_ssl_context is not None
    limit_version(h2_tls_server.client_ssl_context, version)
    requests = 200
    async with _h2_tls_pool(h2_tls_server) as pool:
        for _ in range(requests):
            response = await pool.request("GET", h2_tls_server.url + "/")
            assert response.extensions["http_version"] == b"HTTP/2"
            assert response.content == b"Hello, world!"
            await pool.aclose()  # the next request opens a new connection
        assert h2_tls_server.connections_accepted == requests
        pool.check_invariants()


async def test_goaway_then_close_over_tls_loses_no_request(
    make_h2_server: Callable[..., H2Server], caplog: pytest.LogCaptureFixture
) -> None:
    # The server sends GOAWAY, finishes what it promised, then close_notify
    # and FIN, while other streams are still being written: those are sent
    # again elsewhere. And asyncio has nothing to complain about.
    srv = make_h2_server(tls=True, goaway_after=50)
    statuses: list[int] = []

    async def fetch(i: int) -> None:
        method = "POST" if i % 2 else "GET"
        response = await pool.request(method, srv.url + "/slow?delay=0.2", content=b"x" * i)
        statuses.append(response.status)

    with caplog.at_level(logging.WARNING):
        async with _h2_tls_pool(srv, max_connections=10) as pool:
            async with AsyncTaskGroup() as group:
                for i in range(100):
                    group.start_soon(fetch, i)
            assert statuses == [200] * 100
            assert srv.streams_completed == 100
            pool.check_invariants()
    assert "eof_received" not in caplog.text


async def _line_up(pool: AsyncConnectionPool, server: TLSScriptServer) -> None:
    """Wait until all but one of the requests are parked behind the first
    connection, whose handshake ``server`` holds; then let it go on."""
    backend = async_default_backend()
    for _ in range(3000):
        if pool.stats().queued == WAITERS - 1:
            break
        await backend.sleep(0.01)
    server.gate.set()


class _Watchdog:
    """Stops ``server`` after ``WATCHDOG`` seconds unless disarmed first."""

    def __init__(self, server: TLSScriptServer) -> None:
        self.fired = False
        self._server = server
        self._timer = threading.Timer(WATCHDOG, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self._server.stop()

    def disarm(self) -> None:
        self._timer.cancel()
        self._timer.join()


@pytest.mark.parametrize("then", ["hang", "close"])
async def test_a_failed_first_connection_is_not_multiplied(
    then: str, h2_tls_server: H2Server, short_settings_wait: None
) -> None:
    """Requests parked behind an origin's first connection, which completes TLS
    (ALPN h2) and then sends no SETTINGS, or closes: each of them fails with
    a documented error after at most ``MAX_SHARED_FAILURES`` handshakes in all,
    not one handshake (and one wait for it to fail) after another per waiter."""
    _, certificate = tls_material()
    context = make_server_context(certificate, alpn=["h2"])
    broken = TLSScriptServer(context, then=then, hold=True)
    errors: list[BaseException] = []

    async def fetch() -> None:
        try:
            await pool.request("GET", broken.url + "/")
        except ERRORS as exc:
            errors.append(exc)

    with broken:
        watchdog = _Watchdog(broken)
        started = time.monotonic()
        try:
            async with _h2_tls_pool(h2_tls_server, max_connections=4) as pool:
                async with AsyncTaskGroup() as group:
                    for _ in range(WAITERS):
                        group.start_soon(fetch)
                    await _line_up(pool, broken)
                elapsed = time.monotonic() - started
                assert not watchdog.fired, f"requests still waiting after {WATCHDOG} s"
                assert len(errors) == WAITERS
                assert broken.handshakes <= assignment.MAX_SHARED_FAILURES, broken.handshakes
                if then == "hang":
                    # The server did send nothing: the message says so.
                    assert all("sent no HTTP/2 SETTINGS" in str(exc) for exc in errors)
                else:
                    assert all("closed" in str(exc) for exc in errors)
                assert elapsed < WATCHDOG
                pool.check_invariants()
                stats = pool.stats()
                assert (stats.connections, stats.queued, stats.streams_in_use) == (0, 0, 0)
                # The pool is fine: a good server is served as usual.
                response = await pool.request("GET", h2_tls_server.url + "/")
                assert response.status == 200
                pool.check_invariants()
        finally:
            watchdog.disarm()


async def test_a_failed_tls_handshake_is_not_multiplied(h2_tls_server: H2Server) -> None:
    # The certificate is not trusted: every parked request fails with the
    # handshake's ConnectError, after at most MAX_SHARED_FAILURES handshakes.
    untrusted = make_server_context(_untrusted_certificate(), alpn=["h2"])
    broken = TLSScriptServer(untrusted, then="hang", hold=True)
    errors: list[BaseException] = []

    async def fetch() -> None:
        try:
            await pool.request("GET", broken.url + "/")
        except httpool.ConnectError as exc:
            errors.append(exc)

    with broken:
        watchdog = _Watchdog(broken)
        try:
            async with _h2_tls_pool(h2_tls_server, max_connections=4) as pool:
                async with AsyncTaskGroup() as group:
                    for _ in range(WAITERS):
                        group.start_soon(fetch)
                    await _line_up(pool, broken)
                assert not watchdog.fired
                assert len(errors) == WAITERS
                assert broken.accepted <= assignment.MAX_SHARED_FAILURES
                pool.check_invariants()
        finally:
            watchdog.disarm()


def _untrusted_certificate() -> trustme.LeafCert:
    return trustme.CA().issue_cert("127.0.0.1", "localhost")


PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"


async def test_a_frame_before_the_servers_settings_is_named() -> None:
    # The first frame must be SETTINGS. When another comes first, the error
    # says so at once instead of "the server sent no SETTINGS" a timeout later.
    with FaultServer(on_accept=[[send(PING), HANG]]) as srv:
        async with AsyncConnectionPool(http1=False, http2=True) as pool:
            started = time.monotonic()
            with pytest.raises(httpool.RemoteProtocolError, match="PingReceived, not the server"):
                await pool.request("GET", srv.url + "/", extensions={"timeout": {"connect": 20}})
            assert time.monotonic() - started < 10
            pool.check_invariants()
