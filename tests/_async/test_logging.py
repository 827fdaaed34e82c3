"""DEBUG logging to ``httpool.<scope>``: each traced step, as httpcore logs it, and
the pool's decisions with their reasons.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import logging

import pytest

from httpool import (
    AsyncConnectionPool,
    AsyncHTTP11Connection,
    AsyncMockBackend,
    AsyncMockStream,
    Origin,
    PoolTimeout,
    Request,
)
from httpool._trace import NO_TRACE, Trace

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!"


def _records(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


async def test_steps_are_logged_as_httpcore_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="httpool")
    backend = AsyncMockBackend([OK])
    async with AsyncConnectionPool(network_backend=backend) as pool:
        await pool.request("GET", "http://example.com/")
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    assert _records(caplog, "httpool.connection") == [
        "connect_tcp.started host='example.com' port=80 local_address=None timeout=None"
        " socket_options=None",
        # The stream as it was when connected: nothing read or written yet.
        f"connect_tcp.complete return_value=<{type(backend.streams[0]).__name__}"
        " pending=1 written=0>",
    ]
    assert _records(caplog, "httpool.http11") == [
        "send_request_headers.started request=<Request [b'GET']>",
        "send_request_headers.complete",
        "send_request_body.started request=<Request [b'GET']>",
        "send_request_body.complete",
        "receive_response_headers.started request=<Request [b'GET']>",
        "receive_response_headers.complete return_value="
        "(b'HTTP/1.1', 200, b'OK', [(b'Content-Length', b'13')])",
        "receive_response_body.started request=<Request [b'GET']>",
        "receive_response_body.complete",
        "response_closed.started",
        "response_closed.complete",
    ]
    pool_messages = _records(caplog, "httpool.connection_pool")
    assert pool_messages[0].startswith("assigned (opened): ")
    assert pool_messages[0].endswith("to a request for http://example.com:80")
    assert pool_messages[1].startswith("connected: ")
    assert pool_messages[2].startswith("idle: ")
    assert pool_messages[3].endswith(": the pool is closing")
    assert len(pool_messages) == 4


async def test_pool_decisions_say_why(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="httpool.connection_pool")
    backend = AsyncMockBackend(reply=OK)
    async with AsyncConnectionPool(
        network_backend=backend, max_connections=1, keepalive_expiry=5.0
    ) as pool:
        await pool.request("GET", "http://a.example/")
        await pool.request("GET", "http://a.example/")
        # The pool is full: a.example's idle connection makes room for b.example.
        await pool.request("GET", "http://b.example/")
        backend.advance(10.0)
        await pool.request("GET", "http://b.example/")
    messages = _records(caplog, "httpool.connection_pool")
    assert any(m.startswith("assigned (reused): ") for m in messages)
    assert any("a.example:80: evicted: the pool is full" in m for m in messages)
    assert any("b.example:80: expired: idle longer than keepalive_expiry" in m for m in messages)
    assert not _records(caplog, "httpool.http11")  # only the pool's logger is on


async def test_a_queued_request_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="httpool.connection_pool")
    backend = AsyncMockBackend(reply=OK)
    extensions = {"timeout": {"pool": 0}}
    async with (
        AsyncConnectionPool(network_backend=backend, max_connections=1) as pool,
        pool.stream("GET", "http://a.example/"),
    ):
        with pytest.raises(PoolTimeout):
            await pool.request("GET", "http://b.example/", extensions=extensions)
    assert "queued: a request for http://b.example:80 (the pool is full)" in _records(
        caplog, "httpool.connection_pool"
    )


async def test_nothing_is_built_with_logging_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpool")
    request = Request("GET", "http://example.com/")
    assert Trace.start("http11.send_request_headers", request) is NO_TRACE
    async with AsyncConnectionPool(network_backend=AsyncMockBackend([OK])) as pool:
        await pool.request("GET", "http://example.com/")
    assert caplog.records == []
    # Turned on later, it is noticed at the pool's next decision ...
    caplog.set_level(logging.DEBUG, logger="httpool.http11")
    async with AsyncConnectionPool(network_backend=AsyncMockBackend([OK])) as pool:
        await pool.request("GET", "http://example.com/")
    assert "send_request_headers.complete" in _records(caplog, "httpool.http11")
    assert not _records(caplog, "httpool.connection_pool")  # not enabled
    # ... and so is turning it off: nothing is built again.
    caplog.set_level(logging.INFO, logger="httpool.http11")
    caplog.clear()
    async with AsyncConnectionPool(network_backend=AsyncMockBackend([OK])) as pool:
        await pool.request("GET", "http://example.com/")
    assert caplog.records == []
    assert Trace.start("http11.send_request_headers", request) is NO_TRACE


async def test_a_connection_made_notices_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpool")
    async with AsyncConnectionPool(network_backend=AsyncMockBackend([OK])) as pool:
        await pool.request("GET", "http://example.com/")  # logging known to be off
    caplog.set_level(logging.DEBUG, logger="httpool.http11")
    conn = AsyncHTTP11Connection(Origin(b"http", b"example.com", 80), AsyncMockStream([OK]))
    await conn.request("GET", "http://example.com/")
    await conn.aclose()
    assert "send_request_headers.complete" in _records(caplog, "httpool.http11")
