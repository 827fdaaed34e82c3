"""The test server itself, checked with the standard library's client and raw sockets."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.http_server import HTTPServer, make_tls_contexts


def _client(srv: HTTPServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("http-server")]


def test_hello_and_keepalive(server: HTTPServer) -> None:
    client = _client(server)
    for _ in range(3):
        client.request("GET", "/")
        response = client.getresponse()
        assert response.status == 200
        assert response.read() == b"Hello, world!"
    client.close()
    assert server.connections_accepted == 1
    assert server.requests_handled == 3
    assert [head.target for head in server.requests] == [b"/", b"/", b"/"]


def test_echo_content_length_and_chunked(server: HTTPServer) -> None:
    client = _client(server)
    client.request("POST", "/echo", body=b"abc" * 1000)
    assert client.getresponse().read() == b"abc" * 1000
    client.request("POST", "/echo", body=iter([b"one,", b"two"]), encode_chunked=True)
    assert client.getresponse().read() == b"one,two"
    client.close()
    assert (b"Transfer-Encoding", b"chunked") in server.requests[1].headers


def test_close_path_closes_the_socket(server: HTTPServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: close" in data
    assert data.endswith(b"Closing.")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/bytes?size=100000", b"x" * 100000),
        ("/chunked?size=5000&chunk=1000", b"x" * 5000),
        ("/drip?chunks=3&delay=0.01", b"chunk 0;chunk 1;chunk 2;"),
        ("/slow?delay=0.01", b"Slow."),
    ],
)
def test_bodies(server: HTTPServer, target: str, expected: bytes) -> None:
    client = _client(server)
    client.request("GET", target)
    response = client.getresponse()
    assert response.read() == expected
    if target.startswith(("/chunked", "/drip")):
        assert response.getheader("Transfer-Encoding") == "chunked"
    client.close()


def test_status_headers_and_not_found(server: HTTPServer) -> None:
    client = _client(server)
    client.request("GET", "/status/418")
    response = client.getresponse()
    assert (response.status, response.read()) == (418, b"")
    client.request("GET", "/headers", headers={"X-Test": "yes"})
    assert b"X-Test: yes\r\n" in client.getresponse().read()
    client.request("GET", "/nowhere")
    response = client.getresponse()
    assert (response.status, response.read()) == (404, b"Not found.")
    client.close()


def test_informational_then_final(server: HTTPServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /informational HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 103 ")
    assert b"HTTP/1.1 200 " in data
    assert data.endswith(b"After hints.")


def test_early_response_survives_the_upload(server: HTTPServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        sock.sendall(b"x" * 1_000_000)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 413 ")


def test_idle_timeout_drops_the_connection() -> None:
    with HTTPServer(idle_timeout=0.05) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).endswith(b"Hello, world!")
            assert sock.recv(65536) == b""  # the server hung up on the idle socket
        deadline = time.monotonic() + 2
        while srv.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.open_connections == 0


def test_hang_and_stop_leaves_nothing_behind() -> None:
    srv = HTTPServer().start()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=0.1)
    sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(TimeoutError):
        sock.recv(1)
    idle = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    deadline = time.monotonic() + 2
    while srv.open_connections < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.open_connections == 2
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 2
    assert srv.open_connections == 0
    assert _server_threads() == []
    sock.settimeout(5)
    assert sock.recv(1) == b""
    sock.close()
    idle.close()


def test_tls_and_sni(tls_server: HTTPServer) -> None:
    assert tls_server.client_ssl_context is not None
    client = http.client.HTTPSConnection(
        "localhost", tls_server.port, timeout=5, context=tls_server.client_ssl_context
    )
    client.request("GET", "/")
    assert client.getresponse().read() == b"Hello, world!"
    assert client.sock is not None
    assert isinstance(client.sock, ssl.SSLSocket)
    assert client.sock.selected_alpn_protocol() is None  # the client offered none
    client.close()
    assert tls_server.sni_names == ["localhost"]
    assert tls_server.url == f"https://127.0.0.1:{tls_server.port}"


def test_tls_alpn(http_server_ca: trustme.CA) -> None:
    contexts = make_tls_contexts(http_server_ca, alpn=["http/1.1"])
    contexts.client.set_alpn_protocols(["h2", "http/1.1"])
    with HTTPServer(ssl_context=contexts.server) as srv:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        with contexts.client.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            assert sock.selected_alpn_protocol() == "http/1.1"


@pytest.fixture
def uds_path(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "server.sock")


def test_unix_socket(uds_path: str) -> None:
    with HTTPServer(uds=uds_path) as srv:
        assert srv.url == "http://localhost"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(uds_path)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert sock.recv(65536).endswith(b"Hello, world!")
    assert not Path(uds_path).exists()
