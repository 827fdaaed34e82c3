"""AsyncHTTPConnection against the real test server (and the mock backend where
the network cannot be made to misbehave on cue).

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import socket
import sys
import types
import typing
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import httpool
from httpool import AsyncMockBackend, Origin, Request
from httpool._async.connection import AsyncHTTPConnection
from httpool._async.http11 import AsyncHTTP11Connection
from tests.support.http_server import HTTPServer


def _origin(srv: HTTPServer) -> Origin:
    return Origin(srv.scheme.encode(), srv.host.encode(), srv.port)


async def test_get_and_response_extensions(server: HTTPServer) -> None:
    async with AsyncHTTPConnection(_origin(server), keepalive_expiry=60) as conn:
        assert (conn.info(), conn.capacity(), conn.is_alive()) == ("CONNECTING", 1, True)
        assert not conn.is_idle() and not conn.is_closed() and not conn.has_expired()
        assert not conn.is_available() and conn.connection is None
        assert (conn.request_count, conn.response_started) == (0, False)
        request = Request("GET", server.url + "/", headers={"Host": server.url[7:]})
        await conn.aconnect(request)
        await conn.aconnect(request)  # idempotent
        assert isinstance(conn.connection, AsyncHTTP11Connection)
        response = await conn.request("GET", server.url + "/")
        assert server.connections_accepted == 1
        assert response.status == 200
        assert response.content == b"Hello, world!"
        assert response.extensions["http_version"] == b"HTTP/1.1"
        assert response.extensions["reason_phrase"] == b"OK"
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("server_addr")[1] == server.port
        assert conn.is_idle() and conn.is_available() and conn.is_alive()
        assert not conn.has_expired() and conn.response_started and conn.request_count == 1
        assert conn.info() == f"'{server.url}', HTTP/1.1, IDLE, Request Count: 1"
        assert repr(conn).startswith("<AsyncHTTPConnection [") or repr(conn).startswith(
            "<HTTPConnection ["
        )
    assert conn.is_closed() and conn.capacity() == 0


async def test_keepalive_reuses_one_socket(server: HTTPServer) -> None:
    async with AsyncHTTPConnection(_origin(server)) as conn:
        for _ in range(5):
            response = await conn.request("GET", server.url + "/")
            assert response.content == b"Hello, world!"
        assert conn.request_count == 5
        assert server.connections_accepted == 1
        assert server.requests_handled == 5


async def test_tls_with_alpn(tls_server: HTTPServer) -> None:
    origin = _origin(tls_server)
    async with AsyncHTTPConnection(origin, ssl_context=tls_server.client_ssl_context) as conn:
        for _ in range(2):
            response = await conn.request("GET", tls_server.url + "/")
            assert response.content == b"Hello, world!"
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
        assert ssl_object.selected_alpn_protocol() == "http/1.1"
    assert tls_server.connections_accepted == 1
    # An IP address is never sent as a server name.
    assert tls_server.sni_names == [None]


@pytest.mark.parametrize("sni", ["example.org", b"example.org"])
async def test_sni_hostname_extension(tls_server: HTTPServer, sni: str | bytes) -> None:
    origin = _origin(tls_server)
    async with AsyncHTTPConnection(origin, ssl_context=tls_server.client_ssl_context) as conn:
        response = await conn.request("GET", tls_server.url + "/", extensions={"sni_hostname": sni})
        assert response.status == 200
    assert tls_server.sni_names == ["example.org"]


async def test_untrusted_certificate_is_a_connect_error(tls_server: HTTPServer) -> None:
    async with AsyncHTTPConnection(_origin(tls_server)) as conn:
        with pytest.raises(httpool.ConnectError):
            await conn.request("GET", tls_server.url + "/")
        assert conn.is_closed() and conn.info() == "CONNECTION FAILED"


async def test_connection_close_response(server: HTTPServer) -> None:
    async with AsyncHTTPConnection(_origin(server)) as conn:
        response = await conn.request("GET", server.url + "/close")
        assert response.content == b"Closing."
        assert conn.is_closed() and conn.capacity() == 0 and not conn.is_alive()
        with pytest.raises(httpool.ConnectionNotAvailable):
            await conn.request("GET", server.url + "/")


async def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AsyncHTTPConnection(Origin(b"http", b"127.0.0.1", port)) as conn:
        with pytest.raises(httpool.ConnectError):
            await conn.request("GET", f"http://127.0.0.1:{port}/")
        assert conn.is_closed() and conn.capacity() == 0 and conn.has_expired()
        assert not conn.is_alive()


async def test_connect_retries_back_off_on_the_backend_clock() -> None:
    backend = AsyncMockBackend(reply=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    backend.connect_error = httpool.ConnectError("Connection refused")
    delays: list[float] = []

    async def trace(name: str, info: dict[str, typing.Any]) -> None:
        if name == "connection.retry.started":
            delays.append(info["delay"])
            # The mock fails one connect per error set: fail the next one too.
            backend.connect_error = httpool.ConnectError("Connection refused")

    origin = Origin(b"http", b"example.com", 80)
    async with AsyncHTTPConnection(origin, retries=3, network_backend=backend) as conn:
        with pytest.raises(httpool.ConnectError):
            await conn.request("GET", "http://example.com/", extensions={"trace": trace})
        assert conn.is_closed() and conn.info() == "CONNECTION FAILED"
    assert delays == [0.5, 1.0, 2.0]
    assert backend.connects == 4
    assert backend.now() == 3.5


async def test_connect_succeeds_after_a_retry() -> None:
    backend = AsyncMockBackend(reply=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    backend.connect_error = httpool.ConnectTimeout("timed out")
    origin = Origin(b"http", b"example.com", 80)
    async with AsyncHTTPConnection(origin, retries=2, network_backend=backend) as conn:
        response = await conn.request("GET", "http://example.com/")
        assert response.content == b"ok"
    assert backend.connects == 2
    assert backend.now() == 0.5


async def test_connect_timeout_without_retries() -> None:
    backend = AsyncMockBackend()
    backend.connect_error = httpool.ConnectTimeout("timed out")
    origin = Origin(b"http", b"example.com", 80)
    async with AsyncHTTPConnection(origin, network_backend=backend) as conn:
        with pytest.raises(httpool.ConnectTimeout):
            await conn.request("GET", "http://example.com/")
    assert backend.connects == 1 and backend.now() == 0.0


async def test_unix_domain_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "http.sock")
    with HTTPServer(uds=path) as srv:
        origin = Origin(b"http", b"localhost", 80)
        async with AsyncHTTPConnection(origin, uds=path) as conn:
            for _ in range(2):
                response = await conn.request("GET", "http://localhost/")
                assert response.content == b"Hello, world!"
        assert srv.connections_accepted == 1


async def test_large_and_chunked_downloads(server: HTTPServer) -> None:
    async with AsyncHTTPConnection(_origin(server)) as conn:
        response = await conn.request("GET", server.url + "/bytes?size=1000000")
        assert response.content == b"x" * 1000000
        response = await conn.request("GET", server.url + "/chunked?size=300000&chunk=7000")
        assert response.content == b"x" * 300000
        async with conn.stream("GET", server.url + "/drip?chunks=3&delay=0.01") as streamed:
            parts = [part async for part in streamed.aiter_stream()]
        assert b"".join(parts) == b"chunk 0;chunk 1;chunk 2;"
        assert conn.is_idle()
    assert server.connections_accepted == 1


async def test_partial_read_then_close_closes_the_connection(server: HTTPServer) -> None:
    async with AsyncHTTPConnection(_origin(server)) as conn:
        async with conn.stream("GET", server.url + "/bytes?size=1000000") as streamed:
            async for _ in streamed.aiter_stream():
                break
        assert conn.is_closed()


async def test_uploads(server: HTTPServer) -> None:
    body = bytes(range(256)) * 1000  # larger than one coalesced write

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 10000):
            yield body[i : i + 10000]

    async with AsyncHTTPConnection(_origin(server)) as conn:
        response = await conn.request("POST", server.url + "/echo", content=body)
        assert response.content == body
        response = await conn.request("POST", server.url + "/echo", content=b"small")
        assert response.content == b"small"
        response = await conn.request("POST", server.url + "/echo", content=chunks())
        assert response.content == body
        assert conn.is_idle()
    assert server.connections_accepted == 1
    assert (b"Transfer-Encoding", b"chunked") in server.requests[2].headers


async def test_early_response_stops_the_upload(server: HTTPServer) -> None:
    sent = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(10000):  # 640 MB: far more than any socket buffer
            sent.append(1)
            yield b"x" * 65536

    async with AsyncHTTPConnection(_origin(server)) as conn:
        response = await conn.request("POST", server.url + "/early", content=endless())
        assert response.status == 413
        assert response.content == b"Too large"
        assert conn.is_closed()
    assert len(sent) < 1000


async def test_hang_with_read_timeout(server: HTTPServer) -> None:
    async with AsyncHTTPConnection(_origin(server)) as conn:
        with pytest.raises(httpool.ReadTimeout):
            await conn.request("GET", server.url + "/hang", extensions={"timeout": {"read": 0.05}})
        assert conn.is_closed() and not conn.response_started


async def test_unsupported_scheme() -> None:
    conn = AsyncHTTPConnection(Origin(b"ftp", b"example.com", 21))
    with pytest.raises(httpool.UnsupportedProtocol, match="unsupported protocol 'ftp://'"):
        await conn.aconnect(Request("GET", "http://example.com/"))
    assert conn.is_closed()
    with pytest.raises(httpool.ConnectionNotAvailable):
        await conn.aconnect(Request("GET", "http://example.com/"))


async def test_server_choosing_h2_that_was_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in httpcore: HTTP/2 is spoken if h2 is there (a scripted stream does this) ...
    package = AsyncHTTPConnection.aconnect.__module__.rpartition(".")[0]
    fake = types.ModuleType(package + ".http2")
    fake.AsyncHTTP2Connection = AsyncFakeHTTP2Connection  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, package + ".http2", fake)
    origin = Origin(b"https", b"example.com", 443)
    conn = AsyncHTTPConnection(origin, network_backend=AsyncMockBackend(http2=True))
    await conn.aconnect(Request("GET", "https://example.com/"))
    assert isinstance(conn.connection, AsyncFakeHTTP2Connection)
    await conn.aclose()
    # ... and a protocol error if it is not.
    monkeypatch.setitem(sys.modules, package + ".http2", None)
    async with AsyncHTTPConnection(origin, network_backend=AsyncMockBackend(http2=True)) as conn:
        with pytest.raises(httpool.RemoteProtocolError, match="HTTP/2"):
            await conn.request("GET", "https://example.com/")
        assert conn.is_closed()


class AsyncTLSFailingBackend(AsyncMockBackend):
    """Its first ``failures`` TLS handshakes fail."""

    def __init__(self, failures: int) -> None:
        super().__init__(reply=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.failures = failures

    async def connect_tcp(self, *args: typing.Any, **kwargs: typing.Any) -> httpool.AsyncMockStream:
        stream = await super().connect_tcp(*args, **kwargs)
        backend = self

        class AsyncHandshakeStream(type(stream)):  # type: ignore[misc]
            async def start_tls(self, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
                if backend.failures:
                    backend.failures -= 1
                    raise httpool.ConnectError("TLS handshake failed")
                return self

        stream.__class__ = AsyncHandshakeStream
        return typing.cast(httpool.AsyncMockStream, stream)


@pytest.mark.parametrize(("retries", "succeeds"), [(3, True), (1, False)])
async def test_failed_tls_handshakes_are_retried(retries: int, succeeds: bool) -> None:
    backend = AsyncTLSFailingBackend(failures=2)
    origin = Origin(b"https", b"example.com", 443)
    async with AsyncHTTPConnection(origin, retries=retries, network_backend=backend) as conn:
        if succeeds:
            response = await conn.request("GET", "https://example.com/")
            assert response.content == b"ok"
        else:
            with pytest.raises(httpool.ConnectError, match="TLS handshake"):
                await conn.request("GET", "https://example.com/")
    assert backend.connects == min(retries + 1, 3)
    assert all(stream.closed for stream in backend.streams)


async def test_wrong_origin_is_refused(server: HTTPServer) -> None:
    async with AsyncHTTPConnection(_origin(server)) as conn:
        assert not conn.can_handle_request(Origin(b"http", b"example.com", 80))
        with pytest.raises(RuntimeError):
            await conn.request("GET", "http://example.com/")


async def test_trace_of_a_request(server: HTTPServer) -> None:
    names: list[str] = []

    async def trace(name: str, info: dict[str, typing.Any]) -> None:
        names.append(name)

    async with AsyncHTTPConnection(_origin(server)) as conn:
        await conn.request("GET", server.url + "/", extensions={"trace": trace})
    assert names == [
        "connection.connect_tcp.started",
        "connection.connect_tcp.complete",
        "http11.send_request_headers.started",
        "http11.send_request_headers.complete",
        "http11.send_request_body.started",
        "http11.send_request_body.complete",
        "http11.receive_response_headers.started",
        "http11.receive_response_headers.complete",
        "http11.receive_response_body.started",
        "http11.receive_response_body.complete",
        "http11.response_closed.started",
        "http11.response_closed.complete",
    ]


async def test_closed_before_connecting() -> None:
    conn = AsyncHTTPConnection(Origin(b"http", b"example.com", 80))
    await conn.aclose()
    assert conn.is_closed() and conn.info() == "CLOSED" and conn.capacity() == 0
    with pytest.raises(httpool.ConnectionNotAvailable):
        await conn.request("GET", "http://example.com/")


async def test_http2_without_its_module(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if h2 were not installed: the import of the http2 module fails, and
    # asking for HTTP/2 fails when the connection or pool is built (it used
    # to speak HTTP/1.1 without a word, and http1=False failed on the request).
    package = AsyncHTTPConnection.aconnect.__module__.rpartition(".")[0]
    monkeypatch.setitem(sys.modules, package + ".http2", None)
    for http1 in (True, False):
        with pytest.raises(ImportError, match=r"pip install 'httpool\[http2\]'"):
            AsyncHTTPConnection(_origin(server), http1=http1, http2=True)
        with pytest.raises(ImportError, match="'http2' extra"):
            httpool.AsyncConnectionPool(http1=http1, http2=True)
    async with AsyncHTTPConnection(_origin(server)) as conn:  # HTTP/1.1 needs no h2
        assert (await conn.request("GET", server.url + "/")).status == 200
        assert isinstance(conn.connection, AsyncHTTP11Connection)
    assert server.connections_accepted == 1


class AsyncFakeHTTP2Connection:
    """Stands in for the HTTP/2 connection, to check which class is picked and how."""

    def __init__(self, **kwargs: typing.Any) -> None:
        self.kwargs = kwargs

    async def aconnect(self, request: Request) -> None:
        pass

    async def aclose(self) -> None:
        await self.kwargs["stream"].aclose()


@pytest.mark.parametrize(
    ("scheme", "http1", "alpn_h2"), [(b"https", True, True), (b"http", False, False)]
)
async def test_http2_is_chosen_once_its_module_exists(
    monkeypatch: pytest.MonkeyPatch, scheme: bytes, http1: bool, alpn_h2: bool
) -> None:
    package = AsyncHTTPConnection.aconnect.__module__.rpartition(".")[0]
    fake = types.ModuleType(package + ".http2")
    fake.AsyncFakeHTTP2Connection = AsyncFakeHTTP2Connection  # type: ignore[attr-defined]
    fake.AsyncHTTP2Connection = AsyncFakeHTTP2Connection  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, package + ".http2", fake)
    backend = AsyncMockBackend(http2=alpn_h2)
    origin = Origin(scheme, b"example.com", 443)
    conn = AsyncHTTPConnection(origin, http1=http1, http2=True, network_backend=backend)
    await conn.aconnect(Request("GET", f"{scheme.decode()}://example.com:443/"))
    assert isinstance(conn.connection, AsyncFakeHTTP2Connection)
    assert conn.connection.kwargs["origin"] == origin
    await conn.aclose()
    assert backend.streams[0].closed


async def test_close_while_connecting() -> None:
    backend = AsyncMockBackend()
    conn = AsyncHTTPConnection(Origin(b"http", b"example.com", 80), network_backend=backend)

    async def trace(name: str, info: dict[str, typing.Any]) -> None:
        if name == "connection.connect_tcp.complete":
            await conn.aclose()  # as a pool shutting down would, from another task

    await conn.aconnect(Request("GET", "http://example.com/", extensions={"trace": trace}))
    assert conn.is_closed() and backend.streams[0].closed
    with pytest.raises(httpool.ConnectionNotAvailable):
        await conn.request("GET", "http://example.com/")
