"""An HTTP/2 server for tests: h2 over real sockets on 127.0.0.1, in threads.

Theory of operation: ``ThreadedServer`` (``threaded_server.py``) accepts and
stops; every accepted connection gets its own thread running a
non-blocking event loop (``tests/support/h2_server_connection.py``), so
streams never block one another and large bodies flow under h2's flow
control with bounded memory. Other threads talk to a connection only by
posting a command and waking it (``send_settings``, ``send_ping``,
``goaway``, ``release_held``); these calls return once every open connection
has run the command (its frames are queued, not necessarily delivered).
``stop()`` wakes every thread, which closes its own sockets, and joins them:
nothing survives it, no socket, no thread.

The request path picks the behaviour (see ``H2Server``); the server counts
what it saw so that tests assert on the client's wire behaviour.

Fixtures (in ``tests/support/fixtures.py``, seen by every test module):
``h2_server`` (h2c with prior knowledge), ``h2_tls_server`` (TLS, ALPN
``h2``) and ``make_h2_server(tls=False, **options)``.
"""

from __future__ import annotations

import functools
import hashlib
import socket
import ssl
import threading
import typing
from collections.abc import Callable, Iterator

import h2.settings
import trustme

from tests.support.h2_server_connection import Connection
from tests.support.h2_server_responses import PATTERN_BLOCK, PATTERN_PERIOD
from tests.support.threaded_server import ThreadedServer
from tests.support.tls import CERT_HOSTNAMES, make_client_context, make_server_context

# How long a cross-thread command may take; a connection thread runs it at its
# next turn, so only a wedged server ever waits this long.
COMMAND_TIMEOUT = 5.0


def pattern(n: int) -> bytes:
    """``n`` bytes of the test pattern: ``bytes(i % 251 for i in range(n))``."""
    repeats = n // len(PATTERN_PERIOD) + 1
    return (PATTERN_PERIOD * repeats)[:n]


def iter_pattern(n: int, chunk_size: int = 65536) -> Iterator[bytes]:
    """The same ``n`` bytes as ``pattern(n)``, in chunks of at most 64 KiB."""
    chunk_size = min(chunk_size, 65536)
    position = 0
    while position < n:
        size = min(chunk_size, n - position)
        start = position % len(PATTERN_PERIOD)
        yield PATTERN_BLOCK[start : start + size]
        position += size


def pattern_sha256(n: int) -> str:
    """The hex SHA-256 of ``pattern(n)``, computed without building it."""
    digest = hashlib.sha256()
    for chunk in iter_pattern(n):
        digest.update(chunk)
    return digest.hexdigest()


@typing.final
class H2Server(ThreadedServer):
    """An HTTP/2 test server on 127.0.0.1: h2c with prior knowledge, or TLS.

    Paths (any method): ``/`` 200 "Hello, world!"; ``/echo`` streams the
    request body back as it arrives; ``/upload`` answers
    ``b"{nbytes} {sha256hex}"`` of the request body; ``/bytes?size=N``
    ``pattern(N)`` with Content-Length; ``/slow?delay=S`` b"slow" after S
    seconds; ``/hold`` b"held" once ``release_held()`` is called (wait for
    ``held`` to count it first); ``/reset?code=N`` RST_STREAM(N, default
    INTERNAL_ERROR) as soon as the headers arrive; ``/trailers`` b"body"
    then trailers ``x-checksum: abc``, ``x-done: 1``; ``/status/CODE``;
    ``/headers`` the request headers, pseudo-headers included, one
    ``name: value`` line each; ``/malformed?case=NAME`` one of the
    malformed response heads (or trailers) of
    ``h2_server_responses.MALFORMED``, then b"x";
    ``/settings?max_concurrent_streams=N`` (any setting names) new SETTINGS
    on this connection, then 200; ``/hang`` never answers. Anything else
    is a 404. All but ``/echo`` and ``/reset`` answer once the request body
    is complete.

    A client opening more streams than ``max_concurrent_streams`` allows
    gets the connection closed with GOAWAY(PROTOCOL_ERROR) (h2's rule).

    Args:
        ssl_context: serve TLS with this server-side context (ALPN ``h2``).
        max_concurrent_streams: advertised in SETTINGS; None: not sent.
        initial_window_size: the server's SETTINGS_INITIAL_WINDOW_SIZE (what
            the client may send per stream); when larger than the default the
            connection window is opened as wide.
        stall_uploads: never acknowledge received DATA.
        goaway_after: on the first connection only, after the N-th request
            HEADERS, send GOAWAY(that stream, NO_ERROR), finish the streams up
            to it, never answer later ones, then close.
        idle_timeout: send GOAWAY(last stream, NO_ERROR) and close a
            connection that had no open stream and received nothing for this
            many seconds.
        connection_factory: makes the object serving each accepted socket
            (``Connection`` or a subclass, e.g. the hostile connections of
            ``tests/support/h2_hostile.py``).
    """

    name = "h2-server"

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_concurrent_streams: int | None = None,
        initial_window_size: int | None = None,
        stall_uploads: bool = False,
        goaway_after: int | None = None,
        idle_timeout: float | None = None,
        connection_factory: Callable[[H2Server, socket.socket, int], Connection] = Connection,
    ) -> None:
        super().__init__()
        self.ssl_context = ssl_context
        self.max_concurrent_streams = max_concurrent_streams
        self.initial_window_size = initial_window_size
        self.stall_uploads = stall_uploads
        self.goaway_after = goaway_after
        self.idle_timeout = idle_timeout
        self.connection_factory = connection_factory
        # Set by the TLS fixtures: a client context trusting the server, no ALPN.
        self.client_ssl_context: ssl.SSLContext | None = None
        # Counters, updated by the connection threads under ``lock``.
        self.streams_received = 0
        self.streams_completed = 0
        self.max_streams_seen = 0
        self.client_settings: list[dict[int, int]] = []
        self.pings_acked = 0
        self.held = 0
        self._connections: dict[Connection, threading.Thread] = {}

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: ``http://127.0.0.1:PORT``."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # Connections.

    def _accepted(self, sock: socket.socket, address: typing.Any) -> threading.Thread:
        connection = self.connection_factory(self, sock, self.connections_accepted)
        thread = threading.Thread(target=connection.run, name=f"{self.name}-conn", daemon=True)
        self._connections[connection] = thread
        self.open_connections += 1
        return thread

    def _stop_connections(self) -> None:
        # Each connection thread closes its own sockets once woken.
        with self.lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            connection.wake()
        for _, thread in connections:
            thread.join()

    def connection_done(self, connection: Connection) -> None:
        """Called by a connection thread as its last act."""
        with self.lock:
            if self._connections.pop(connection, None) is not None:
                self.open_connections -= 1

    # Commands to every open connection.

    def _broadcast(self, command: Callable[[Connection], None]) -> None:
        with self.lock:
            connections = list(self._connections)
        done = [
            connection.call(functools.partial(command, connection)) for connection in connections
        ]
        for event in done:
            event.wait(COMMAND_TIMEOUT)

    def send_settings(self, **changes: int) -> None:
        """Send SETTINGS, e.g. ``send_settings(max_concurrent_streams=2)``."""
        codes = {
            int(h2.settings.SettingCodes[name.upper()]): value for name, value in changes.items()
        }
        self._broadcast(lambda connection: connection.send_settings(codes))

    def send_ping(self) -> None:
        """Send a PING; ``pings_acked`` counts the answers."""
        self._broadcast(Connection.send_ping)

    def goaway(self, last_stream_id: int | None = None) -> None:
        """Send GOAWAY(last_stream_id, NO_ERROR), by default naming the newest
        stream received; the streams it covers finish, then the connection closes."""
        self._broadcast(lambda connection: connection.send_goaway(last_stream_id))

    def release_held(self) -> None:
        """Answer every ``/hold`` request waiting now."""
        self._broadcast(Connection.release_held)


# TLS material and fixtures.


@functools.cache
def tls_material() -> tuple[trustme.CA, trustme.LeafCert]:
    """The CA and certificate every TLS H2Server uses (one per session: key
    generation is the slow part)."""
    ca = trustme.CA()
    return ca, ca.issue_cert(*CERT_HOSTNAMES)


def make_tls_server(**options: typing.Any) -> H2Server:
    """An unstarted TLS server (ALPN ``h2``) whose ``client_ssl_context`` trusts it."""
    ca, certificate = tls_material()
    server = H2Server(ssl_context=make_server_context(certificate, alpn=["h2"]), **options)
    server.client_ssl_context = make_client_context(ca)
    return server
