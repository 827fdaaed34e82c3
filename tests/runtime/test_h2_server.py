"""The HTTP/2 test server itself, checked with a minimal raw h2 client (not httpool)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import ssl
import struct
import threading
import time
import typing
from collections.abc import Callable, Iterator

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from tests.support.h2_server import H2Server, iter_pattern, pattern, pattern_sha256

MakeServer = Callable[..., H2Server]
Connect = Callable[[H2Server], "RawClient"]
CODES = h2.settings.SettingCodes


@dataclasses.dataclass
class Response:
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)
    body: bytearray = dataclasses.field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: bool = False
    reset_code: int | None = None


class RawClient:
    """Just enough of an HTTP/2 client: one socket (5 s timeout), h2, frames fed
    one by one so that a GOAWAY does not stop h2 from reading the responses the
    server still owes (h2 4.x closes its state machine on GOAWAY)."""

    def __init__(self, server: H2Server, *, alpn: bool = True) -> None:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if server.client_ssl_context is not None:
            context = server.client_ssl_context
            if alpn:
                context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
        self.sock = sock
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.conn.update_settings({CODES.ENABLE_PUSH: 0})
        self.responses: dict[int, Response] = {}
        self.settings: list[dict[int, int]] = []
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.eof = False
        self._buffer = b""
        self._flush()

    def close(self) -> None:
        self.sock.close()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self, path: str, body: bytes | None = None, method: bytes = b"GET", *, more: bool = False
    ) -> int:
        """Send a request; ``more``: leave the body open for ``send_body``."""
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", method),
            (b":scheme", b"http"),
            (b":authority", b"127.0.0.1"),
            (b":path", path.encode()),
        ]
        self.conn.send_headers(stream_id, headers, end_stream=body is None and not more)
        self.responses[stream_id] = Response()
        self._flush()
        if body is not None:
            self.send_body(stream_id, body)
        return stream_id

    def send_body(self, stream_id: int, body: bytes, *, end: bool = True) -> None:
        position = 0
        while position < len(body):
            window = min(
                self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            if window <= 0:
                self.receive_once()
                continue
            self.conn.send_data(stream_id, body[position : position + window])
            position += window
            self._flush()
        if end:
            self.conn.end_stream(stream_id)
            self._flush()

    def receive_once(self) -> None:
        """Read once and answer what came. A server that closes with bytes of
        ours unread (the answers this client sends while it reads can cross
        ``stop()``) resets the connection: an end, like a FIN."""
        try:
            data = self.sock.recv(65536)
            if not data:
                self.eof = True
                return
            self._buffer += data
            while len(self._buffer) >= 9:
                size = 9 + int.from_bytes(self._buffer[:3], "big")
                if len(self._buffer) < size:
                    break
                frame, self._buffer = self._buffer[:size], self._buffer[size:]
                for event in self.conn.receive_data(frame):
                    self._handle(event)
                self._flush()
        except ConnectionResetError:
            self.eof = True

    def _handle(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", None)
        response = self.responses.get(stream_id) if stream_id is not None else None
        if isinstance(event, h2.events.ResponseReceived):
            assert response is not None
            response.headers = [(bytes(k), bytes(v)) for k, v in event.headers or []]
            response.status = int(dict(response.headers)[b":status"])
        elif isinstance(event, h2.events.DataReceived):
            assert response is not None and stream_id is not None
            response.body += event.data or b""
            self.conn.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            assert response is not None
            response.trailers = [(bytes(k), bytes(v)) for k, v in event.headers or []]
        elif isinstance(event, h2.events.StreamEnded):
            assert response is not None
            response.ended = True
        elif isinstance(event, h2.events.StreamReset):
            assert response is not None
            response.reset_code = int(event.error_code or 0)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings.append({int(k): v.new_value for k, v in event.changed_settings.items()})
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
            # Keep reading the streams the GOAWAY promised to finish.
            self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Read until ``predicate()``, which may also watch the server's counters."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.05)
        try:
            while not predicate():
                assert not self.eof, "the server closed the connection"
                assert time.monotonic() < deadline, "timed out"
                with contextlib.suppress(TimeoutError):
                    self.receive_once()
        finally:
            self.sock.settimeout(5)

    def get(self, path: str, body: bytes | None = None) -> Response:
        stream_id = self.request(path, body)
        response = self.responses[stream_id]
        self.wait(lambda: response.ended or response.reset_code is not None)
        return response


@pytest.fixture
def connect() -> Iterator[Connect]:
    """``connect(server)``: a RawClient, closed after the test whatever happens."""
    clients: list[RawClient] = []

    def make(server: H2Server) -> RawClient:
        clients.append(RawClient(server))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("h2-server")]


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_pattern_helpers() -> None:
    assert pattern(600) == bytes(i % 251 for i in range(600))
    assert b"".join(iter_pattern(200_000, 1000)) == pattern(200_000)
    assert pattern_sha256(123_457) == __import__("hashlib").sha256(pattern(123_457)).hexdigest()


def test_hello_and_counters(h2_server: H2Server, connect: Connect) -> None:
    client = connect(h2_server)
    response = client.get("/")
    assert (response.status, bytes(response.body)) == (200, b"Hello, world!")
    assert (b"content-length", b"13") in response.headers
    assert client.get("/status/418").status == 418
    assert client.get("/nowhere").status == 404
    assert client.get("/bytes?size=many").status == 400
    headers = client.get("/headers").body.decode().splitlines()
    assert ":path: /headers" in headers and ":method: GET" in headers
    client.close()
    assert h2_server.connections_accepted == 1
    assert h2_server.streams_received == h2_server.streams_completed == 5
    assert h2_server.client_settings[0][CODES.ENABLE_PUSH] == 0
    # Nothing advertised unless asked: no stream limit.
    assert CODES.MAX_CONCURRENT_STREAMS not in client.conn.remote_settings


def test_concurrent_streams_do_not_block_each_other(h2_server: H2Server, connect: Connect) -> None:
    client = connect(h2_server)
    held = [client.request("/hold") for _ in range(5)]
    assert client.get("/").body == b"Hello, world!"  # not behind the held ones
    _wait_until(lambda: h2_server.held == 5)
    assert h2_server.max_streams_seen == 6
    h2_server.release_held()
    started = time.monotonic()
    slow = [client.request("/slow?delay=0.5") for _ in range(10)]
    ids = held + slow
    client.wait(lambda: all(client.responses[i].ended for i in ids))
    assert time.monotonic() - started < 3  # 5 s if the delays ran one after another
    assert [client.responses[i].body for i in ids] == [b"held"] * 5 + [b"slow"] * 10


def test_max_concurrent_streams_advertised_and_changed(
    make_h2_server: MakeServer, connect: Connect
) -> None:
    server = make_h2_server(max_concurrent_streams=3, initial_window_size=1000)
    client = connect(server)
    client.get("/")
    assert client.conn.remote_settings.max_concurrent_streams == 3
    assert client.conn.remote_settings.initial_window_size == 1000
    client.get("/settings?max_concurrent_streams=5")
    assert client.settings[-1] == {CODES.MAX_CONCURRENT_STREAMS: 5}
    server.send_settings(max_concurrent_streams=2)
    client.wait(lambda: client.settings[-1] == {CODES.MAX_CONCURRENT_STREAMS: 2})
    server.send_ping()
    client.wait(lambda: server.pings_acked == 1)
    client.close()


def test_limits_bind_once_acknowledged(make_h2_server: MakeServer, connect: Connect) -> None:
    server = make_h2_server(max_concurrent_streams=2)
    client = connect(server)
    # Sent before the client read the server's SETTINGS: legal, and accepted.
    ids = [client.request("/slow?delay=0.05") for _ in range(3)]
    client.wait(lambda: all(client.responses[i].ended for i in ids))
    assert server.max_streams_seen == 3
    assert client.conn.remote_settings.max_concurrent_streams == 2
    client.close()


@pytest.mark.parametrize("window", [None, 4 * 1024 * 1024])
def test_bytes_10mb_with_flow_control(
    h2_server: H2Server, window: int | None, connect: Connect
) -> None:
    client = connect(h2_server)
    if window is not None:
        # Wide windows: the server's own output buffer is what paces it.
        client.conn.update_settings({CODES.INITIAL_WINDOW_SIZE: window})
        client.conn.increment_flow_control_window(window)
    response = client.get("/bytes?size=10000000")
    assert (b"content-length", b"10000000") in response.headers
    assert len(response.body) == 10_000_000
    assert response.body == pattern(10_000_000)
    client.close()


def test_upload_5mb_and_echo(h2_server: H2Server, connect: Connect) -> None:
    client = connect(h2_server)
    body = pattern(5_000_000)
    response = client.get("/upload", body)
    assert response.body.decode() == f"5000000 {pattern_sha256(5_000_000)}"
    # The echo only acknowledges what it sent back: the client must read while
    # it writes, which send_body does whenever its window is empty.
    response = client.get("/echo", body[:2_000_000])
    assert response.body == body[:2_000_000]
    client.close()


def test_stall_uploads_runs_the_window_dry(make_h2_server: MakeServer, connect: Connect) -> None:
    server = make_h2_server(stall_uploads=True)
    client = connect(server)
    stream_id = client.request("/upload", method=b"POST", more=True)
    client.send_body(stream_id, pattern(65535), end=False)
    assert client.conn.local_flow_control_window(stream_id) == 0
    client.sock.settimeout(0.3)
    with pytest.raises(TimeoutError):  # SETTINGS and their ACK, then silence
        for _ in range(100):
            client.receive_once()
    assert client.conn.local_flow_control_window(stream_id) == 0
    client.close()


def test_reset_and_trailers(h2_server: H2Server, connect: Connect) -> None:
    client = connect(h2_server)
    assert client.get("/reset").reset_code == 2
    assert client.get("/reset?code=8").reset_code == 8
    response = client.get("/trailers")
    assert (response.status, bytes(response.body)) == (200, b"body")
    assert response.trailers == [(b"x-checksum", b"abc"), (b"x-done", b"1")]
    assert client.get("/").status == 200  # the connection survived the resets
    client.close()


def test_goaway_after(make_h2_server: MakeServer, connect: Connect) -> None:
    server = make_h2_server(goaway_after=3)
    client = connect(server)
    ids = [client.request("/slow?delay=0.1") for _ in range(5)]
    client.wait(lambda: client.eof)
    assert client.goaway is not None
    assert (client.goaway.last_stream_id, client.goaway.error_code) == (ids[2], 0)
    assert [client.responses[i].body for i in ids] == [b"slow"] * 3 + [b""] * 2
    assert server.streams_received == 5 and server.streams_completed == 3
    client.close()
    # Only the first connection is affected.
    client = connect(server)
    ids = [client.request("/") for _ in range(5)]
    client.wait(lambda: all(client.responses[i].ended for i in ids))
    assert client.goaway is None
    client.close()


def test_hold_goaway_and_idle_timeout(make_h2_server: MakeServer, connect: Connect) -> None:
    server = make_h2_server(idle_timeout=0.2)
    client = connect(server)
    held = [client.request("/hold") for _ in range(2)]
    _wait_until(lambda: server.held == 2)
    time.sleep(0.3)  # open streams: not idle
    server.goaway()
    server.release_held()
    assert server.held == 0
    client.wait(lambda: client.eof)
    assert client.goaway is not None and client.goaway.last_stream_id == held[-1]
    assert all(client.responses[i].body == b"held" for i in held)
    client.close()
    client = connect(server)
    started = time.monotonic()
    client.get("/")
    client.wait(lambda: client.eof)
    assert 0.2 <= time.monotonic() - started < 4
    assert client.goaway is not None and client.goaway.last_stream_id == 1
    client.close()


def test_tls_alpn_h2(h2_tls_server: H2Server, connect: Connect) -> None:
    assert h2_tls_server.url.startswith("https://127.0.0.1:")
    client = connect(h2_tls_server)
    assert isinstance(client.sock, ssl.SSLSocket)
    assert client.sock.selected_alpn_protocol() == "h2"
    assert client.get("/bytes?size=100000").body == pattern(100_000)
    client.close()


def test_client_leaving_mid_stream_is_clean(h2_server: H2Server, connect: Connect) -> None:
    client = connect(h2_server)
    stream_id = client.request("/bytes?size=50000000")
    client.wait(lambda: len(client.responses[stream_id].body) > 0)
    client.request("/echo", b"x" * 1000)
    client.close()
    _wait_until(lambda: h2_server.open_connections == 0)
    assert connect(h2_server).get("/").status == 200


def test_the_raw_client_sees_a_reset_as_the_end() -> None:
    # What stop() does to a connection whose last client bytes it had not read.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        client = RawClient(typing.cast(H2Server, _Address(port)))
        accepted, _ = listener.accept()
        accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        accepted.close()  # lingering 0 seconds: a reset, not a FIN
        try:
            client.wait(lambda: client.eof)
        finally:
            client.close()


@dataclasses.dataclass
class _Address:
    port: int
    client_ssl_context: ssl.SSLContext | None = None


def test_stop_leaves_no_thread_and_no_socket(connect: Connect) -> None:
    with H2Server() as server:
        client = connect(server)
        client.request("/hang")
        client.request("/hold")
        client.request("/slow?delay=30")
        _wait_until(lambda: server.held == 1)
        assert len(_server_threads()) == 2
        server.stop()
        assert _server_threads() == []
        client.wait(lambda: client.eof)
    # The module's fd check (tests/conftest.py) proves the sockets are closed.
