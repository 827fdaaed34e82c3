"""The pool against a real HTTP/1.1 server on 127.0.0.1.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import socket
import typing
from pathlib import Path

import pytest

import httpool
from httpool import AsyncConnectionPool
from httpool._backends.default import async_default_backend
from tests.support.concurrency import AsyncTaskGroup
from tests.support.http_server import HTTPServer


async def test_keepalive_reuses_one_socket(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        for _ in range(10):
            response = await pool.request("GET", server.url + "/")
            assert response.status == 200 and response.content == b"Hello, world!"
            assert response.extensions["http_version"] == b"HTTP/1.1"
        assert server.connections_accepted == 1 and server.requests_handled == 10


async def test_concurrent_requests_stay_within_the_limit(server: HTTPServer) -> None:
    sizes: list[int] = []

    async def fetch(i: int) -> None:
        response = await pool.request("GET", f"{server.url}/bytes?size={1000 + i}")
        sizes.append(len(response.content))

    async with AsyncConnectionPool(max_connections=4) as pool:
        async with AsyncTaskGroup() as group:
            for i in range(40):
                group.start_soon(fetch, i)
        assert sorted(sizes) == [1000 + i for i in range(40)]
        assert server.connections_accepted <= 4
        pool.check_invariants()


async def test_server_dropping_idle_connection_is_survived() -> None:
    backend = async_default_backend()
    with HTTPServer(idle_timeout=0.05) as srv:
        async with AsyncConnectionPool() as pool:
            for _ in range(3):
                assert (await pool.request("GET", srv.url + "/")).status == 200
                for _ in range(500):  # until the server has closed the idle connection
                    if srv.open_connections == 0:
                        break
                    await backend.sleep(0.01)
            assert srv.connections_accepted == 3
            assert pool.stats().closed >= 2


async def test_connection_close_response(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        for _ in range(3):
            assert (await pool.request("GET", server.url + "/close")).status == 200
        assert server.connections_accepted == 3
        assert pool.stats().connections == 0


async def test_large_and_chunked_bodies(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        response = await pool.request("GET", server.url + "/chunked?size=300000&chunk=7000")
        assert response.content == b"x" * 300000 or len(response.content) == 300000
        body = bytes(range(256)) * 2000
        response = await pool.request("POST", server.url + "/echo", content=body)
        assert response.content == body
        async with pool.stream("GET", server.url + "/bytes?size=1000000") as streamed:
            total = 0
            async for part in streamed.aiter_stream():
                total += len(part)
        assert total == 1000000
        assert server.connections_accepted == 1


async def test_read_timeout_then_pool_serves_next(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        with pytest.raises(httpool.ReadTimeout):
            await pool.request("GET", server.url + "/hang", extensions={"timeout": {"read": 0.1}})
        assert (await pool.request("GET", server.url + "/")).status == 200
        stats = pool.stats()
        assert stats.streams_in_use == 0 and stats.connections == 1
        pool.check_invariants()


async def test_refused_connection_then_pool_serves_next(server: HTTPServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    async with AsyncConnectionPool(max_connections=1) as pool:
        with pytest.raises(httpool.ConnectError):
            await pool.request("GET", f"http://127.0.0.1:{closed_port}/")
        assert pool.stats().connections == 0
        assert (await pool.request("GET", server.url + "/")).status == 200


async def test_tls_request(tls_server: HTTPServer) -> None:
    async with AsyncConnectionPool(ssl_context=tls_server.client_ssl_context) as pool:
        for _ in range(3):
            response = await pool.request("GET", tls_server.url + "/")
            assert response.content == b"Hello, world!"
        assert tls_server.connections_accepted == 1


async def test_streamed_upload_over_tls(tls_server: HTTPServer) -> None:
    # A TLS 1.3 server sends session tickets after the handshake: the socket turns
    # readable with no response byte in it. The check for an early answer between
    # two chunks must not wait there for a response, which this server (like nginx,
    # Apache, Caddy, h2o, Node, hypercorn) sends only once the whole body is in.
    async def body() -> typing.AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 65536

    timeouts = {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    async with AsyncConnectionPool(ssl_context=tls_server.client_ssl_context) as pool:
        response = await pool.request(
            "POST", tls_server.url + "/echo", content=body(), extensions={"timeout": timeouts}
        )
        assert response.status == 200
        assert response.content == b"x" * (4 * 65536)


async def test_tls_with_untrusted_certificate_fails(tls_server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        with pytest.raises(httpool.ConnectError):
            await pool.request("GET", tls_server.url + "/")
        assert pool.stats().connections == 0


async def test_top_level_style_stream_and_headers(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        response = await pool.request("GET", server.url + "/headers", headers={"X-Test": "yes"})
        assert b"x-test: yes" in response.content.lower()
        host = server.url.split("://")[1].encode()
        assert b"host: " + host in response.content.lower()


async def test_half_read_body_discards_the_connection_cleanly(server: HTTPServer) -> None:
    async with AsyncConnectionPool() as pool:
        async with pool.stream("GET", server.url + "/bytes?size=500000") as response:
            async for part in response.aiter_stream():
                assert part
                break
        stats = pool.stats()
        assert stats.connections == 0 and stats.streams_in_use == 0
        assert (await pool.request("GET", server.url + "/")).status == 200
        assert server.connections_accepted == 2


async def test_pool_over_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "pool.sock")
    with HTTPServer(uds=path) as srv:
        async with AsyncConnectionPool(uds=path) as pool:
            for _ in range(3):
                assert (await pool.request("GET", "http://localhost/")).status == 200
        assert srv.connections_accepted == 1


async def test_pool_local_address_and_socket_options(server: HTTPServer) -> None:
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    async with AsyncConnectionPool(local_address="127.0.0.1", socket_options=options) as pool:
        response = await pool.request("GET", server.url + "/")
        assert response.status == 200
        stream = response.extensions["network_stream"]
        sock = stream.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
