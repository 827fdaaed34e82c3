"""``AsyncHTTP2Connection`` used on a given network stream, as httpcore code does.

Written once; runs on asyncio, trio and (generated) threads, on scripted streams.
"""

from __future__ import annotations

import hpack
import hyperframe.frame as frames
import pytest

import httpool
from httpool import AsyncHTTP2Connection, AsyncMockStream, Origin

ORIGIN = Origin(b"https", b"example.com", 443)


def _head(stream_id: int, end_stream: bool = False) -> bytes:
    flags = ["END_HEADERS", "END_STREAM"] if end_stream else ["END_HEADERS"]
    block = hpack.Encoder().encode([(b":status", b"200"), (b"content-type", b"text/plain")])
    return bytes(frames.HeadersFrame(stream_id=stream_id, data=block, flags=flags).serialize())


async def test_requests_on_a_given_stream() -> None:
    stream = AsyncMockStream(
        [
            frames.SettingsFrame().serialize(),
            _head(1),
            frames.DataFrame(stream_id=1, data=b"Hello, world!", flags=["END_STREAM"]).serialize(),
        ]
    )
    async with AsyncHTTP2Connection(origin=ORIGIN, stream=stream) as conn:
        response = await conn.request("GET", "https://example.com/")
        assert response.status == 200 and response.content == b"Hello, world!"
        assert response.extensions["http_version"] == b"HTTP/2"
        assert conn.is_available()
        assert conn.info() == "'https://example.com:443', HTTP/2, IDLE, Request Count: 1"
        name = type(conn).__name__
        assert repr(conn) == f"<{name} ['https://example.com:443', IDLE, Request Count: 1]>"
    assert stream.closed


async def test_request_to_another_origin_is_refused() -> None:
    stream = AsyncMockStream([])
    async with AsyncHTTP2Connection(origin=ORIGIN, stream=stream) as conn:
        with pytest.raises(RuntimeError, match=r"other\.com"):
            await conn.request("GET", "https://other.com/")
        assert stream.written == []  # refused before any byte


async def test_goaway_after_the_response_head_fails_that_response() -> None:
    # GOAWAY(last stream 0) after stream 1's head: too late to send it elsewhere.
    stream = AsyncMockStream(
        [
            frames.SettingsFrame().serialize(),
            _head(1),
            frames.GoAwayFrame(stream_id=0, error_code=0).serialize(),
            b"",
        ]
    )
    async with AsyncHTTP2Connection(origin=ORIGIN, stream=stream) as conn:
        with pytest.raises(httpool.RemoteProtocolError, match="GOAWAY"):
            await conn.request("GET", "https://example.com/")
        # A new request is refused gracefully, for the pool to send elsewhere.
        with pytest.raises(httpool.ConnectionNotAvailable):
            await conn.request("GET", "https://example.com/")
