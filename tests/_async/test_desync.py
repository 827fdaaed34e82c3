"""Response desynchronisation: bytes beyond a response never reach a later request.

A hostile (or broken) server sends a complete second response after the
first one, under every framing: after a Content-Length body, after the last
chunk, as the "body" of a HEAD, 204 or 304 response, after a 1xx and its
final response, and after a close-delimited body. The extra bytes come in
the same write as the response, or in a later write that arrives after the
response was closed and before the next request. Each test then sends the
next request on the same pool and checks that it got the real server's
answer, on a fresh connection, never the injected one (RFC 9112 section 11.1,
response splitting).

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import time
import typing

import pytest

import httpool
from httpool import AsyncConnectionPool, AsyncMockBackend, Origin
from httpool._async.http11 import AsyncHTTP11Connection
from httpool._backends.default import async_default_backend
from tests.support.concurrency import AsyncTaskGroup
from tests.support.fault_server import CLOSE, OK, SIGNAL, FaultServer, Script, pause, send

PROMPT = {"timeout": {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}}
INJECTED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED"

# name -> (method, the genuine response, its body as the client must see it).
FRAMINGS: dict[str, tuple[str, bytes, bytes]] = {
    "content-length": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
    "content-length-zero": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b""),
    "chunked": (
        "GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"hello",
    ),
    "chunked-trailers": (
        "GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        b"hello",
    ),
    # A HEAD response ends with its head, whatever the server sends after it.
    "head-with-body": ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nBODYBODY", b""),
    "head-chunked": ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b""),
    "204-with-body": ("GET", b"HTTP/1.1 204 No Content\r\n\r\nBODYBODY", b""),
    "304": ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", b""),
    "1xx-then-final": (
        "GET",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"hello",
    ),
    "1xx-then-chunked": (
        "GET",
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"hello",
    ),
}


def _scripts(genuine: bytes) -> dict[str, Script]:
    end = genuine.index(b"\r\n\r\n") + 4
    return {
        "same-write": [send(genuine + INJECTED), SIGNAL],
        # The head first, then the rest of the response and the injection together.
        "split": [send(genuine[:end]), pause(0.05), send(genuine[end:] + INJECTED), SIGNAL],
        "later": [send(genuine), pause(0.05), send(INJECTED), SIGNAL],
    }


async def _wait_until_sent(server: FaultServer) -> None:
    """Wait until the server has sent the injection: it then arrived before
    the next request (loopback delivers as it sends), as the scenario says."""
    assert server.signalled.wait(5.0), "the server never sent the injection"


async def _wait_until_readable(pool: AsyncConnectionPool) -> None:
    """Wait (bounded) until the bytes the server sent after the response have
    reached the pool's connection, if it is still open."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        connections = [c for c in pool.connections if not c.is_closed()]
        if not connections:
            return
        stream = connections[0].connection._network_stream  # type: ignore[attr-defined]
        if stream.get_extra_info("is_readable"):
            return
        await async_default_backend().sleep(0.01)
    raise AssertionError("the injected bytes never arrived")


async def _assert_next_is_genuine(pool: AsyncConnectionPool, server: FaultServer) -> None:
    response = await pool.request("GET", server.url + "/ok", extensions=PROMPT)
    assert (response.status, response.content) == (200, b"ok")
    assert server.connections_accepted == 2, "the next request reused the poisoned connection"
    pool.check_invariants()
    stats = pool.stats()
    assert (stats.active, stats.connections) == (0, 1), stats


@pytest.mark.parametrize("when", ["same-write", "split", "later"])
@pytest.mark.parametrize("framing", list(FRAMINGS))
async def test_extra_bytes_never_reach_the_next_request(framing: str, when: str) -> None:
    method, genuine, body = FRAMINGS[framing]
    with FaultServer(routes={"/first": _scripts(genuine)[when]}) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            response = await pool.request(method, server.url + "/first", extensions=PROMPT)
            assert response.content == body
            await _wait_until_sent(server)
            await _assert_next_is_genuine(pool, server)


@pytest.mark.parametrize("when", ["same-write", "later"])
async def test_close_delimited_body_is_never_reused(when: str) -> None:
    # Everything up to the close is the body, the injection included: that
    # is what the framing says. The connection is never reused.
    genuine = b"HTTP/1.1 200 OK\r\n\r\nhello"
    script = [*_scripts(genuine)[when], CLOSE]
    with FaultServer(routes={"/first": script}) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            response = await pool.request("GET", server.url + "/first", extensions=PROMPT)
            assert response.content == b"hello" + INJECTED
            await _assert_next_is_genuine(pool, server)


@pytest.mark.parametrize(
    "head",
    [
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 22\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["te-first", "cl-first", "cl-covers-injection"],
)
async def test_both_framing_headers_are_refused(head: bytes) -> None:
    # RFC 9112 section 6.3: ought to be handled as an error (response splitting).
    first = b"HTTP/1.1 200 OK\r\n" + head + b"\r\n5\r\nhello\r\n0\r\n\r\n" + INJECTED
    with FaultServer(routes={"/first": [send(first)]}) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            with pytest.raises(httpool.RemoteProtocolError, match="both Transfer-Encoding"):
                await pool.request("GET", server.url + "/first", extensions=PROMPT)
            await _assert_next_is_genuine(pool, server)


@pytest.mark.parametrize("framing", ["content-length", "chunked", "head-with-body"])
async def test_handed_to_a_waiting_request(framing: str) -> None:
    # The connection goes from the closing response straight to a queued
    # request, with no idle time for the pool's liveness probe: the bytes
    # that arrived while the response was open must still be seen.
    method, genuine, body = FRAMINGS[framing]
    script = [send(genuine), pause(0.05), send(INJECTED), SIGNAL]
    results: list[bytes] = []

    async def second(pool: AsyncConnectionPool) -> None:
        response = await pool.request("GET", server.url + "/ok", extensions=PROMPT)
        results.append(response.content)

    with FaultServer(routes={"/first": script}) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            async with pool.stream(method, server.url + "/first", extensions=PROMPT) as response:
                assert await response.aread() == body
                await _wait_until_sent(server)
                await _wait_until_readable(pool)
                async with AsyncTaskGroup() as group:
                    group.start_soon(second, pool)
                    deadline = time.monotonic() + 5.0
                    while pool.stats().queued == 0:
                        assert time.monotonic() < deadline
                        await async_default_backend().sleep(0.01)
                    await response.aclose()
            assert results == [b"ok"]
            assert server.connections_accepted == 2
            pool.check_invariants()


async def _mock_connection(
    replies: list[bytes],
) -> tuple[AsyncHTTP11Connection, typing.Any, AsyncMockBackend]:
    backend = AsyncMockBackend(replies)
    stream = await backend.connect_tcp("example.com", 80)
    origin = Origin(b"http", b"example.com", 80)
    return AsyncHTTP11Connection(origin, stream, clock=backend.now), stream, backend


async def test_a_reused_connection_looks_before_it_sends() -> None:
    # Nobody probed it since its last response (a pool hands a connection
    # straight to a waiting request): it looks itself, and refuses.
    conn, stream, _ = await _mock_connection([OK, OK])
    assert (await conn.request("GET", "http://example.com/")).content == b"ok"
    writes = len(stream.written)
    stream.close_by_peer()  # readable: EOF, or bytes nobody asked for
    with pytest.raises(httpool.ConnectionNotAvailable):
        await conn.request("GET", "http://example.com/")
    assert conn.is_closed() and len(stream.written) == writes


async def test_a_passed_probe_is_not_repeated() -> None:
    # The pool probes (is_alive) right before it sends a request on a reused
    # connection; the connection does not probe a second time.
    conn, stream, _ = await _mock_connection([OK, OK, OK])
    await conn.request("GET", "http://example.com/")
    assert conn.is_alive()
    stream.close_by_peer()  # after the probe: too late to be seen
    assert (await conn.request("GET", "http://example.com/")).content == b"ok"
    # The probe is good for one request only.
    with pytest.raises(httpool.ConnectionNotAvailable):
        await conn.request("GET", "http://example.com/")


async def test_a_body_left_unread_after_one_read_to_its_end_is_not_reused() -> None:
    # HTTP/1.1 resets its per-request record in place: the previous body's end
    # must not make this one, closed with its bytes still on the wire, look done.
    backend = AsyncMockBackend(
        [
            FRAMINGS["content-length"][1],
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            b"0123456789",
        ]
    )
    await backend.connect_tcp("example.com", 80)
    conn = AsyncHTTP11Connection(Origin(b"http", b"example.com", 80), backend.streams[0])
    assert (await conn.request("GET", "http://example.com/")).content == b"hello"
    assert conn.is_idle()
    async with conn.stream("GET", "http://example.com/") as response:
        assert response.status == 200  # its body is not read
    assert conn.is_closed() and backend.streams[0].closed
