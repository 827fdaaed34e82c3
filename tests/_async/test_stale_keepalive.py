"""Stale keep-alive connections: the server hangs up between requests, or under one.

Written once; runs on asyncio, trio and (generated) threads, against the real
loopback server. Two ways a reused connection turns out dead:

- between requests: the server closes the idle connection
  (``close_idle_connections`` does it at once, so a thousand rounds take about
  a second instead of a thousand idle timeouts). The pool must notice before
  reuse (the liveness probe on the one connection it hands out) or, if the
  close is not visible yet, retry the request on a new connection;
- under a request, after the probe: the server reads the request and hangs up
  without an answer (``drop_requests``). A GET goes again, once, on a new
  connection; a POST fails with ``RemoteProtocolError`` unless the caller opted
  in with the ``retry_non_idempotent`` extension.
"""

from __future__ import annotations

import pytest

import httpool
from httpool import AsyncConnectionPool
from httpool._async.connection import AsyncHTTPConnection
from httpool._backends.default import async_default_backend
from tests.support.http_server import HTTPServer

ROUNDS = 1000


async def test_stale_idle_connection_never_fails_a_request(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        assert (await pool.request("GET", server.url + "/")).status == 200
        for _ in range(ROUNDS):
            assert server.close_idle_connections() == 1
            response = await pool.request("GET", server.url + "/")
            assert response.status == 200 and response.content == b"Hello, world!"
        stats = pool.stats()
        assert stats.connections == 1 and stats.streams_in_use == 0 and stats.queued == 0
        pool.check_invariants()
    # Each round cost exactly one new connection, and the server answered each once.
    assert server.connections_accepted == ROUNDS + 1
    assert server.requests_handled == ROUNDS + 1


async def test_probe_catches_a_stale_connection_before_a_post(server: HTTPServer) -> None:
    # A POST is never retried, so each success here is the probe's doing. The
    # short sleep lets the event loop run: asyncio's probe reads what the
    # transport has taken in, so it misses a close the loop has not seen yet.
    backend = async_default_backend()
    async with AsyncConnectionPool() as pool:
        assert (await pool.request("GET", server.url + "/")).status == 200
        for _ in range(50):
            assert server.close_idle_connections() == 1
            await backend.sleep(0.002)
            response = await pool.request("POST", server.url + "/echo", content=b"once")
            assert response.status == 200 and response.content == b"once"
        assert server.connections_accepted == 51
        pool.check_invariants()


async def test_get_is_retried_once_when_the_server_hangs_up_under_it(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        assert (await pool.request("GET", server.url + "/")).status == 200
        server.drop_requests = 1
        response = await pool.request("GET", server.url + "/")
        assert response.status == 200 and response.content == b"Hello, world!"
        # Read on the reused connection and dropped, then sent on a new one.
        assert [head.method for head in server.requests] == [b"GET"] * 3
        assert server.connections_accepted == 2
        pool.check_invariants()


async def test_retry_happens_only_once(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        assert (await pool.request("GET", server.url + "/")).status == 200
        server.drop_requests = 2
        with pytest.raises(httpool.RemoteProtocolError):
            await pool.request("GET", server.url + "/")
        assert len(server.requests) == 3 and server.connections_accepted == 2
        stats = pool.stats()
        assert stats.connections == 0 and stats.streams_in_use == 0
        pool.check_invariants()
        assert (await pool.request("GET", server.url + "/")).status == 200


async def test_post_is_not_retried_when_the_server_hangs_up_under_it(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        assert (await pool.request("GET", server.url + "/")).status == 200
        server.drop_requests = 1
        with pytest.raises(httpool.RemoteProtocolError):
            await pool.request("POST", server.url + "/echo", content=b"once only")
        # The body reached the server once; it was not sent again.
        assert [head.method for head in server.requests] == [b"GET", b"POST"]
        assert server.connections_accepted == 1
        stats = pool.stats()
        assert stats.connections == 0 and stats.streams_in_use == 0
        pool.check_invariants()
        assert (await pool.request("GET", server.url + "/")).status == 200


async def test_post_is_retried_when_the_caller_opts_in(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        assert (await pool.request("GET", server.url + "/")).status == 200
        server.drop_requests = 1
        response = await pool.request(
            "POST",
            server.url + "/echo",
            content=b"twice is fine",
            extensions={"retry_non_idempotent": True},
        )
        assert response.status == 200 and response.content == b"twice is fine"
        assert [head.method for head in server.requests] == [b"GET", b"POST", b"POST"]
        assert server.connections_accepted == 2
        pool.check_invariants()


async def test_fresh_connection_is_not_retried(server: HTTPServer) -> None:
    # Only a *reused* connection may have gone stale; a new one that fails is
    # the server's answer, and sending again would only repeat it.
    async with AsyncConnectionPool() as pool:
        server.drop_requests = 1
        with pytest.raises(httpool.RemoteProtocolError):
            await pool.request("GET", server.url + "/")
        assert len(server.requests) == 1 and server.connections_accepted == 1
        pool.check_invariants()


async def test_a_probe_that_raises_leaves_the_pool_intact(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe runs halfway through an arrival's bookkeeping. Whatever it
    # raises must reach the caller as itself (the cleanup once failed on the
    # half-registered request with a KeyError of its own), and leave no trace.
    def broken_probe(connection: AsyncHTTPConnection) -> bool:
        raise RuntimeError("probe broke")

    async with AsyncConnectionPool() as pool:
        assert (await pool.request("GET", server.url + "/")).status == 200
        with monkeypatch.context() as patch:
            patch.setattr(AsyncHTTPConnection, "is_alive", broken_probe)
            with pytest.raises(RuntimeError, match="probe broke"):
                await pool.request("GET", server.url + "/")
        pool.check_invariants()
        stats = pool.stats()
        assert (stats.connections, stats.idle, stats.queued) == (1, 1, 0)
        assert (await pool.request("GET", server.url + "/")).status == 200
        assert server.connections_accepted == 1
