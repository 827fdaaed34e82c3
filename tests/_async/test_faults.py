"""The pool against a misbehaving server: every fault maps to its documented exception.

Each test plays one fault of ``tests/support/fault_server.py`` (resets and
closes before, inside and after the response head; truncated and malformed
chunked bodies; garbage heads; heads beyond the client's 64 KiB limit; slow
drips; servers that never answer or never read), checks the exception type
and that it came within its time bound (at once for a fault the client can
see, just after the timeout for one it cannot), then checks that the pool is
intact: invariants hold, no connection is left active, and the next request
on the same one-connection pool succeeds.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import socket
import time

import pytest

import httpool
from httpool import AsyncConnectionPool, AsyncMockBackend, Origin
from httpool._async.http11 import AsyncHTTP11Connection
from tests.support.fault_server import HANG, STALL, FaultServer, send

# Generous timeouts for faults the client sees at once: the test then proves
# the error did not come from a timeout by finishing well within them.
PROMPT = {"timeout": {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}}
PROMPT_BOUND = 1.0
# A short read timeout for faults only a timeout can end.
READ_TIMEOUT = 0.1
SHORT_READ = {"timeout": {"connect": 2.0, "read": READ_TIMEOUT, "write": 2.0, "pool": 2.0}}
TIMEOUT_BOUND = 1.0
TOO_LARGE = "larger than 65536 bytes"

# Path -> the documented exception. A reset is a ReadError (the transport
# failed); an orderly close at the wrong moment and anything that is not
# valid HTTP are RemoteProtocolErrors (the server broke the protocol).
PROMPT_FAULTS = [
    ("/reset-before-head", httpool.ReadError),
    ("/close-before-head", httpool.RemoteProtocolError),
    ("/reset-mid-head", httpool.ReadError),
    ("/close-mid-head", httpool.RemoteProtocolError),
    ("/reset-after-head", httpool.ReadError),
    ("/close-after-head", httpool.RemoteProtocolError),
    ("/reset-mid-body", httpool.ReadError),
    ("/close-mid-body", httpool.RemoteProtocolError),
    ("/chunked-truncated", httpool.RemoteProtocolError),
    ("/chunked-mid-chunk", httpool.RemoteProtocolError),
    ("/chunked-reset", httpool.ReadError),
    ("/chunked-bad-size", httpool.RemoteProtocolError),
    ("/chunked-no-crlf", httpool.RemoteProtocolError),
    ("/garbage-status", httpool.RemoteProtocolError),
    ("/garbage-binary", httpool.RemoteProtocolError),
    ("/garbage-status-code", httpool.RemoteProtocolError),
    ("/http09", httpool.RemoteProtocolError),
    ("/header-without-colon", httpool.RemoteProtocolError),
    ("/bad-content-length", httpool.RemoteProtocolError),
    ("/conflicting-content-length", httpool.RemoteProtocolError),
    ("/bad-transfer-encoding", httpool.RemoteProtocolError),
]


async def _assert_pool_intact(pool: AsyncConnectionPool, server: FaultServer) -> None:
    pool.check_invariants()
    stats = pool.stats()
    assert (stats.active, stats.streams_in_use, stats.queued) == (0, 0, 0), stats
    response = await pool.request("GET", server.url + "/ok", extensions=PROMPT)
    assert (response.status, response.content) == (200, b"ok")
    pool.check_invariants()
    stats = pool.stats()
    assert (stats.active, stats.streams_in_use, stats.connections) == (0, 0, 1), stats


@pytest.mark.parametrize(("path", "error"), PROMPT_FAULTS, ids=[p for p, _ in PROMPT_FAULTS])
async def test_fault_maps_to_its_exception_at_once(
    fault_server: FaultServer, path: str, error: type[Exception]
) -> None:
    # One connection at most: a connection the fault leaked would make the
    # next request wait for a PoolTimeout instead of succeeding.
    async with AsyncConnectionPool(max_connections=1) as pool:
        start = time.monotonic()
        with pytest.raises(error):
            await pool.request("GET", fault_server.url + path, extensions=PROMPT)
        assert time.monotonic() - start < PROMPT_BOUND
        await _assert_pool_intact(pool, fault_server)


@pytest.mark.parametrize("path", ["/reset-mid-body", "/close-mid-body", "/chunked-truncated"])
async def test_fault_while_streaming_the_body(fault_server: FaultServer, path: str) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises((httpool.ReadError, httpool.RemoteProtocolError)):
            async with pool.stream("GET", fault_server.url + path, extensions=PROMPT) as response:
                assert response.status == 200
                async for chunk in response.aiter_stream():
                    assert chunk  # the first chunk arrives; a later read fails
        await _assert_pool_intact(pool, fault_server)


@pytest.mark.parametrize("path", ["/drip-head", "/drip-body", "/hang"])
async def test_slow_or_silent_server_is_a_read_timeout(
    fault_server: FaultServer, path: str
) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        start = time.monotonic()
        with pytest.raises(httpool.ReadTimeout):
            await pool.request("GET", fault_server.url + path, extensions=SHORT_READ)
        assert READ_TIMEOUT * 0.9 <= time.monotonic() - start < TIMEOUT_BOUND
        await _assert_pool_intact(pool, fault_server)


async def test_drip_faster_than_the_read_timeout_completes(fault_server: FaultServer) -> None:
    # The read timeout bounds each wait, not the whole response (as in httpcore).
    extensions = {"timeout": {"read": 0.5}}
    async with AsyncConnectionPool(max_connections=1) as pool:
        response = await pool.request("GET", fault_server.url + "/drip-fast", extensions=extensions)
        assert response.content == b"ok" * 5
        await _assert_pool_intact(pool, fault_server)


@pytest.mark.parametrize(
    "path", ["/head-100k", "/header-line-100k", "/head-1m", "/endless-informational"]
)
async def test_response_head_beyond_the_limit(fault_server: FaultServer, path: str) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        start = time.monotonic()
        with pytest.raises(httpool.RemoteProtocolError, match=TOO_LARGE):
            await pool.request("GET", fault_server.url + path, extensions=PROMPT)
        assert time.monotonic() - start < PROMPT_BOUND
        await _assert_pool_intact(pool, fault_server)


async def test_response_head_within_the_limit(fault_server: FaultServer) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        response = await pool.request("GET", fault_server.url + "/head-60k", extensions=PROMPT)
        assert response.content == b"ok" and len(response.headers) > 10
        await _assert_pool_intact(pool, fault_server)


@pytest.mark.parametrize("extra", [0, 1])
async def test_head_limit_is_exact_even_in_one_read(extra: int) -> None:
    # h11 alone checks only an incomplete head, so a head larger than its
    # limit that arrives in one read would pass; the connection counts.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
    head += b"p" * (1000 - len(head) - 4 + extra) + b"\r\n\r\n"
    assert len(head) == 1000 + extra
    backend = AsyncMockBackend([head + b"ok"])
    stream = await backend.connect_tcp("example.com", 80)
    origin = Origin(b"http", b"example.com", 80)
    async with AsyncHTTP11Connection(origin, stream, max_incomplete_event_size=1000) as conn:
        if extra:
            with pytest.raises(httpool.RemoteProtocolError, match="larger than 1000 bytes"):
                await conn.request("GET", "http://example.com/")
            assert conn.is_closed()
        else:
            assert (await conn.request("GET", "http://example.com/")).content == b"ok"


async def test_server_that_speaks_first() -> None:
    with FaultServer(on_accept=[[send(b"SSH-2.0-OpenSSH_9.6\r\n")]]) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            with pytest.raises(httpool.RemoteProtocolError):
                await pool.request("GET", server.url + "/ok", extensions=PROMPT)
            await _assert_pool_intact(pool, server)


async def test_server_that_never_reads_is_a_write_timeout() -> None:
    # Larger than the loopback socket buffers of both ends together.
    body = b"x" * (64 * 1024 * 1024)
    extensions = {"timeout": {"write": 0.2, "read": 2.0, "pool": 2.0}}
    with FaultServer(on_accept=[[STALL]]) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            start = time.monotonic()
            with pytest.raises(httpool.WriteTimeout):
                await pool.request("POST", server.url + "/ok", content=body, extensions=extensions)
            assert time.monotonic() - start < TIMEOUT_BOUND + 1.0
            await _assert_pool_intact(pool, server)


async def test_server_that_accepts_and_never_answers(fault_server: FaultServer) -> None:
    # The connection is accepted by the kernel and the request read, nothing comes back.
    with FaultServer(on_accept=[[HANG]]) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            start = time.monotonic()
            with pytest.raises(httpool.ReadTimeout):
                await pool.request("GET", server.url + "/ok", extensions=SHORT_READ)
            assert READ_TIMEOUT * 0.9 <= time.monotonic() - start < TIMEOUT_BOUND
            await _assert_pool_intact(pool, server)
        assert server.received.startswith(b"GET /ok HTTP/1.1\r\n")


async def test_listener_that_never_accepts(fault_server: FaultServer) -> None:
    # The kernel completes the handshake from the backlog; no process ever answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        async with AsyncConnectionPool(max_connections=1) as pool:
            start = time.monotonic()
            with pytest.raises(httpool.ReadTimeout):
                await pool.request("GET", url, extensions=SHORT_READ)
            assert READ_TIMEOUT * 0.9 <= time.monotonic() - start < TIMEOUT_BOUND
            await _assert_pool_intact(pool, fault_server)


async def test_reset_on_a_reused_connection_is_retried_once(fault_server: FaultServer) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        await pool.request("GET", fault_server.url + "/ok", extensions=PROMPT)
        with pytest.raises(httpool.ReadError):
            await pool.request("GET", fault_server.url + "/reset-before-head", extensions=PROMPT)
        # Once on the kept-alive connection, once on a new one: no more.
        targets = [request.target for request in fault_server.requests]
        assert targets.count(b"/reset-before-head") == 2
        assert fault_server.connections_accepted == 2
        await _assert_pool_intact(pool, fault_server)
