"""The total deadline of a request: ``extensions={"timeout": {"total": seconds}}``.

A server that trickles one byte just inside every read timeout keeps a
request alive for as long as it likes; the total deadline ends it, in
whichever phase it is: waiting for a connection (PoolTimeout), connecting
(ConnectTimeout), sending (WriteTimeout), reading the head or streaming the
body (ReadTimeout), each with a message naming the total. Each test checks
the type, the message, that it came within its bound, and that the pool then
serves a request. Unit checks of the Deadline arithmetic are at the end.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

import httpool
from httpool import AsyncConnectionPool, AsyncHTTPConnection, Origin
from httpool._deadline import DEADLINE_KEY, Deadline, deadline_of, start_deadline
from httpool._models import Request, include_request_headers
from tests.support.fault_server import HANG, STALL, FaultServer, drip_pieces, send
from tests.support.h2_server import H2Server

TOTAL = 0.5
# Everything else is generous: only the total can end these requests in time.
SLOW = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
WITH_TOTAL = {"timeout": {**SLOW, "total": TOTAL}}
BOUND = TOTAL + 2.0  # a loaded CI machine may be late; never by the read timeout
DRIP = drip_pieces([b"x"] * 400, 0.05)  # one byte per 50 ms for 20 s

ROUTES = {
    "/trickle-head": [send(b"HTTP/1.1 200 OK\r\n"), *DRIP],
    "/trickle-body": [send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), *DRIP],
    "/trickle-chunked": [
        send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        *drip_pieces([b"1\r\nx\r\n"] * 400, 0.05),
    ],
}


def _message(phase: str) -> str:
    return re.escape(f"total timeout of {TOTAL:g} seconds ran out while {phase}")


async def _assert_pool_serves(pool: AsyncConnectionPool, server: FaultServer) -> None:
    pool.check_invariants()
    assert pool.stats().active == 0
    response = await pool.request("GET", server.url + "/ok", extensions={"timeout": SLOW})
    assert response.content == b"ok"
    pool.check_invariants()


@pytest.mark.parametrize("path", ["/trickle-head", "/hang"])
async def test_reading_the_head(path: str) -> None:
    with FaultServer(routes=ROUTES) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            start = time.monotonic()
            with pytest.raises(httpool.ReadTimeout, match=_message("reading the response")):
                await pool.request("GET", server.url + path, extensions=WITH_TOTAL)
            assert TOTAL * 0.9 <= time.monotonic() - start < BOUND
            await _assert_pool_serves(pool, server)


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-chunked"])
async def test_streaming_the_body(path: str) -> None:
    # The head comes at once; the body never ends, one byte at a time.
    with FaultServer(routes=ROUTES) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            start = time.monotonic()
            received = 0
            with pytest.raises(httpool.ReadTimeout, match=_message("reading the response")):
                async with pool.stream("GET", server.url + path, extensions=WITH_TOTAL) as r:
                    async for chunk in r.aiter_stream():
                        received += len(chunk)
            assert received > 0
            assert TOTAL * 0.9 <= time.monotonic() - start < BOUND
            await _assert_pool_serves(pool, server)


async def test_without_a_total_the_trickle_goes_on() -> None:
    # The read timeout bounds each wait only: this is what the total is for.
    with FaultServer(routes=ROUTES) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            received = 0
            async with pool.stream(
                "GET", server.url + "/trickle-body", extensions={"timeout": {"read": 1.0}}
            ) as response:
                async for chunk in response.aiter_stream():
                    received += len(chunk)
                    if received >= 2 * TOTAL / 0.05:
                        break
            assert received >= 2 * TOTAL / 0.05


async def test_waiting_for_a_connection(fault_server: FaultServer) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        async with pool.stream("GET", fault_server.url + "/ok") as held:
            start = time.monotonic()
            with pytest.raises(httpool.PoolTimeout, match=_message("waiting for a connection")):
                await pool.request("GET", fault_server.url + "/ok", extensions=WITH_TOTAL)
            assert TOTAL * 0.9 <= time.monotonic() - start < BOUND
            await held.aread()
        await _assert_pool_serves(pool, fault_server)


async def test_pool_timeout_below_the_total_keeps_its_message(fault_server: FaultServer) -> None:
    extensions = {"timeout": {**SLOW, "pool": 0.1, "total": 5.0}}
    async with (
        AsyncConnectionPool(max_connections=1) as pool,
        pool.stream("GET", fault_server.url + "/ok") as held,
    ):
        with pytest.raises(httpool.PoolTimeout, match=r"within 0\.1 seconds"):
            await pool.request("GET", fault_server.url + "/ok", extensions=extensions)
        await held.aread()


async def test_connecting(fault_server: FaultServer) -> None:
    # The kernel accepts the TCP connection; nobody ever answers the TLS hello.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/"
        async with AsyncConnectionPool(max_connections=1) as pool:
            start = time.monotonic()
            with pytest.raises(httpool.ConnectTimeout, match=_message("connecting")):
                await pool.request("GET", url, extensions=WITH_TOTAL)
            assert TOTAL * 0.9 <= time.monotonic() - start < BOUND
            await _assert_pool_serves(pool, fault_server)


async def test_sending_the_request() -> None:
    body = b"x" * (64 * 1024 * 1024)  # more than both socket buffers hold
    with FaultServer(on_accept=[[STALL]]) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            start = time.monotonic()
            with pytest.raises(httpool.WriteTimeout, match=_message("sending the request")):
                await pool.request("POST", server.url + "/ok", content=body, extensions=WITH_TOTAL)
            assert TOTAL * 0.9 <= time.monotonic() - start < BOUND + 1.0
            await _assert_pool_serves(pool, server)


async def test_a_connection_used_without_a_pool() -> None:
    with FaultServer(routes=ROUTES) as server:
        origin = Origin(b"http", b"127.0.0.1", server.port)
        async with AsyncHTTPConnection(origin) as connection:
            start = time.monotonic()
            with pytest.raises(httpool.ReadTimeout, match=_message("reading the response")):
                await connection.request("GET", server.url + "/trickle-head", extensions=WITH_TOTAL)
            assert TOTAL * 0.9 <= time.monotonic() - start < BOUND


async def test_a_request_within_its_total(fault_server: FaultServer) -> None:
    extensions = {"timeout": {"total": 30.0}}
    request = Request("GET", fault_server.url + "/ok", extensions=extensions)
    include_request_headers(request)
    async with AsyncConnectionPool(max_connections=1) as pool:
        for _ in range(3):  # one Request sent again gets a new deadline each time
            response = await pool.handle_async_request(request)
            assert await response.aread() == b"ok"
            await response.aclose()
    assert request.extensions == extensions  # the caller's request is left alone
    assert DEADLINE_KEY not in request.extensions


async def test_http2_stream(h2_server: H2Server) -> None:
    async with AsyncConnectionPool(http1=False, http2=True) as pool:
        assert (await pool.request("GET", h2_server.url + "/")).status == 200
        for path in ("/hang", "/slow?delay=3"):
            start = time.monotonic()
            with pytest.raises(httpool.ReadTimeout, match=_message("reading the response")):
                await pool.request("GET", h2_server.url + path, extensions=WITH_TOTAL)
            assert TOTAL * 0.9 <= time.monotonic() - start < BOUND
        response = await pool.request("GET", h2_server.url + "/", extensions=WITH_TOTAL)
        assert response.content == b"Hello, world!"
        pool.check_invariants()
        assert pool.stats().connections == 1


async def test_http2_server_that_never_sends_its_settings() -> None:
    with FaultServer(on_accept=[[HANG]]) as server:
        async with AsyncConnectionPool(http1=False, http2=True) as pool:
            start = time.monotonic()
            with pytest.raises(httpool.ConnectTimeout, match=_message("connecting")):
                await pool.request("GET", server.url + "/", extensions=WITH_TOTAL)
            assert TOTAL * 0.9 <= time.monotonic() - start < BOUND
            pool.check_invariants()
            assert pool.stats().connections == 0


@pytest.mark.parametrize("total", [-1, float("nan"), float("inf"), 2e9, "1", True])
async def test_invalid_totals_are_refused(total: object) -> None:
    # Refused when sent, before any connection (a Request is built without
    # raising, as httpcore's is).
    async with AsyncConnectionPool() as pool:
        with pytest.raises(httpool.LocalProtocolError, match="'total'"):
            await pool.request(
                "GET", "http://127.0.0.1:9/", extensions={"timeout": {"total": total}}
            )
        assert pool.stats().opened == 0


def test_deadline_arithmetic() -> None:
    now = [100.0]
    deadline = Deadline(2.0, lambda: now[0])
    assert deadline.limit(None, httpool.ReadTimeout, "x") == (2.0, True)
    assert deadline.limit(5.0, httpool.ReadTimeout, "x") == (2.0, True)
    assert deadline.limit(1.0, httpool.ReadTimeout, "x") == (1.0, False)
    now[0] = 101.5
    assert deadline.limit(1.0, httpool.ReadTimeout, "x") == (0.5, True)
    now[0] = 102.0
    with pytest.raises(httpool.WriteTimeout, match="total timeout of 2 seconds ran out while x"):
        deadline.limit(1.0, httpool.WriteTimeout, "x")


def test_start_deadline_copies_only_when_needed() -> None:
    plain = Request("GET", "http://example.com/", extensions={"timeout": {"read": 1.0}})
    assert start_deadline(plain, lambda: 0.0) is plain
    assert deadline_of(plain) is None
    timed = Request("GET", "http://example.com/", extensions={"timeout": {"total": 3.0}})
    copy = start_deadline(timed, lambda: 10.0)
    assert copy is not timed and DEADLINE_KEY not in timed.extensions
    deadline = deadline_of(copy)
    assert deadline is not None and deadline.end == 13.0
    assert (copy.method, copy.url, copy.headers, copy.stream) == (
        timed.method,
        timed.url,
        timed.headers,
        timed.stream,
    )
    assert start_deadline(copy, lambda: 20.0) is copy  # the first layer's deadline stays
