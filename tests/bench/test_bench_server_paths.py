"""The bench server's ``/size/N`` targets and its h2c mode (what scripts/compare.py needs)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from httpool._bench.server import BenchServer, build_response

h2_connection = pytest.importorskip("h2.connection")
h2_config = pytest.importorskip("h2.config")
h2_events = pytest.importorskip("h2.events")


@pytest.fixture(scope="module")
def server() -> Iterator[BenchServer]:
    with BenchServer(body_size=3) as running:
        yield running


def fetch(port: int, request: bytes) -> bytes:
    """Send ``request`` (which asks for a close) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("size", [0, 1, 65536, 1048576])
def test_size_target_answers_a_body_of_that_size(server: BenchServer, size: int) -> None:
    request = b"GET /size/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % size
    assert fetch(server.port, request) == build_response(size, close=True)


def test_other_targets_keep_the_default_body(server: BenchServer) -> None:
    request = b"GET /sized/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert fetch(server.port, request) == build_response(3, close=True)


@pytest.mark.parametrize("target", [b"/size/x", b"/size/", b"/size/67108865"])
def test_bad_size_target_is_a_bad_request(server: BenchServer, target: bytes) -> None:
    answer = fetch(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_h2c_mode_answers_concurrent_streams() -> None:
    config = h2_config.H2Configuration(client_side=True, header_encoding=None)
    client = h2_connection.H2Connection(config)
    client.initiate_connection()
    headers = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")]
    streams = [1, 3, 5]
    for stream_id in streams:
        client.send_headers(stream_id, headers, end_stream=True)
    bodies: dict[int, bytes] = dict.fromkeys(streams, b"")
    ended: set[int] = set()
    with (
        BenchServer(body_size=4, h2c=True) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
    ):
        sock.sendall(client.data_to_send())
        for _ in range(100):  # bounded: a few reads carry every answer
            if ended == set(streams):
                break
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            for event in client.receive_data(data):
                if isinstance(event, h2_events.DataReceived):
                    bodies[event.stream_id] += event.data
                elif isinstance(event, h2_events.StreamEnded):
                    ended.add(event.stream_id)
            sock.sendall(client.data_to_send())
    assert ended == set(streams)
    assert bodies == dict.fromkeys(streams, b"0123")
