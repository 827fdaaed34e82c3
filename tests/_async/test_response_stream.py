"""A response body's life, the same on HTTP/1.1 and HTTP/2 (one base class).

Written once; runs on asyncio, trio and (generated) threads, on scripted streams.
"""

from __future__ import annotations

import typing

import hpack
import hyperframe.frame as frames
import pytest

from httpool import (
    AsyncHTTP11Connection,
    AsyncMockStream,
    Origin,
    RemoteProtocolError,
    Request,
)
from httpool._async.http2 import AsyncHTTP2Connection

ORIGIN = Origin(b"https", b"example.com", 443)
URL = "https://example.com/"
HTTP11 = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!"


def _http2(body: list[bytes]) -> list[bytes]:
    block = hpack.Encoder().encode([(b":status", b"200")])
    head = frames.HeadersFrame(stream_id=1, data=block, flags=["END_HEADERS"]).serialize()
    data = [frames.DataFrame(stream_id=1, data=piece).serialize() for piece in body]
    end = frames.DataFrame(stream_id=1, data=b"", flags=["END_STREAM"]).serialize()
    return [frames.SettingsFrame().serialize(), head, *data, end]


def _connection(protocol: str, cut: bool = False) -> AsyncHTTP11Connection | AsyncHTTP2Connection:
    """A connection whose response says Hello, world!, or (``cut``) whose
    server closes the connection after the response head."""
    if protocol == "HTTP/1.1":
        script = [HTTP11[:-13], b""] if cut else [HTTP11]
        return AsyncHTTP11Connection(ORIGIN, AsyncMockStream(script))
    script = _http2([b"Hello, ", b"world!"])
    return AsyncHTTP2Connection(ORIGIN, AsyncMockStream([*script[:2], b""] if cut else script))


class Recorder:
    def __init__(self) -> None:
        self.steps: list[str] = []

    async def __call__(self, name: str, info: dict[str, typing.Any]) -> None:
        self.steps.append(name)


def _request(trace: Recorder | None = None) -> Request:
    extensions = {} if trace is None else {"trace": trace}
    return Request("GET", URL, headers={"Host": "example.com"}, extensions=extensions)


@pytest.mark.parametrize("protocol", ["HTTP/1.1", "HTTP/2"])
async def test_the_end_stays_the_end_and_a_closed_body_refuses(protocol: str) -> None:
    async with _connection(protocol) as conn:
        response = await conn.handle_async_request(_request())
        body = typing.cast(typing.Any, response.stream)
        assert b"".join([chunk async for chunk in body]) == b"Hello, world!"
        for _ in range(2):
            with pytest.raises(StopAsyncIteration):
                await body.__anext__()
        await body.aclose()
        await body.aclose()  # idempotent
        with pytest.raises(RuntimeError, match="closed before its body was read"):
            await body.__anext__()


@pytest.mark.parametrize("protocol", ["HTTP/1.1", "HTTP/2"])
async def test_the_body_and_the_close_are_traced_once_each(protocol: str) -> None:
    trace = Recorder()
    prefix = "http11" if protocol == "HTTP/1.1" else "http2"
    async with _connection(protocol) as conn:
        response = await conn.handle_async_request(_request(trace))
        body = typing.cast(typing.Any, response.stream)
        del trace.steps[:]
        assert b"".join([chunk async for chunk in body]) == b"Hello, world!"
        with pytest.raises(StopAsyncIteration):
            await body.__anext__()
        await body.aclose()
        await body.aclose()
    assert trace.steps == [
        f"{prefix}.receive_response_body.started",
        f"{prefix}.receive_response_body.complete",
        f"{prefix}.response_closed.started",
        f"{prefix}.response_closed.complete",
    ]


@pytest.mark.parametrize("protocol", ["HTTP/1.1", "HTTP/2"])
async def test_a_failed_body_is_traced_as_failed_and_then_ended(protocol: str) -> None:
    trace = Recorder()
    prefix = "http11" if protocol == "HTTP/1.1" else "http2"
    async with _connection(protocol, cut=True) as conn:
        response = await conn.handle_async_request(_request(trace))
        body = typing.cast(typing.Any, response.stream)
        del trace.steps[:]
        with pytest.raises(RemoteProtocolError):
            async for _ in body:
                pass
        with pytest.raises(StopAsyncIteration):  # ended, not closed
            await body.__anext__()
        await body.aclose()
    assert trace.steps[:2] == [
        f"{prefix}.receive_response_body.started",
        f"{prefix}.receive_response_body.failed",
    ]
    assert trace.steps[2:] == [
        f"{prefix}.response_closed.started",
        f"{prefix}.response_closed.complete",
    ]
