"""httpx clients on httpool's transport, against real servers on 127.0.0.1.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

import httpool
import httpool.httpx
from tests.support.h2_server import H2Server
from tests.support.http_server import HTTPServer
from tests.support.proxy_server import HTTPProxyServer


async def test_get_and_reuse(server: HTTPServer) -> None:
    transport = httpool.httpx.AsyncHTTPTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            response = await client.get(server.url + "/")
            assert response.status_code == 200
            assert response.text == "Hello, world!"
            assert response.http_version == "HTTP/1.1"
        stats = transport.pool.stats()
        assert stats.opened == 1 and stats.requests == 3 and stats.idle == 1
    assert server.connections_accepted == 1
    assert transport.pool.stats().connections == 0


async def test_http2_through_mounts(h2_tls_server: H2Server) -> None:
    verify = h2_tls_server.client_ssl_context
    assert verify is not None
    transport = httpool.httpx.AsyncHTTPTransport(http2=True, verify=verify)
    mounts = {"https://": transport}
    async with httpx.AsyncClient(mounts=mounts) as client:
        response = await client.get(f"https://127.0.0.1:{h2_tls_server.port}/")
        assert response.status_code == 200
        assert response.http_version == "HTTP/2"
        assert response.content == b"Hello, world!"
    assert transport.pool.stats().opened == 1


async def test_streaming_both_ways(server: HTTPServer) -> None:
    pieces = [b"x" * 10_000, b"y" * 20_000, b"z"]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    transport = httpool.httpx.AsyncHTTPTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post(server.url + "/echo", content=body())
        assert response.content == b"".join(pieces)
        async with client.stream("GET", server.url + "/chunked?size=100000&chunk=1000") as r:
            received = 0
            chunks = 0
            async for chunk in r.aiter_bytes():
                received += len(chunk)
                chunks += 1
            assert received == 100_000 and chunks > 1


async def test_verify_and_tls(tls_server: HTTPServer) -> None:
    verify = tls_server.client_ssl_context
    assert verify is not None
    transport = httpool.httpx.AsyncHTTPTransport(verify=verify)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(tls_server.url + "/")
        assert response.status_code == 200
    # The default context does not trust the test CA: a ConnectError, as httpx says it.
    async with httpx.AsyncClient(transport=httpool.httpx.AsyncHTTPTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(tls_server.url + "/")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_errors_are_httpx_errors(server: HTTPServer) -> None:
    transport = httpool.httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.get(f"http://127.0.0.1:{_closed_port()}/")
        assert isinstance(info.value.__cause__, httpool.ConnectError)
        # Refused when sent, inside the mapping (httpx builds the URL outside it).
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("invalid://example.org/")
        with pytest.raises(httpx.ConnectError):  # as httpcore, which tries to connect
            await client.get(httpx.URL(server.url).copy_with(port=123456))
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url + "/slow?delay=5", timeout=httpx.Timeout(5, read=0.2))
        # Hold the only connection: the next request waits for it, then gives up.
        async with client.stream("GET", server.url + "/") as held:
            assert held.status_code == 200
            with pytest.raises(httpx.PoolTimeout):
                await client.get(server.url + "/", timeout=httpx.Timeout(5, pool=0.1))
        response = await client.get(server.url + "/")
        assert response.status_code == 200


async def test_early_response_is_read_through_httpx(server: HTTPServer) -> None:
    # The server answers 413 before reading the body and hangs up.
    transport = httpool.httpx.AsyncHTTPTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post(server.url + "/early", content=b"x" * 8_000_000)
        assert response.status_code == 413


async def test_through_an_http_proxy(server: HTTPServer, tls_server: HTTPServer) -> None:
    with HTTPProxyServer(auth=("user", "secret")) as proxy:
        url = proxy.url.replace("://", "://user:secret@")
        verify = tls_server.client_ssl_context
        assert verify is not None
        transport = httpool.httpx.AsyncHTTPTransport(proxy=url, verify=verify)
        async with httpx.AsyncClient(transport=transport) as client:
            # http:// is forwarded, https:// goes through a CONNECT tunnel.
            assert (await client.get(server.url + "/")).text == "Hello, world!"
            assert (await client.get(tls_server.url + "/")).text == "Hello, world!"
        assert len(proxy.forwarded) == 1 and proxy.connections_accepted == 2


async def test_proxy_refusal_is_httpx_proxy_error(tls_server: HTTPServer) -> None:
    with HTTPProxyServer(auth=("user", "secret")) as proxy:
        verify = tls_server.client_ssl_context
        assert verify is not None
        transport = httpool.httpx.AsyncHTTPTransport(proxy=proxy.url, verify=verify)
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ProxyError, match="407"):
                await client.get(tls_server.url + "/")
