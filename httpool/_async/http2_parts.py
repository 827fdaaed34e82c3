"""The pieces of the HTTP/2 connection that are not the connection itself.

What lives here: the settings we send, h2's client state machine with the
workaround for python-hyper/h2#1181 (``ClientH2``), the per-stream inbox
(``StreamInbox``), the response body (``AsyncHTTP2ResponseStream``) and the
translation of a ``Request`` into HTTP/2 header fields. ``http2.py`` holds the
connection, its locks and its reader.
"""

from __future__ import annotations

import collections
import enum
import typing

import h2.config
import h2.connection
import h2.events
import h2.stream

from .._exceptions import RemoteProtocolError
from .._http2_headers import CONNECTION_SPECIFIC
from .._models import Request, get_timeout
from .._synchronization import AsyncEvent, AsyncShieldCancellation, uninterruptible
from .._trace import NO_TRACE, Trace

if typing.TYPE_CHECKING:
    from .http2 import AsyncHTTP2Connection

READ_SIZE = 65536
# What the server may send before we acknowledge: per stream, and in all.
STREAM_WINDOW = 4 * 1024 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
MAX_FRAME_SIZE = 256 * 1024
REFUSED_STREAM = 7
CANCEL = 8
PROTOCOL_ERROR = 1
# What a request's HTTP/1.1 headers lose in HTTP/2: the connection-specific
# fields (RFC 9113 section 8.2.2), and Host, which becomes :authority.
HOP_BY_HOP = CONNECTION_SPECIFIC | {b"host"}


# The events a stream's reader consumes; WINDOW_UPDATE and PRIORITY are h2's business.
STREAM_EVENTS = (
    h2.events.ResponseReceived,
    h2.events.InformationalResponseReceived,
    h2.events.DataReceived,
    h2.events.TrailersReceived,
    h2.events.StreamEnded,
)
HEADER_EVENTS = (
    h2.events.ResponseReceived,
    h2.events.InformationalResponseReceived,
    h2.events.TrailersReceived,
)


def preface_answer(event: h2.events.Event) -> h2.events.Event | RemoteProtocolError:
    """What the server's first frame says: its SETTINGS (RFC 9113 3.4: that
    frame must come first), or the error for anything else. Something else
    first means that the server broke the preface or that bytes before it
    were lost on the way: the message says what came, and does not claim
    that the server sent nothing."""
    if isinstance(event, h2.events.RemoteSettingsChanged):
        return event
    return RemoteProtocolError(
        f"The first HTTP/2 frame received was {type(event).__name__}, not the server's"
        " SETTINGS: bytes before it were lost, or the server broke the connection preface."
    )


class ConnectionState(enum.Enum):
    ACTIVE = "active"  # takes new streams
    GOING_AWAY = "going away"  # GOAWAY received: running streams finish, no new ones
    CLOSED = "closed"


class ClientH2(h2.connection.H2Connection):
    """h2's client connection, working around h2#1181: h2 moves its state machine
    to CLOSED on a received GOAWAY and would then reject the frames of the
    streams the server promised to finish, and it drops pending output."""

    def __init__(self) -> None:
        # Our request headers are validated when the Request is built, and
        # _request_headers lower-cases names and drops connection-specific
        # ones, so h2 need not check them again. Received header blocks are
        # checked by _http2_headers, for a fraction of what h2's check costs;
        # h2's inbound normalising only joins request cookies.
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
        super().__init__(config=config)
        self.held_output = b""

    def _receive_goaway_frame(self, frame: typing.Any) -> typing.Any:
        state = self.state_machine.state
        # h2 clears the output buffer here; what it held is still owed.
        self.held_output += self.data_to_send()
        result = super()._receive_goaway_frame(frame)
        if state is h2.connection.ConnectionState.CLIENT_OPEN:
            self.state_machine.state = state
        return result

    def has_output(self) -> bool:
        # h2 has no public way to look without taking.
        return bool(self._data_to_send or self.held_output)

    def take_output(self) -> bytes:
        data = self.data_to_send()
        if self.held_output:
            data, self.held_output = self.held_output + data, b""
        return data


class StreamInbox:
    """What arrived for one stream and not yet consumed."""

    __slots__ = ("body_started", "events", "trailers", "wakeup")

    def __init__(self) -> None:
        self.body_started = False
        # Set while the stream waits for another stream's reader (see _next_event).
        self.wakeup: AsyncEvent | None = None
        self.events: collections.deque[h2.events.Event | BaseException] = collections.deque()
        self.trailers: list[tuple[bytes, bytes]] = []


class AsyncHTTP2ResponseStream:
    """A response body on one stream; closing it before its end resets the stream.

    An iterator object rather than a generator, for the reason given in
    ``http11.py``.
    """

    __slots__ = ("_connection", "_request", "_state", "_stream_id", "_timeout", "_trace")

    # _state: 0 body not started, 1 streaming, 2 body ended or failed, 3 closed.

    def __init__(self, connection: AsyncHTTP2Connection, request: Request, stream_id: int) -> None:
        self._connection = connection
        self._request = request
        self._stream_id = stream_id
        self._timeout = get_timeout(request.extensions, "read")
        self._trace = Trace.start("http2.receive_response_body", request)
        self._state = 0

    def __aiter__(self) -> AsyncHTTP2ResponseStream:
        return self

    @uninterruptible
    async def __anext__(self) -> bytes:
        if self._state > 1:
            if self._state == 3:
                raise RuntimeError("The response was closed before its body was read.")
            raise StopAsyncIteration
        if self._state == 0:
            self._state = 1
            await self._trace.__aenter__()
        try:
            chunk = await self._connection._next_body_chunk(self._stream_id, self._timeout)
        except BaseException as exc:
            self._state = 2
            await self._trace.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        if chunk is None:
            self._state = 2
            await self._trace.__aexit__(None, None, None)
            raise StopAsyncIteration
        return chunk

    @uninterruptible
    async def aclose(self) -> None:
        if self._state == 3:
            return
        self._state = 3
        if self._trace is NO_TRACE:  # no callback on this request
            await self._connection._end_stream(self._stream_id)  # shields its awaits
            return
        # A cancelled trace callback must not leave the stream open.
        with AsyncShieldCancellation():
            async with Trace.start("http2.response_closed", self._request):
                await self._connection._end_stream(self._stream_id)


def request_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """HTTP/2 request headers: pseudo-headers first, lower-case names, no
    connection-specific fields (``te`` only as ``trailers``)."""
    url = request.url
    authority = None
    fields = []
    for name, value in request.headers:
        lname = name.lower()
        if lname == b"host":
            authority = value
        elif lname in HOP_BY_HOP or (lname == b"te" and value.lower() != b"trailers"):
            continue
        else:
            fields.append((lname, value))
    if authority is None:
        authority = url.host if url.port is None else b"%b:%d" % (url.host, url.port)
    return [
        (b":method", request.method),
        (b":authority", authority),
        (b":scheme", url.scheme),
        (b":path", url.target),
        *fields,
    ]


def may_send(connection: h2.connection.H2Connection, stream_id: int) -> bool:
    """Whether our side of ``stream_id`` is still open (it may take DATA)."""
    stream = connection.streams.get(stream_id)
    return stream is not None and stream.state_machine.state in _SENDING


_SENDING = frozenset((h2.stream.StreamState.OPEN, h2.stream.StreamState.HALF_CLOSED_REMOTE))
