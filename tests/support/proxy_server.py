"""Proxies for tests: an HTTP proxy (forwarding and CONNECT) and a SOCKS5 server.

Theory of operation: both listen on 127.0.0.1 and serve each accepted
connection in its own thread with blocking sockets (a timeout as a safety
net); ``ThreadedServer`` (``threaded_server.py``) accepts and stops. Once a
tunnel is up, one ``select`` loop relays bytes both ways until either side
closes; it also waits on the server's wake-up socket, so that ``stop()``
ends every thread. Both record what they were asked (targets, headers,
requested addresses) so that tests assert on the wire, and both can
misbehave on request (refuse, fail, hang up, send garbage).
"""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import ssl
import threading
import time
import typing
import urllib.parse

import h11

from tests.support.threaded_server import ThreadedServer

SOCKET_TIMEOUT = 10.0
READ_SIZE = 65536


class _ProxyServer(ThreadedServer):
    """What both proxies share: upstream connections, relaying, hanging up."""

    name = "proxy"

    def __init__(self) -> None:
        super().__init__()
        self._clients: set[socket.socket] = set()

    def hang_up(self, timeout: float = 5.0) -> int:
        """Hang up on every client connection (idle keep-alive ones, tunnels) and
        wait until they are closed; return how many there were."""
        with self.lock:
            clients = list(self._clients)
        for sock in clients:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        while self.open_connections and time.monotonic() < deadline:
            time.sleep(0.001)
        return len(clients)

    def _accepted(self, sock: socket.socket, address: typing.Any) -> threading.Thread:
        self._clients.add(sock)
        return self._serve_in_thread(sock, self._run)

    def _run(self, sock: socket.socket) -> None:
        upstreams: list[socket.socket] = []
        try:
            sock.settimeout(SOCKET_TIMEOUT)
            self.serve(sock, upstreams)
        except (OSError, h11.ProtocolError, ValueError):
            pass
        finally:
            for upstream in upstreams:
                upstream.close()
            with contextlib.suppress(OSError):
                sock.close()
            with self.lock:
                self._clients.discard(sock)

    def serve(self, sock: socket.socket, upstreams: list[socket.socket]) -> None:
        raise NotImplementedError

    def connect_upstream(
        self, host: str, port: int, upstreams: list[socket.socket]
    ) -> socket.socket:
        upstream = socket.create_connection((host, port), timeout=SOCKET_TIMEOUT)
        upstreams.append(upstream)
        with self.lock:
            self._sockets.add(upstream)
        return upstream

    def wait_for_hang_up(self, sock: socket.socket) -> None:
        """Say nothing until the client hangs up (or sends more) or the server stops."""
        select.select([sock, self._wake_r], [], [], SOCKET_TIMEOUT)

    def relay(self, a: socket.socket, b: socket.socket) -> None:
        """Copy bytes both ways until one side closes (or the server stops)."""
        while not self.stopping.is_set():
            pending: list[socket.socket] = [
                s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()
            ]
            if pending:
                readable = pending
            else:
                readable, _, _ = select.select([a, b, self._wake_r], [], [], SOCKET_TIMEOUT)
                if self._wake_r in readable or not readable:
                    return
            for source in readable:
                data = source.recv(READ_SIZE)
                if not data:
                    return
                (b if source is a else a).sendall(data)


class HTTPProxyServer(_ProxyServer):
    """An HTTP proxy: forwards absolute-form requests, tunnels CONNECT.

    Args:
        ssl_context: serve TLS (an ``https://`` proxy).
        auth: ``(user, password)`` required in ``Proxy-Authorization`` (407 otherwise).
        refuse: answer every CONNECT with this status (403, 502, ...).
        hang: never answer a CONNECT (until the client hangs up or the server stops).
        after_connect: bytes sent right after the CONNECT's 200 head.

    Records ``connects`` (CONNECT targets), ``forwarded`` (method, absolute
    target, headers of each forwarded request), ``proxy_authorizations``.
    """

    name = "http-proxy"

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        refuse: int | None = None,
        after_connect: bytes = b"",
        hang: bool = False,
    ) -> None:
        super().__init__()
        self.hang = hang
        self.ssl_context = ssl_context
        self.auth = auth
        self.refuse = refuse
        self.after_connect = after_connect
        self.connects: list[bytes] = []
        self.forwarded: list[tuple[bytes, bytes, list[tuple[bytes, bytes]]]] = []
        self.proxy_authorizations: list[bytes | None] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def serve(self, sock: socket.socket, upstreams: list[socket.socket]) -> None:
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True)
            upstreams.append(sock)  # closed with the rest
        conn = h11.Connection(h11.SERVER)
        while True:
            event = _next_event(conn, sock)
            if not isinstance(event, h11.Request):
                return
            headers = list(event.headers.raw_items())
            body = _read_body(conn, sock)
            authorization = _header(headers, b"proxy-authorization")
            with self.lock:
                self.proxy_authorizations.append(authorization)
            if self.auth is not None and authorization != _basic(*self.auth):
                _respond(conn, sock, 407, b"", [(b"Proxy-Authenticate", b'Basic realm="test"')])
            elif event.method == b"CONNECT":
                with self.lock:
                    self.connects.append(event.target)
                self._tunnel(conn, sock, event.target, upstreams)
                return
            else:
                self._forward(conn, sock, event, headers, body, upstreams)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    def _tunnel(
        self,
        conn: h11.Connection,
        sock: socket.socket,
        target: bytes,
        upstreams: list[socket.socket],
    ) -> None:
        if self.refuse is not None:
            _respond(conn, sock, self.refuse, b"refused", [(b"Connection", b"close")])
            return
        if self.hang:
            self.wait_for_hang_up(sock)
            return
        host, _, port = target.decode("ascii").rpartition(":")
        try:
            upstream = self.connect_upstream(host.strip("[]"), int(port), upstreams)
        except OSError:
            _respond(conn, sock, 502, b"", [(b"Connection", b"close")])
            return
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n" + self.after_connect)
        self.relay(sock, upstream)

    def _forward(
        self,
        conn: h11.Connection,
        sock: socket.socket,
        event: h11.Request,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        upstreams: list[socket.socket],
    ) -> None:
        with self.lock:
            self.forwarded.append((event.method, event.target, headers))
        url = urllib.parse.urlsplit(event.target.decode("ascii"))
        if url.scheme != "http" or url.hostname is None:
            _respond(conn, sock, 400, b"absolute-form http:// target expected", [])
            return
        upstream = self.connect_upstream(url.hostname, url.port or 80, upstreams)
        try:
            client = h11.Connection(h11.CLIENT)
            target = (url.path or "/") + (f"?{url.query}" if url.query else "")
            sent = [(n, v) for n, v in headers if not n.lower().startswith(b"proxy-")]
            upstream.sendall(
                client.send(h11.Request(method=event.method, target=target, headers=sent))
            )
            upstream.sendall(client.send(h11.Data(data=body)) + client.send(h11.EndOfMessage()))
            response = _next_event(client, upstream)
            if not isinstance(response, h11.Response):
                raise ConnectionError("the origin sent no response")
            response_body = _read_body(client, upstream)
        finally:
            upstreams.remove(upstream)
            upstream.close()
        kept = [
            (n, v)
            for n, v in response.headers.raw_items()
            if n.lower() not in (b"content-length", b"transfer-encoding", b"connection")
        ]
        _respond(conn, sock, response.status_code, response_body, kept)


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((v for n, v in headers if n.lower() == name), None)


def _next_event(conn: h11.Connection, sock: socket.socket) -> h11.Event:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(READ_SIZE))
            continue
        assert not isinstance(event, type(h11.PAUSED))
        return typing.cast(h11.Event, event)


def _read_body(conn: h11.Connection, sock: socket.socket) -> bytes:
    body = b""
    while True:
        event = _next_event(conn, sock)
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return body


def _respond(
    conn: h11.Connection,
    sock: socket.socket,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    headers = [*headers, (b"Content-Length", str(len(body)).encode())]
    data = conn.send(h11.Response(status_code=status, headers=headers))
    sock.sendall(data + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))


# SOCKS5 (RFC 1928, RFC 1929), written out by hand: the client side uses socksio.

SOCKS_FAILURES = (
    "hang_after_greeting",
    "close_after_greeting",
    "bad_reply",
    "unknown_code",
    "host_unreachable",
    "no_methods",
)


class SOCKS5Server(_ProxyServer):
    """A SOCKS5 server (CONNECT only).

    Args:
        auth: ``(user, password)`` required (method 2), else no authentication.
        fail: misbehave on every connection: ``close_after_greeting``,
            ``bad_reply`` (a SOCKS4 reply instead of the CONNECT reply),
            ``unknown_code`` (a SOCKS5 reply with the undefined code 0x42),
            ``host_unreachable`` (reply code 4), ``no_methods`` (0xFF).

    Records ``requests``: ``(address type, address, port)`` of each CONNECT,
    the address type being ``"ipv4"``, ``"domain"`` or ``"ipv6"``.
    """

    name = "socks5"

    def __init__(self, *, auth: tuple[str, str] | None = None, fail: str | None = None) -> None:
        super().__init__()
        assert fail is None or fail in SOCKS_FAILURES
        self.auth = auth
        self.fail = fail
        self.requests: list[tuple[str, str, int]] = []

    def url(self, scheme: str = "socks5") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def serve(self, sock: socket.socket, upstreams: list[socket.socket]) -> None:
        version, count = _recv_exactly(sock, 2)
        methods = _recv_exactly(sock, count)
        if self.fail == "close_after_greeting":
            return
        if self.fail == "hang_after_greeting":
            self.wait_for_hang_up(sock)
            return
        wanted = 2 if self.auth is not None else 0
        if self.fail == "no_methods" or version != 5 or wanted not in methods:
            sock.sendall(b"\x05\xff")
            return
        sock.sendall(bytes([5, wanted]))
        if self.auth is not None:
            _, ulen = _recv_exactly(sock, 2)
            user = _recv_exactly(sock, ulen)
            password = _recv_exactly(sock, _recv_exactly(sock, 1)[0])
            if (user.decode(), password.decode()) != self.auth:
                sock.sendall(b"\x01\x01")
                return
            sock.sendall(b"\x01\x00")
        _, command, _, atype = _recv_exactly(sock, 4)
        if atype == 1:
            kind, host = "ipv4", socket.inet_ntop(socket.AF_INET, _recv_exactly(sock, 4))
        elif atype == 4:
            kind, host = "ipv6", socket.inet_ntop(socket.AF_INET6, _recv_exactly(sock, 16))
        else:
            kind, host = "domain", _recv_exactly(sock, _recv_exactly(sock, 1)[0]).decode()
        port = int.from_bytes(_recv_exactly(sock, 2), "big")
        with self.lock:
            self.requests.append((kind, host, port))
        if self.fail == "bad_reply":
            sock.sendall(b"\x04\x5a\x00\x00\x00\x00\x00\x00\x00\x00")
            return
        if self.fail == "unknown_code":
            sock.sendall(b"\x05\x42\x00\x01\x00\x00\x00\x00\x00\x00")
            return
        if self.fail == "host_unreachable" or command != 1:
            sock.sendall(b"\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00")
            return
        try:
            upstream = self.connect_upstream(host, port, upstreams)
        except OSError:
            sock.sendall(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
            return
        bound_host, bound_port = upstream.getsockname()[:2]
        sock.sendall(
            b"\x05\x00\x00\x01" + socket.inet_aton(bound_host) + int(bound_port).to_bytes(2, "big")
        )
        self.relay(sock, upstream)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data
