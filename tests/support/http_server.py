"""An HTTP/1.1 server for tests: h11 over real sockets, one thread per connection.

Theory of operation: ``ThreadedServer`` (``threaded_server.py``) accepts and
stops; every accepted connection gets its own thread running an h11 server
loop. Each blocking wait is a ``select`` on the connection and on the
wake-up pair, so ``stop()`` only has to write one byte to wake every thread,
then it shuts the sockets down and joins the threads. Nothing survives
``stop()``: no socket, no thread.

The request path picks the behaviour (see ``HTTPServer``); the server records
what it saw (``requests``, counters, SNI names) so that tests can assert on the
wire behaviour of the client instead of trusting it.
"""

from __future__ import annotations

import contextlib
import http
import select
import socket
import ssl
import threading
import time
import typing
import urllib.parse

import h11
import trustme

from tests.support.threaded_server import ThreadedServer

READ_SIZE = 65536
# A safety net for the blocking calls made after ``select`` said they would
# not block; a test that trips it has a bug, not a slow machine.
SOCKET_TIMEOUT = 10.0


class RequestHead(typing.NamedTuple):
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]


class _Stopped(Exception):
    """The server is stopping, the peer went away, or the connection idled out."""


@typing.final
class HTTPServer(ThreadedServer):
    """An HTTP/1.1 test server on 127.0.0.1 (or a Unix socket), in threads.

    Paths: ``/`` 200 "Hello, world!"; ``/echo`` the request body;
    ``/close`` a response with ``Connection: close``, then the socket closes;
    ``/slow?delay=S``; ``/bytes?size=N`` (Content-Length);
    ``/chunked?size=N&chunk=K``; ``/drip?chunks=N&delay=S``; ``/status/CODE``;
    ``/headers`` the request headers, one ``name: value`` line each;
    ``/informational`` a 103 before the 200; ``/early`` a 413 sent before the
    request body is read, then a lingering close; ``/hang`` never answers
    (its thread ends when the client hangs up).
    Anything else is a 404.

    Args:
        ssl_context: serve TLS with this server-side context.
        idle_timeout: close a keep-alive connection that sent no request for
            this many seconds.
        uds: listen on this Unix socket path instead of TCP.

    ``drop_requests = N`` makes the next N requests get no answer: the server
    reads each and hangs up (a keep-alive connection dying under a request).
    ``close_idle_connections()`` hangs up on every connection waiting for its
    next request, now (a keep-alive connection going stale between requests).
    """

    name = "http-server"

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float | None = None,
        uds: str | None = None,
    ) -> None:
        super().__init__(uds=uds)
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.requests: list[RequestHead] = []
        self.sni_names: list[str | None] = []
        self.requests_handled = 0
        self.drop_requests = 0
        # Set by the ``tls_server`` fixture: a client context trusting the server.
        self.client_ssl_context: ssl.SSLContext | None = None
        self._idle: set[socket.socket] = set()  # waiting for their next request
        if ssl_context is not None:
            ssl_context.sni_callback = self._record_sni

    # Lifecycle.

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def host(self) -> str:
        return "localhost" if self.uds is not None else "127.0.0.1"

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: ``http://127.0.0.1:PORT``."""
        if self.uds is not None:
            return f"{self.scheme}://localhost"
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def close_idle_connections(self, timeout: float = 5.0) -> int:
        """Hang up on every connection waiting for its next request; return how many.

        Waits (up to ``timeout``) until every open connection is between
        requests, so that a client that has just read a response is not missed,
        and until those connections are closed, so that the client's next
        request finds the close already delivered.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                idle, still_open = list(self._idle), self.open_connections - len(self._idle)
            if still_open == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.0005)
        for sock in idle:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown: an SSLSocket's own would tear
                # down its TLS state under the thread that serves it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        while self.open_connections > still_open and time.monotonic() < deadline:
            time.sleep(0.0005)
        return len(idle)

    def _record_sni(
        self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext
    ) -> None:
        with self.lock:
            self.sni_names.append(name)

    def _accepted(self, sock: socket.socket, address: typing.Any) -> threading.Thread:
        return self._serve_in_thread(sock, self._serve_connection)

    # One connection.

    def _serve_connection(self, raw: socket.socket) -> None:
        sock = raw
        try:
            sock.settimeout(SOCKET_TIMEOUT)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(raw, server_side=True)
            self._serve(sock)
        except (_Stopped, OSError, h11.ProtocolError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            raw.close()

    def _serve(self, sock: socket.socket) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            with self.lock:
                self._idle.add(sock)
            try:
                event = self._next_event(conn, sock, self.idle_timeout)
            finally:
                with self.lock:
                    self._idle.discard(sock)
            if isinstance(event, h11.ConnectionClosed):
                return
            assert isinstance(event, h11.Request)
            head = RequestHead(event.method, event.target, list(event.headers.raw_items()))
            with self.lock:
                self.requests.append(head)
                drop = self.drop_requests > 0
                self.drop_requests -= drop
            if drop:
                return
            split = urllib.parse.urlsplit(event.target.decode("ascii"))
            query = dict(urllib.parse.parse_qsl(split.query))
            if split.path == "/early":
                self._respond(conn, sock, 413, b"Too large", close=True)
                self._lingering_close(sock)
                return
            body = self._read_body(conn, sock)
            self._dispatch(conn, sock, split.path, query, head, body)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    def _count_request(self) -> None:
        # Counted before the answer goes out, so that a client that has its
        # response also sees the count.
        with self.lock:
            self.requests_handled += 1

    def _dispatch(
        self,
        conn: h11.Connection,
        sock: socket.socket,
        path: str,
        query: dict[str, str],
        head: RequestHead,
        body: bytes,
    ) -> None:
        if path == "/":
            self._respond(conn, sock, 200, b"Hello, world!")
        elif path == "/echo":
            self._respond(conn, sock, 200, body)
        elif path == "/close":
            self._respond(conn, sock, 200, b"Closing.", close=True)
        elif path == "/slow":
            if self.stopping.wait(float(query.get("delay", "0.1"))):
                raise _Stopped()
            self._respond(conn, sock, 200, b"Slow.")
        elif path == "/bytes":
            self._respond(conn, sock, 200, b"x" * int(query.get("size", "0")))
        elif path == "/chunked":
            size, chunk = int(query.get("size", "0")), int(query.get("chunk", "1024"))
            data = b"x" * size
            pieces = [data[i : i + chunk] for i in range(0, size, chunk)]
            self._respond_chunked(conn, sock, pieces, delay=0.0)
        elif path == "/drip":
            chunks = int(query.get("chunks", "3"))
            pieces = [b"chunk %d;" % i for i in range(chunks)]
            self._respond_chunked(conn, sock, pieces, delay=float(query.get("delay", "0.01")))
        elif path.startswith("/status/"):
            self._respond(conn, sock, int(path[len("/status/") :]), b"")
        elif path == "/headers":
            lines = b"".join(b"%s: %s\r\n" % (name, value) for name, value in head.headers)
            self._respond(conn, sock, 200, lines)
        elif path == "/informational":
            hints = h11.InformationalResponse(status_code=103, headers=[], reason=_reason(103))
            self._send(conn, sock, hints)
            self._respond(conn, sock, 200, b"After hints.")
        elif path == "/hang":
            # Until stop() or the client hangs up: a thread per abandoned
            # request would pile up over a long run.
            while self._recv(sock, None):
                pass
            raise _Stopped()
        else:
            self._respond(conn, sock, 404, b"Not found.")

    # Wire helpers.

    def _next_event(
        self, conn: h11.Connection, sock: socket.socket, timeout: float | None
    ) -> h11.Event:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(self._recv(sock, timeout))
            elif event is h11.PAUSED:  # pragma: no cover - we never pipeline
                raise _Stopped()
            else:
                return typing.cast(h11.Event, event)

    def _recv(self, sock: socket.socket, timeout: float | None) -> bytes:
        """Read once, waking for ``stop()``; ``_Stopped`` on stop or timeout."""
        if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            readable, _, _ = select.select([sock, self._wake_r], [], [], timeout)
            if self._wake_r in readable or not readable:
                raise _Stopped()
        return sock.recv(READ_SIZE)

    def _read_body(self, conn: h11.Connection, sock: socket.socket) -> bytes:
        parts = []
        while True:
            event = self._next_event(conn, sock, SOCKET_TIMEOUT)
            if isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            else:
                raise _Stopped()  # the client hung up mid-body

    def _send(self, conn: h11.Connection, sock: socket.socket, event: h11.Event) -> None:
        data = conn.send(event)
        if data:
            sock.sendall(data)

    def _respond(
        self,
        conn: h11.Connection,
        sock: socket.socket,
        status: int,
        body: bytes,
        *,
        close: bool = False,
    ) -> None:
        self._count_request()
        headers = [(b"Content-Type", b"text/plain")]
        if status not in (204, 304):
            headers.append((b"Content-Length", b"%d" % len(body)))
        if close:
            headers.append((b"Connection", b"close"))
        head = conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
        tail = conn.send(h11.Data(data=body)) if body else b""
        end = conn.send(h11.EndOfMessage())
        sock.sendall(b"".join(part or b"" for part in (head, tail, end)))

    def _respond_chunked(
        self, conn: h11.Connection, sock: socket.socket, pieces: list[bytes], delay: float
    ) -> None:
        self._count_request()
        headers = [(b"Content-Type", b"text/plain"), (b"Transfer-Encoding", b"chunked")]
        self._send(conn, sock, h11.Response(status_code=200, headers=headers, reason=b"OK"))
        for piece in pieces:
            if delay and self.stopping.wait(delay):
                raise _Stopped()
            self._send(conn, sock, h11.Data(data=piece))
        self._send(conn, sock, h11.EndOfMessage())

    def _lingering_close(self, sock: socket.socket) -> None:
        """Half-close, then drain what the client still uploads, so that the
        kernel does not answer it with a reset that destroys our response.

        The drain starts after a pause: a client that only notices our answer
        when its writes stall (asyncio's transports) gets to stall first.
        """
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        if self.stopping.wait(0.05):
            return
        with contextlib.suppress(_Stopped, OSError):
            while self._recv(sock, 2.0):
                pass


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


# TLS material and fixtures.


class TLSContexts(typing.NamedTuple):
    server: ssl.SSLContext
    client: ssl.SSLContext


def make_tls_contexts(
    ca: trustme.CA, *, alpn: list[str] | None = None, hostnames: tuple[str, ...] = ()
) -> TLSContexts:
    """A server context with a certificate from ``ca`` for 127.0.0.1, localhost
    and ``hostnames``, and a client context that trusts ``ca``."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", *hostnames).configure_cert(server)
    server.set_alpn_protocols(alpn if alpn is not None else ["http/1.1"])
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return TLSContexts(server, client)
