"""Hostile input from the caller: refused with a clear error, before any byte goes out.

Request smuggling material (CR, LF, NUL and other controls in the method,
URL, header names and values; both Content-Length and Transfer-Encoding),
hosts IDNA cannot encode, invalid ports, absurd timeouts and limits, and
request bodies that raise, have the wrong type or do not match their
Content-Length. Each test checks the documented exception type
(``LocalProtocolError`` for a request that cannot be sent as given,
``UnsupportedProtocol`` for a scheme, ``TypeError``/``ValueError`` for
arguments), proves on the server side that nothing was sent (the server saw
no connection, or no byte, or only the part a streamed body had yielded
before it failed), and that the same pool then serves a request.
Unit-level checks of the same rules live in tests/unit/test_models.py and
tests/unit/test_urls.py; these run them through the pool, on the wire.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import math
import typing
from collections.abc import AsyncIterator

import pytest

import httpool
from httpool import AsyncConnectionPool, AsyncMockBackend
from httpool._models import MAX_TIMEOUT
from tests.support.fault_server import OK, FaultServer

PROMPT = {"timeout": {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}}


async def _assert_served_next(pool: AsyncConnectionPool, server: FaultServer) -> None:
    """The pool serves the next request, and that is the only request the server ever saw."""
    response = await pool.request("GET", server.url + "/ok", extensions=PROMPT)
    assert (response.status, response.content) == (200, b"ok")
    pool.check_invariants()
    stats = pool.stats()
    assert (stats.active, stats.queued, stats.connections) == (0, 0, 1), stats
    assert [request.target for request in server.requests] == [b"/ok"]
    assert bytes(server.received).count(b" HTTP/1.1\r\n") == 1


@pytest.mark.parametrize(
    "method",
    [b"GET / HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET", "GET\r\n", "GET\n", "G\x00ET", "GET /", ""],
)
async def test_smuggling_in_the_method(fault_server: FaultServer, method: bytes | str) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.LocalProtocolError):
            await pool.request(method, fault_server.url + "/ok")
        assert fault_server.connections_accepted == 0
        await _assert_served_next(pool, fault_server)


@pytest.mark.parametrize(
    "path",
    ["/ok HTTP/1.1\r\nX-Injected: 1", "/ok\r\n\r\nGET /ok", "/ok\nX: 1", "/a\x00b", "/a b", "/\t"],
)
async def test_smuggling_in_the_url(fault_server: FaultServer, path: str) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.LocalProtocolError):
            await pool.request("GET", fault_server.url + path)
        # The "target" extension overrides the URL's and is held to the same rules.
        extensions = {"target": path.encode("latin-1")}
        with pytest.raises(httpool.LocalProtocolError):
            await pool.request("GET", fault_server.url + "/", extensions=extensions)
        assert fault_server.connections_accepted == 0
        await _assert_served_next(pool, fault_server)


@pytest.mark.parametrize(
    "header",
    [
        (b"X-A\r\nX-Injected", b"1"),
        (b"X-A:", b"1"),
        (b"X A", b"1"),
        (b"", b"1"),
        (b"X\x00", b"1"),
        ("X-\u00e9", "1"),
        (b"X-A", b"1\r\nX-Injected: 1"),
        (b"X-A", b"1\r\n\r\nGET /ok HTTP/1.1"),
        (b"X-A", b"1\nX-Injected: 1"),
        (b"X-A", b"1\rX-Injected: 1"),
        (b"X-A", b"1\x00"),
        (b"X-A", b"1\x0b2"),
        (b"X-A", b"1\x7f"),
        (b"Host", b"evil.example\r\nX-Injected: 1"),
        ("X-A", "\u00e9t\u00e9"),
    ],
)
async def test_smuggling_in_headers_is_refused_before_connecting(
    fault_server: FaultServer, header: tuple[bytes | str, bytes | str]
) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.LocalProtocolError):
            await pool.request("GET", fault_server.url + "/ok", headers=[header])
        assert fault_server.connections_accepted == 0
        await _assert_served_next(pool, fault_server)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")],
        [(b"transfer-encoding", b"chunked"), (b"content-length", b"3")],
    ],
)
async def test_content_length_with_transfer_encoding_is_refused(
    fault_server: FaultServer, headers: list[tuple[bytes, bytes]]
) -> None:
    # A server using one and a proxy the other would see two different requests.
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.LocalProtocolError, match="both Content-Length"):
            await pool.request("POST", fault_server.url + "/ok", headers=headers, content=b"abc")
        assert fault_server.connections_accepted == 0
        await _assert_served_next(pool, fault_server)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Host", b"a.example"), (b"Host", b"b.example")],
        [(b"Content-Length", b"abc")],
        [(b"Content-Length", b"-1")],
        [(b"Content-Length", b"3"), (b"Content-Length", b"4")],
        [(b"Transfer-Encoding", b"gzip")],
        [(b"X-A", b" leading space")],
    ],
)
async def test_headers_h11_refuses_send_nothing(
    fault_server: FaultServer, headers: list[tuple[bytes, bytes]]
) -> None:
    # Refused when the head is framed, after connecting but before any write.
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.LocalProtocolError):
            await pool.request("POST", fault_server.url + "/ok", headers=headers, content=b"abc")
        pool.check_invariants()
        await _assert_served_next(pool, fault_server)


async def test_unicode_host_is_idna_encoded() -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend) as pool:
        response = await pool.request("GET", "http://B\u00fccher.example/")
        assert response.status == 200
        assert (
            backend.streams[0]
            .written[0]
            .startswith(b"GET / HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n")
        )


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://\u2603.example/", httpool.LocalProtocolError),  # a snowman: not IDNA 2008
        ("http://exa mple.example/", httpool.LocalProtocolError),
        ("http://a_b<c>.example/", httpool.LocalProtocolError),
        ("http:///path", httpool.LocalProtocolError),
        ("http://[::1/", httpool.LocalProtocolError),
        ("http://example.com:99999/", httpool.LocalProtocolError),
        ("http://example.com:65536/", httpool.LocalProtocolError),
        ("http://example.com:-1/", httpool.LocalProtocolError),
        ("http://example.com:0x50/", httpool.LocalProtocolError),
        ("http://example.com:8O/", httpool.LocalProtocolError),
        ("http://example.com:\u0668\u0660/", httpool.LocalProtocolError),  # Arabic-Indic "80"
        ("gopher://example.com/", httpool.UnsupportedProtocol),
        ("//example.com/", httpool.UnsupportedProtocol),
    ],
)
async def test_bad_hosts_and_ports_never_connect(url: str, error: type[Exception]) -> None:
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(network_backend=backend) as pool:
        with pytest.raises(error):
            await pool.request("GET", url)
        assert backend.streams == []
        assert (await pool.request("GET", "http://example.com/")).status == 200
        pool.check_invariants()


@pytest.mark.parametrize(
    "timeout",
    [
        {"read": -1},
        {"read": -math.inf},
        {"connect": math.nan},
        {"write": math.inf},
        {"pool": MAX_TIMEOUT * 10},
        {"read": 1e300},
        {"read": "5"},
        {"read": True},
        {"reed": 5},
        [("read", 5)],
    ],
)
async def test_absurd_timeouts_are_refused(fault_server: FaultServer, timeout: typing.Any) -> None:
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.LocalProtocolError, match=r"[Tt]imeout"):
            await pool.request("GET", fault_server.url + "/ok", extensions={"timeout": timeout})
        assert fault_server.connections_accepted == 0
        await _assert_served_next(pool, fault_server)


async def test_the_longest_timeout_works_on_every_runtime(fault_server: FaultServer) -> None:
    # Beyond about 9.2e9 s blocking sockets and thread waits overflow; the cap keeps below.
    huge = {key: MAX_TIMEOUT for key in ("connect", "read", "write", "pool")}
    async with AsyncConnectionPool(max_connections=1) as pool:
        response = await pool.request(
            "POST", fault_server.url + "/ok", content=b"x", extensions={"timeout": huge}
        )
        assert response.content == b"ok"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_connections": -1}, ValueError),
        ({"max_connections": 0}, ValueError),
        ({"max_connections": 1.5}, TypeError),
        ({"max_connections": True}, TypeError),
        ({"max_keepalive_connections": -5}, ValueError),
        ({"max_connections_per_origin": 0}, ValueError),
        ({"max_connections_per_origin": -1}, ValueError),
        ({"retries": -1}, ValueError),
        ({"retries": 2.0}, TypeError),
        ({"keepalive_expiry": -0.5}, ValueError),
        ({"keepalive_expiry": math.nan}, ValueError),
        ({"keepalive_expiry": math.inf}, ValueError),
    ],
)
def test_absurd_limits_are_refused(kwargs: dict[str, typing.Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        AsyncConnectionPool(**kwargs)


class BodyFailed(Exception):
    """The caller's own error, raised by its body iterator."""


async def test_body_raising_before_its_first_chunk_sends_nothing(
    fault_server: FaultServer,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        raise BodyFailed("no data today")
        yield b""  # pragma: no cover - makes this a generator

    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(BodyFailed):
            await pool.request("POST", fault_server.url + "/ok", content=body())
        await _assert_served_next(pool, fault_server)


async def test_body_raising_mid_iteration(fault_server: FaultServer) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"first part"
        raise BodyFailed("disk gone")

    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(BodyFailed):
            await pool.request("POST", fault_server.url + "/ok", content=body())
        # The head and first chunk went out; the connection was closed, never
        # finished as if the body were complete, nor reused.
        response = await pool.request("GET", fault_server.url + "/ok", extensions=PROMPT)
        assert response.content == b"ok"
        assert [request.target for request in fault_server.requests] == [b"/ok"]
        assert fault_server.connections_accepted == 2
        pool.check_invariants()


@pytest.mark.parametrize("chunk", ["text", 42, None, [b"a"]])
async def test_body_chunk_of_the_wrong_type(fault_server: FaultServer, chunk: typing.Any) -> None:
    async def body() -> AsyncIterator[typing.Any]:
        yield chunk

    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(TypeError, match="chunks must be bytes"):
            await pool.request("POST", fault_server.url + "/ok", content=body())
        await _assert_served_next(pool, fault_server)


@pytest.mark.parametrize("length", [b"2", b"10"], ids=["longer", "shorter"])
async def test_bytes_body_not_matching_content_length(
    fault_server: FaultServer, length: bytes
) -> None:
    headers = [(b"Content-Length", length)]
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.LocalProtocolError):
            await pool.request("POST", fault_server.url + "/ok", headers=headers, content=b"hello")
        await _assert_served_next(pool, fault_server)


@pytest.mark.parametrize("length", [b"2", b"10"], ids=["longer", "shorter"])
async def test_streamed_body_not_matching_content_length(
    fault_server: FaultServer, length: bytes
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"hel"
        yield b"lo"

    headers = [(b"Content-Length", length)]
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.LocalProtocolError):
            await pool.request("POST", fault_server.url + "/ok", headers=headers, content=body())
        # Some of it went out (that is what streaming means), the request was
        # never completed on that connection, and the connection is gone.
        response = await pool.request("GET", fault_server.url + "/ok", extensions=PROMPT)
        assert response.content == b"ok"
        assert fault_server.connections_accepted == 2
        pool.check_invariants()
