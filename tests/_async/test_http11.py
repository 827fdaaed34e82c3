"""AsyncHTTP11Connection on the mock backend: scripted server bytes, recorded writes.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import AsyncIterator

import pytest

import httpool
from httpool import AsyncMockBackend, AsyncMockStream, Origin, Request
from httpool._async.http11 import (
    TRANSITIONS,
    AsyncHTTP11Connection,
    ConnectionEvent,
    HTTPConnectionState,
    next_state,
)
from httpool._trace import NO_TRACE, Trace

ORIGIN = Origin(b"http", b"example.com", 80)
URL = "http://example.com/"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!"


async def _connect(
    script: list[bytes | BaseException], **kwargs: typing.Any
) -> tuple[AsyncHTTP11Connection, AsyncMockStream, AsyncMockBackend]:
    backend = AsyncMockBackend(script)
    await backend.connect_tcp("example.com", 80)
    stream = backend.streams[0]
    return AsyncHTTP11Connection(ORIGIN, stream, clock=backend.now, **kwargs), stream, backend


async def test_get_and_keepalive_reuse() -> None:
    conn, stream, _ = await _connect([OK, OK])
    assert (conn.state, conn.capacity(), conn.is_alive()) == (HTTPConnectionState.NEW, 1, True)
    for count in (1, 2):
        response = await conn.request("GET", URL)
        assert (response.status, response.content) == (200, b"Hello, world!")
        assert response.extensions["http_version"] == b"HTTP/1.1"
        assert response.extensions["reason_phrase"] == b"OK"
        assert response.extensions["network_stream"] is stream
        assert conn.is_idle() and conn.is_available() and conn.request_count == count
    assert stream.written == [b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"] * 2
    assert conn.info() == "'http://example.com:80', HTTP/1.1, IDLE, Request Count: 2"
    # httpcore's repr: the protocol is in the class name, not repeated.
    name = type(conn).__name__
    assert repr(conn) == f"<{name} ['http://example.com:80', IDLE, Request Count: 2]>"
    await conn.aclose()
    assert conn.is_closed() and stream.closed and conn.capacity() == 0


async def test_response_bodies_by_length_split_and_chunked() -> None:
    conn, _, _ = await _connect(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            b"defg",
            b"hij",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            OK,
        ]
    )
    async with conn.stream("GET", URL) as response:
        parts = [part async for part in response.aiter_stream()]
    assert parts == [b"abc", b"defg", b"hij"]
    assert all(type(part) is bytes for part in parts)
    assert (await conn.request("GET", URL)).content == b"hello world"
    assert (await conn.request("GET", URL)).content == b""
    assert (await conn.request("GET", URL)).content == b"Hello, world!"
    assert conn.request_count == 4 and conn.is_idle()


async def test_small_post_is_one_write() -> None:
    conn, stream, _ = await _connect([OK])
    await conn.request("POST", URL, content=b"hello")
    assert stream.written == [
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello"
    ]


async def test_large_body_is_written_without_copy() -> None:
    body = b"x" * 100_000
    conn, stream, _ = await _connect([OK])
    await conn.request("POST", URL, content=body)
    assert len(stream.written) == 2
    assert stream.written[0].endswith(b"Content-Length: 100000\r\n\r\n")
    assert stream.written[1] is body


async def test_streamed_request_body_is_chunked() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"hello"
        yield b""
        yield b", world"

    conn, stream, _ = await _connect([OK, OK])
    assert (await conn.request("POST", URL, content=body())).status == 200
    assert stream.written == [
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"7\r\n, world\r\n",
        b"0\r\n\r\n",
    ]
    assert conn.is_idle()

    async def sized() -> AsyncIterator[bytes]:
        yield b"12345"
        yield b"67890"

    stream.written.clear()
    await conn.request("PUT", URL, headers={"Content-Length": "10"}, content=sized())
    assert stream.written[1:] == [b"67890"]
    assert stream.written[0].endswith(b"Content-Length: 10\r\n\r\n12345")
    assert conn.is_idle()


@pytest.mark.parametrize(
    ("length", "content"),
    [("3", b"hello"), ("7", b"hello"), ("3", [b"ab", b"cd"]), ("5", [b"ab"])],
    ids=["bytes-longer", "bytes-shorter", "stream-longer", "stream-shorter"],
)
async def test_body_not_matching_content_length(length: str, content: typing.Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in content:
            yield chunk

    conn, stream, _ = await _connect([OK])
    body = content if isinstance(content, bytes) else chunks()
    with pytest.raises(httpool.LocalProtocolError):
        await conn.request("POST", URL, headers={"Content-Length": length}, content=body)
    assert conn.is_closed() and stream.closed
    if isinstance(content, bytes):
        assert stream.written == []  # detected before anything was sent


async def test_connection_close_response() -> None:
    conn, stream, _ = await _connect(
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"]
    )
    async with conn.stream("GET", URL) as response:
        assert conn.capacity() == 0  # the server has said it will close
        assert await response.aread() == b"ok"
    assert conn.is_closed() and stream.closed
    with pytest.raises(httpool.ConnectionNotAvailable):
        await conn.request("GET", URL)


async def test_client_connection_close_header() -> None:
    conn, stream, _ = await _connect([OK])
    await conn.request("GET", URL, headers={"Connection": "close"})
    assert conn.is_closed() and stream.closed


async def test_informational_responses_are_skipped() -> None:
    conn, _, _ = await _connect(
        [
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + OK,
        ]
    )
    response = await conn.request("GET", URL)
    assert (response.status, response.content) == (200, b"Hello, world!")
    assert conn.is_idle()


async def test_partial_read_then_close_closes_the_connection() -> None:
    conn, stream, _ = await _connect(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"x" * 10, b"x" * 90, OK]
    )
    async with conn.stream("GET", URL) as response:
        async for part in response.aiter_stream():
            assert part == b"x" * 10
            break
        assert conn.state is HTTPConnectionState.ACTIVE and conn.capacity() == 1
    assert conn.is_closed() and stream.closed
    with pytest.raises(RuntimeError):
        await response.aread()


async def test_malformed_status_line() -> None:
    conn, stream, _ = await _connect([b"HTTP/1.1 two hundred OK\r\n\r\n"])
    with pytest.raises(httpool.RemoteProtocolError):
        await conn.request("GET", URL)
    assert conn.is_closed() and stream.closed and conn.response_started


async def test_response_head_too_large() -> None:
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 2000 + b"\r\nContent-Length: 0\r\n\r\n"
    script: list[bytes | BaseException] = [head[:600], head[600:1200], head[1200:]]
    conn, _, _ = await _connect(script, max_incomplete_event_size=1000)
    with pytest.raises(httpool.RemoteProtocolError):
        await conn.request("GET", URL)
    conn, _, _ = await _connect(script)  # the default limit is 64 KiB
    assert (await conn.request("GET", URL)).status == 200


@pytest.mark.parametrize(
    "script",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"],
    ],
    ids=["content-length", "chunked"],
)
async def test_eof_mid_body(script: list[bytes | BaseException]) -> None:
    conn, stream, _ = await _connect(script)
    async with conn.stream("GET", URL) as response:
        with pytest.raises(httpool.RemoteProtocolError):
            await response.aread()
    assert conn.is_closed() and stream.closed


async def test_eof_before_and_inside_the_response_head() -> None:
    conn, _, _ = await _connect([])
    with pytest.raises(httpool.RemoteProtocolError, match="without sending a response"):
        await conn.request("GET", URL)
    assert conn.is_closed() and not conn.response_started

    conn, _, _ = await _connect([b"HTTP/1.1 200 OK\r\n"])
    with pytest.raises(httpool.RemoteProtocolError, match="inside the response head"):
        await conn.request("GET", URL)
    assert conn.response_started


async def test_read_error_is_passed_through_and_closes() -> None:
    conn, stream, _ = await _connect([httpool.ReadTimeout("timed out")])
    with pytest.raises(httpool.ReadTimeout):
        await conn.request("GET", URL)
    assert conn.is_closed() and stream.closed


async def test_bytes_beyond_the_response_prevent_reuse() -> None:
    conn, stream, _ = await _connect([OK + b"HTTP/1.1 200 OK\r\n"])
    assert (await conn.request("GET", URL)).content == b"Hello, world!"
    assert conn.is_closed() and stream.closed


async def test_head_204_and_http10_bodies() -> None:
    conn, _, _ = await _connect(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil ",
            b"the end",
        ]
    )
    response = await conn.request("HEAD", URL)
    assert response.content == b"" and conn.is_idle()
    assert (await conn.request("GET", URL)).status == 204 and conn.is_idle()
    response = await conn.request("GET", URL)
    assert response.content == b"until the end"
    assert response.extensions["http_version"] == b"HTTP/1.0"
    assert conn.is_closed()


async def test_is_alive_is_false_after_peer_close() -> None:
    conn, stream, _ = await _connect([OK])
    await conn.request("GET", URL)
    assert conn.is_alive()
    stream.close_by_peer()
    assert not conn.is_alive()
    await conn.aclose()
    assert not conn.is_alive()


async def test_keepalive_expiry_on_the_backend_clock() -> None:
    conn, _, backend = await _connect([OK, OK], keepalive_expiry=5.0)
    assert not conn.has_expired()
    await conn.request("GET", URL)
    backend.advance(5.0)
    assert not conn.has_expired()
    backend.advance(0.1)
    assert conn.has_expired()
    await conn.request("GET", URL)
    assert not conn.has_expired()  # the clock restarts when the connection is idle again


async def test_busy_closed_and_wrong_origin() -> None:
    conn, _, _ = await _connect([OK, OK])
    with pytest.raises(RuntimeError):
        await conn.request("GET", "http://other.example/")
    assert not conn.can_handle_request(Origin(b"https", b"example.com", 443))
    async with conn.stream("GET", URL):
        with pytest.raises(httpool.ConnectionNotAvailable):
            await conn.request("GET", URL)
    async with conn:
        pass
    assert conn.is_closed()
    await conn.aclose()  # idempotent
    with pytest.raises(httpool.ConnectionNotAvailable):
        await conn.request("GET", URL)


async def test_early_response_stops_the_upload() -> None:
    conn, stream, _ = await _connect(
        [b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!"]
    )
    produced = []

    async def body() -> AsyncIterator[bytes]:
        for i in range(5):
            produced.append(i)
            if i == 1:
                stream.close_by_peer()  # the answer has arrived: is_readable turns True
            yield b"data"

    response = await conn.request("POST", URL, content=body())
    assert (response.status, response.content) == (413, b"big!")
    assert produced == [0, 1]  # the generator was closed, not run to its end
    assert len(stream.written) == 1 and stream.written[0].endswith(b"4\r\ndata\r\n")
    assert conn.is_closed()


async def test_continue_during_upload_lets_it_go_on() -> None:
    conn, stream, _ = await _connect(
        [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    )

    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        stream.close_by_peer()
        yield b"b"
        stream.peer_closed = False
        yield b"c"

    response = await conn.request("POST", URL, content=body())
    assert response.status == 200
    assert stream.written[1:] == [b"1\r\nb\r\n", b"1\r\nc\r\n", b"0\r\n\r\n"]
    assert conn.is_idle() and conn.response_started


async def test_peer_hanging_up_during_upload() -> None:
    conn, stream, _ = await _connect([])

    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        stream.close_by_peer()
        yield b"b"

    with pytest.raises(httpool.RemoteProtocolError, match="without sending a response"):
        await conn.request("POST", URL, content=body())
    assert len(stream.written) == 1 and not conn.response_started


class AsyncWriteFailingStream(AsyncMockStream):
    """Accepts ``writes`` writes, then fails like a socket the peer reset."""

    def __init__(self, script: list[bytes | BaseException], writes: int) -> None:
        super().__init__(script)
        self.writes_left = writes

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self.writes_left == 0:
            raise httpool.WriteError("Broken pipe")
        self.writes_left -= 1
        await super().write(buffer, timeout)


async def test_response_after_a_write_error_is_returned() -> None:
    stream = AsyncWriteFailingStream([b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n"], 0)
    conn = AsyncHTTP11Connection(ORIGIN, stream)
    response = await conn.request("POST", URL, content=b"x" * 10)
    assert response.status == 413
    assert conn.is_closed()


async def test_write_error_without_a_response_is_a_disconnect() -> None:
    # As in httpcore: the server went away without answering.
    stream = AsyncWriteFailingStream([], 0)
    conn = AsyncHTTP11Connection(ORIGIN, stream)
    with pytest.raises(httpool.RemoteProtocolError) as info:
        await conn.request("POST", URL, content=b"x" * 10)
    assert str(info.value) == "Server disconnected without sending a response."
    assert isinstance(info.value.__cause__, httpool.WriteError)
    assert conn.is_closed() and stream.closed
    assert not conn.response_started  # so the pool's retry rule applies


async def test_write_error_then_reset_raises_the_read_error() -> None:
    stream = AsyncWriteFailingStream([httpool.ReadError("Connection reset")], 0)
    conn = AsyncHTTP11Connection(ORIGIN, stream)
    with pytest.raises(httpool.ReadError):
        await conn.request("POST", URL, content=b"x" * 10)
    assert conn.is_closed()


async def test_protocol_switch_hands_over_the_stream() -> None:
    conn, stream, _ = await _connect(
        [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: custom\r\nConnection: Upgrade\r\n\r\nhi"]
    )
    async with conn.stream(
        "GET", URL, headers={"Upgrade": "custom", "Connection": "Upgrade"}
    ) as response:
        assert response.status == 101
        assert conn.capacity() == 0
        network_stream = response.extensions["network_stream"]
        assert network_stream.get_extra_info("is_readable")
        assert await network_stream.read(1) == b"h"
        assert await network_stream.read(10) == b"i"
        assert await network_stream.read(10) == b""
        await network_stream.write(b"ping")
        assert stream.written[-1] == b"ping"
        assert network_stream.get_extra_info("server_addr") == ("127.0.0.1", 80)
        assert await network_stream.start_tls(None) is stream
        assert await response.aread() == b""


async def test_connect_tunnel() -> None:
    conn, _, _ = await _connect([b"HTTP/1.1 200 Connection established\r\n\r\n"])
    request = Request(
        "CONNECT",
        URL,
        headers={"Host": "example.com:443"},
        extensions={"target": b"example.com:443"},
    )
    response = await conn.handle_async_request(request)
    assert response.status == 200
    network_stream = response.extensions["network_stream"]
    assert await network_stream.read(10) == b""
    await network_stream.aclose()


def test_state_table_walk() -> None:
    S, E = HTTPConnectionState, ConnectionEvent
    expected = {
        (S.NEW, E.REQUEST): S.ACTIVE,
        (S.IDLE, E.REQUEST): S.ACTIVE,
        (S.ACTIVE, E.RESPONSE_DONE_KEEPALIVE): S.IDLE,
        (S.ACTIVE, E.RESPONSE_DONE_CLOSE): S.CLOSED,
        (S.ACTIVE, E.ERROR): S.CLOSED,
        (S.CLOSED, E.ERROR): S.CLOSED,
        (S.NEW, E.CLOSE): S.CLOSED,
        (S.ACTIVE, E.CLOSE): S.CLOSED,
        (S.IDLE, E.CLOSE): S.CLOSED,
        (S.CLOSED, E.CLOSE): S.CLOSED,
    }
    assert dict(TRANSITIONS) == expected
    for state, event in itertools.product(S, E):
        if (state, event) in expected:
            assert next_state(state, event) is expected[state, event]
        else:
            with pytest.raises(RuntimeError):
                next_state(state, event)


async def test_states_of_a_connection_lifetime() -> None:
    conn, _, _ = await _connect([OK, httpool.ReadError("reset")])
    seen = [conn.state]
    async with conn.stream("GET", URL) as response:
        seen.append(conn.state)
        await response.aread()
    seen.append(conn.state)
    with pytest.raises(httpool.ReadError):
        await conn.request("GET", URL)
    seen.append(conn.state)
    S = HTTPConnectionState
    assert seen == [S.NEW, S.ACTIVE, S.IDLE, S.CLOSED]


async def test_trace_events() -> None:
    events: list[tuple[str, dict[str, typing.Any]]] = []

    async def trace(name: str, info: dict[str, typing.Any]) -> None:
        events.append((name, info))

    conn, _, _ = await _connect([OK, b"garbage\r\n\r\n"])
    await conn.request("GET", URL, extensions={"trace": trace})
    names = [name for name, _ in events]
    assert names == [
        f"http11.{step}.{outcome}"
        for step in (
            "send_request_headers",
            "send_request_body",
            "receive_response_headers",
            "receive_response_body",
            "response_closed",
        )
        for outcome in ("started", "complete")
    ]
    assert isinstance(events[0][1]["request"], Request)
    assert events[5][1]["return_value"][:3] == (b"HTTP/1.1", 200, b"OK")

    events.clear()
    with pytest.raises(httpool.RemoteProtocolError):
        await conn.request("GET", URL, extensions={"trace": trace})
    # As in httpcore, a failed head read is followed by response_closed.
    assert [name for name, _ in events[-3:]] == [
        "http11.receive_response_headers.failed",
        "http11.response_closed.started",
        "http11.response_closed.complete",
    ]
    assert isinstance(events[-3][1]["exception"], httpool.RemoteProtocolError)


async def test_large_streamed_chunk_with_content_length() -> None:
    big = b"y" * 70_000

    async def body() -> AsyncIterator[bytes]:
        yield b"small"
        yield big

    conn, stream, _ = await _connect([OK])
    length = str(5 + len(big))
    await conn.request("POST", URL, headers={"Content-Length": length}, content=body())
    assert stream.written[1] is big  # written as it came, never joined
    assert len(stream.written) == 2 and conn.is_idle()


async def test_closed_response_stream() -> None:
    conn, _, _ = await _connect([OK])
    response = await conn.handle_async_request(Request("GET", URL, headers={"Host": "x"}))
    stream = typing.cast(typing.Any, response.stream)
    await response.aclose()
    await response.aclose()  # idempotent
    assert conn.is_closed()
    with pytest.raises(RuntimeError, match="closed before its body was read"):
        await stream.__anext__()


async def test_exhausted_response_stream_stays_exhausted() -> None:
    conn, _, _ = await _connect([OK])
    response = await conn.handle_async_request(Request("GET", URL, headers={"Host": "x"}))
    stream = typing.cast(typing.Any, response.stream)
    assert await stream.__anext__() == b"Hello, world!"
    for _ in range(2):
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
    await response.aclose()
    assert conn.is_idle()


def test_trace_object() -> None:
    calls: list[str] = []
    request = Request("GET", URL, extensions={"trace": lambda name, info: calls.append(name)})
    assert Trace.start("x.step", None) is NO_TRACE
    assert Trace.start("x.step", Request("GET", URL)) is NO_TRACE
    with NO_TRACE as trace:
        trace.return_value = "kept?"
    assert NO_TRACE.return_value is None  # the shared object holds nothing
    with Trace.start("x.step", request) as trace:
        trace.return_value = 1
    assert trace.return_value == 1
    with pytest.raises(ValueError), Trace.start("x.other", request):
        raise ValueError()
    assert calls == ["x.step.started", "x.step.complete", "x.other.started", "x.other.failed"]

    class Awaitable:
        closed = False

        def __await__(self) -> typing.Generator[None, None, None]:
            yield  # pragma: no cover - never awaited

        def close(self) -> None:
            self.closed = True

    # Sync code cannot await what an async callback returns: a clear error,
    # and the coroutine is closed rather than left to warn.
    awaitable = Awaitable()
    request = Request("GET", URL, extensions={"trace": lambda name, info: awaitable})
    with pytest.raises(TypeError), Trace.start("x.step", request):
        pass  # pragma: no cover
    assert awaitable.closed


async def test_streamed_body_from_an_iterator_object() -> None:
    class AsyncChunks:
        def __init__(self) -> None:
            self.chunks = [b"a", b"b"]

        def __aiter__(self) -> AsyncChunks:
            return self

        async def __anext__(self) -> bytes:
            if not self.chunks:
                raise StopAsyncIteration
            return self.chunks.pop(0)

    conn, stream, _ = await _connect([OK])
    await conn.request("POST", URL, content=AsyncChunks())
    assert stream.written[-2:] == [b"1\r\nb\r\n", b"0\r\n\r\n"]


async def test_sync_trace_callback_in_any_code() -> None:
    calls: list[str] = []
    conn, _, _ = await _connect([OK])
    await conn.request("GET", URL, extensions={"trace": lambda name, info: calls.append(name)})
    assert len(calls) == 10 and calls[0] == "http11.send_request_headers.started"
