"""Proxies on the scripted backend, as httpcore's own proxy tests drive them.

No socket, no DNS: the mock backend's streams answer as the proxy and the
origin would. ALPN through a tunnel is faked as httpcore's tests fake it (a
stream that says "h2" once TLS started), and ``socks5://`` resolves through
the backend, which answers without DNS. Written once; runs on asyncio, trio
and threads.
"""

from __future__ import annotations

import socket
import ssl
import typing

import hpack
import hyperframe.frame as frames
import pytest

from httpool import AsyncConnectionPool, AsyncMockBackend, AsyncMockStream, Proxy
from httpool._backends.base import AsyncNetworkStream

_HTTP11_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!"
# v5 no-auth; v5 succeeded, bound to IPv4 255.0.0.1:80 (what httpcore's tests send).
_SOCKS_OK = [b"\x05\x00", b"\x05\x00\x00\x01\xff\x00\x00\x01\x00\x50"]


class AsyncHTTP1ThenHTTP2Stream(AsyncMockStream):
    """Plain HTTP/1.1 to the proxy; ALPN "h2" from the origin once TLS started."""

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        self._http2 = True
        return self


class AsyncHTTP1ThenHTTP2Backend(AsyncMockBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Any = None,
    ) -> AsyncNetworkStream:
        return AsyncHTTP1ThenHTTP2Stream(list(self._buffer))


async def test_http2_inside_a_tunnel_when_the_stream_turns_h2_after_start_tls() -> None:
    head = hpack.Encoder().encode([(b":status", b"200"), (b"content-type", b"text/plain")])
    backend = AsyncHTTP1ThenHTTP2Backend(
        [
            b"HTTP/1.1 200 OK\r\n\r\n",  # the proxy's answer to CONNECT
            frames.SettingsFrame().serialize(),
            frames.HeadersFrame(stream_id=1, data=head, flags=["END_HEADERS"]).serialize(),
            frames.DataFrame(stream_id=1, data=b"Hello, world!", flags=["END_STREAM"]).serialize(),
        ]
    )
    proxy = Proxy("http://localhost:8080/")
    async with AsyncConnectionPool(proxy=proxy, network_backend=backend, http2=True) as pool:
        response = await pool.request("GET", "https://example.com/")
        assert response.status == 200 and response.content == b"Hello, world!"
        assert response.extensions["http_version"] == b"HTTP/2"
        assert "HTTP/2, IDLE" in repr(pool.connections[0])


async def test_a_mock_stream_reports_alpn_from_its_http2_flag_at_every_query() -> None:
    stream = AsyncMockStream([], False)
    assert stream.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
    stream._http2 = True
    assert stream.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every system name lookup is recorded and fails."""
    lookups: list[object] = []

    def refuse(host: object, *args: object, **kwargs: object) -> typing.NoReturn:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "no DNS in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return lookups


def _connect_request(backend: AsyncMockBackend) -> bytes:
    # The third write to the proxy: methods, then (no auth) the CONNECT request.
    return backend.streams[0].written[1]


async def test_socks5_on_a_mock_backend_resolves_without_dns(no_dns: list[object]) -> None:
    backend = AsyncMockBackend([*_SOCKS_OK, _HTTP11_OK])
    async with AsyncConnectionPool(
        proxy=Proxy("socks5://localhost:8080/"), network_backend=backend
    ) as pool:
        response = await pool.request("GET", "http://example.com/")
        assert response.content == b"Hello, world!"
        # httpcore's repr, class name included.
        assert repr(pool.connections[0]) in (
            "<AsyncSocks5Connection ['http://example.com:80', HTTP/1.1, IDLE, Request Count: 1]>",
            "<Socks5Connection ['http://example.com:80', HTTP/1.1, IDLE, Request Count: 1]>",
        )
    assert no_dns == []
    # CONNECT to IPv4 127.0.0.1:80: the mock's answer for any name.
    assert _connect_request(backend) == b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"


class AsyncResolvingBackend(AsyncMockBackend):
    """A backend with a resolver of its own, which records what it is asked."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> str:
        self.asked.append((host, port))
        return "192.0.2.7"


async def test_socks5_asks_the_backend_socks5h_asks_nobody(no_dns: list[object]) -> None:
    for scheme, expected in (
        ("socks5", b"\x01\xc0\x00\x02\x07"),
        ("socks5h", b"\x03\x0bexample.com"),
    ):
        backend = AsyncResolvingBackend([*_SOCKS_OK, _HTTP11_OK])
        async with AsyncConnectionPool(
            proxy=Proxy(f"{scheme}://localhost:8080/"), network_backend=backend
        ) as pool:
            assert (await pool.request("GET", "http://example.com:8000/")).status == 200
        assert _connect_request(backend) == b"\x05\x01\x00" + expected + b"\x1f\x40"
        assert backend.asked == ([("example.com", 8000)] if scheme == "socks5" else [])
    assert no_dns == []
