"""Responses of the h2 test server: what each request path answers, and how a body goes out.

Theory of operation: ``Responses`` is the half of a test-server connection
(``h2_server_connection.Connection``, its only subclass) that answers
requests. Once a request is complete, ``_answer`` picks the behaviour from
its path (the table is in ``H2Server``'s docstring); a response head goes to
h2 at once, and its body waits in the ``Stream`` until ``_pump``, called by
the connection's loop on every turn, queues as much as the flow-control
windows allow. A stream leaves ``streams`` once its last frame is queued.

Memory stays bounded whatever the transfer size: a response body is produced
only while less than ``HIGH_WATER`` bytes wait for the socket; ``/bytes``
slices a fixed pattern block; ``/echo`` acknowledges received DATA only when
it forwards it, so the client can never be more than one window ahead.

This module knows nothing of sockets, threads or the event loop: it reads
and writes the connection state declared on ``Responses`` (h2, the output
buffer, the open streams) and schedules ``/slow`` through the connection's
timers.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import time
import typing
from collections.abc import Callable

import h2.connection
import h2.settings

if typing.TYPE_CHECKING:
    from tests.support.h2_server import H2Server

# Stop producing response bodies while this much output waits for the socket.
HIGH_WATER = 256 * 1024

PATTERN_PERIOD = bytes(range(251))
# Any slice of up to 64 KiB of the pattern, at any phase, is a slice of this block.
PATTERN_BLOCK = PATTERN_PERIOD * 264

Headers = list[tuple[bytes, bytes]]

_OK = (b":status", b"200")
# /malformed?case=NAME: response heads (and trailers) that break RFC 9113
# sections 8.2-8.3, sent as they are; each followed by the body b"x".
MALFORMED: dict[str, tuple[Headers, Headers | None]] = {
    "uppercase-name": ([_OK, (b"X-Upper", b"1")], None),
    "space-in-name": ([_OK, (b"x bad", b"1")], None),
    "colon-in-name": ([_OK, (b"x:y", b"1")], None),
    "empty-name": ([_OK, (b"", b"1")], None),
    "non-ascii-name": ([_OK, ("x-\u00e9".encode(), b"1")], None),
    "cr-in-value": ([_OK, (b"x-a", b"a\rb")], None),
    "lf-in-value": ([_OK, (b"x-a", b"a\nx-injected: 1")], None),
    "nul-in-value": ([_OK, (b"x-a", b"a\x00b")], None),
    "leading-space": ([_OK, (b"x-a", b" a")], None),
    "trailing-tab": ([_OK, (b"x-a", b"a\t")], None),
    "connection": ([_OK, (b"connection", b"close")], None),
    "transfer-encoding": ([_OK, (b"transfer-encoding", b"chunked")], None),
    "te-gzip": ([_OK, (b"te", b"gzip")], None),
    "no-status": ([(b"content-type", b"text/plain")], None),
    "bad-status": ([(b":status", b"2xx")], None),
    "two-statuses": ([_OK, _OK], None),
    "late-status": ([(b"x-a", b"1"), _OK], None),
    "request-pseudo": ([_OK, (b":path", b"/")], None),
    "unknown-pseudo": ([_OK, (b":x", b"1")], None),
    "pseudo-in-trailers": ([_OK], [(b":status", b"200")]),
    "lf-in-trailer": ([_OK], [(b"x-a", b"a\nb")]),
    "uppercase-trailer": ([_OK], [(b"X-Sum", b"1")]),
}


@dataclasses.dataclass(eq=False)
class Stream:
    """A request being answered (removed once its response is complete or reset)."""

    id: int
    method: bytes
    path: str
    query: dict[str, str]
    headers: Headers
    # Response body waiting for flow-control window: queued chunks (``/echo``
    # and small bodies), then ``pattern_left`` bytes of the pattern (``/bytes``).
    chunks: collections.deque[bytes] = dataclasses.field(default_factory=collections.deque)
    offset: int = 0  # into chunks[0]
    pattern_left: int = 0
    pattern_pos: int = 0
    responding: bool = False  # headers sent, body still going out
    body_complete: bool = False  # end the stream once the queued body is sent
    trailers: Headers | None = None
    echo: bool = False
    nbytes: int = 0  # request body bytes received
    digest: typing.Any = dataclasses.field(default_factory=hashlib.sha256)


class Responses:
    """Answers the requests of one connection and pumps their bodies out."""

    # The connection's state, set up by ``Connection.__init__``.
    server: H2Server
    h2: h2.connection.H2Connection
    out: bytearray  # bytes waiting for the socket
    streams: dict[int, Stream]  # requests not yet completely answered
    held: list[Stream]  # /hold requests waiting for release_held()
    backlogged: bool  # a body stopped at HIGH_WATER, not for want of window
    last_activity: float

    if typing.TYPE_CHECKING:
        # Provided by ``Connection``.
        def _later(self, delay: float, callback: Callable[[], None]) -> None: ...
        def send_settings(self, changes: dict[int, int]) -> None: ...

    def _request_complete(self, stream: Stream) -> None:
        try:
            self._answer(stream)
        except (KeyError, ValueError):  # a bad query or setting name: the test's bug
            if stream.id in self.streams and not stream.responding:
                self._respond(stream, 400, b"Bad request.")

    def _answer(self, stream: Stream) -> None:
        path, query = stream.path, stream.query
        if path == "/":
            self._respond(stream, 200, b"Hello, world!")
        elif path == "/echo":
            stream.body_complete = True
        elif path == "/upload":
            self._respond(
                stream, 200, b"%d %s" % (stream.nbytes, stream.digest.hexdigest().encode())
            )
        elif path == "/bytes":
            size = int(query.get("size", "0"))
            if self._start_response(stream, 200, length=size):
                stream.pattern_left = size
            stream.body_complete = True
        elif path == "/slow":
            self._later(float(query.get("delay", "0.1")), lambda: self._respond_if_open(stream))
        elif path == "/hold":
            self.held.append(stream)
            with self.server.lock:
                self.server.held += 1
        elif path == "/trailers":
            trailers = [(b"x-checksum", b"abc"), (b"x-done", b"1")]
            self._respond(stream, 200, b"body", trailers=trailers)
        elif path.startswith("/status/"):
            self._respond(stream, int(path[len("/status/") :]), b"")
        elif path == "/headers":
            lines = b"".join(b"%s: %s\n" % (name, value) for name, value in stream.headers)
            self._respond(stream, 200, lines)
        elif path == "/settings":
            changes = {
                int(h2.settings.SettingCodes[name.upper()]): int(value)
                for name, value in query.items()
            }
            self.send_settings(changes)
            self._respond(stream, 200, b"settings sent")
        elif path == "/hang":
            pass
        elif path == "/malformed":
            head, stream.trailers = MALFORMED[query["case"]]
            self.h2.send_headers(stream.id, head)
            stream.responding = True
            stream.chunks.append(b"x")
            stream.body_complete = True
        else:
            self._respond(stream, 404, b"Not found.")

    def _respond_if_open(self, stream: Stream) -> None:
        if stream.id in self.streams:
            self._respond(stream, 200, b"slow")

    def _respond(
        self, stream: Stream, status: int, body: bytes, *, trailers: Headers | None = None
    ) -> None:
        stream.trailers = trailers
        if self._start_response(stream, status, length=len(body)) and body:
            stream.chunks.append(body)
        stream.body_complete = True

    def _start_response(self, stream: Stream, status: int, *, length: int | None) -> bool:
        """Send the response head; True when a body (or trailers) follows."""
        headers = [(b":status", b"%d" % status), (b"content-type", b"text/plain")]
        if length is not None:
            headers.append((b"content-length", b"%d" % length))
        if stream.method == b"HEAD" or (length == 0 and stream.trailers is None):
            self.h2.send_headers(stream.id, headers, end_stream=True)
            self._completed(stream)
            return False
        self.h2.send_headers(stream.id, headers)
        stream.responding = True
        return True

    def _pump(self, stream: Stream) -> None:
        """Queue as much of the body as the windows and HIGH_WATER allow."""
        conn = self.h2
        while stream.responding:
            if len(self.out) >= HIGH_WATER:
                self.backlogged = True
                return
            if stream.chunks:
                available = len(stream.chunks[0]) - stream.offset
            elif stream.pattern_left:
                available = stream.pattern_left
            else:
                if stream.body_complete:
                    self._end(stream)
                return
            window = min(conn.local_flow_control_window(stream.id), conn.max_outbound_frame_size)
            if window <= 0:
                return  # WindowUpdated will come through _receive
            size = min(window, available)
            if stream.chunks:
                head = stream.chunks[0]
                piece = head[stream.offset : stream.offset + size]
                stream.offset += size
                if stream.offset == len(head):
                    stream.chunks.popleft()
                    stream.offset = 0
                conn.send_data(stream.id, piece)
                if stream.echo and not self.server.stall_uploads:
                    conn.acknowledge_received_data(size, stream.id)
            else:
                start = stream.pattern_pos % len(PATTERN_PERIOD)
                # A client may allow frames longer than the block: send what it holds.
                size = min(size, len(PATTERN_BLOCK) - start)
                conn.send_data(stream.id, PATTERN_BLOCK[start : start + size])
                stream.pattern_pos += size
                stream.pattern_left -= size
            self.out += conn.data_to_send()

    def _end(self, stream: Stream) -> None:
        if stream.trailers is not None:
            self.h2.send_headers(stream.id, stream.trailers, end_stream=True)
        else:
            self.h2.end_stream(stream.id)
        self._completed(stream)

    def _completed(self, stream: Stream) -> None:
        stream.responding = False
        del self.streams[stream.id]
        self.last_activity = time.monotonic()
        # Counted before the bytes leave, so that a client holding its
        # response also sees the count.
        with self.server.lock:
            self.server.streams_completed += 1
