"""An HTTP/2 connection on h2: many concurrent requests, one per stream.

Theory of operation
-------------------
One ``h2`` state machine is shared by every stream on the connection. Three
locks keep it consistent, always taken in this order and never held while
waiting for another: the *read lock* (one task or thread reads the socket at
a time), the *write lock* (bytes taken from h2 go out whole and in order)
and the *state lock* (h2 and the stream table; a no-op on one event loop,
a thread lock in the generated sync twin, never held across I/O).

This module holds the connection and its send path: the preface and the
wait for the server's SETTINGS, opening a stream, request headers and body
(as the send window allows; a shut window is waited for by reading the
socket for WINDOW_UPDATE), ``_flush`` (the write lock), the end of a stream
and the pool's questions. The read side, shared by every stream (the
stream inboxes, the reader hand-off, dispatch of received events, GOAWAY),
is ``AsyncHTTP2Reader`` in ``http2_reader.py``, which this connection owns
and hands its state lock and ``_flush``. h2 itself is reached through
``_h2.py``.

Flow control: received data is acknowledged when the caller consumes it,
chunk by chunk, so the server's window bounds what is buffered per stream,
and large downloads never stall. Uploads send what the window allows and
read the socket for WINDOW_UPDATE when it is shut.

What the pool sees: ``capacity()`` is the server's
``SETTINGS_MAX_CONCURRENT_STREAMS`` (known when ``aconnect`` returns, since it
waits for the server's first SETTINGS), 0 once the connection is going away.
After a GOAWAY no stream is opened; streams above its last stream id fail
with ``ConnectionNotAvailable``, which the pool retries on another
connection, and streams at or below it finish (h2 4.x would reject their
frames, python-hyper/h2#1181: ``ClientH2`` in ``_h2.py`` undoes that). A
reset stream fails alone, with ``RemoteProtocolError`` (or
``ConnectionNotAvailable`` for REFUSED_STREAM, which the server sends for a
stream it did not process). Pushes are disabled in our SETTINGS; PINGs are
answered by h2 itself.
"""

from __future__ import annotations

import contextlib
import time
import types
from collections.abc import AsyncIterable, Callable

import h2.events
import h2.exceptions

from .._backends.base import AsyncNetworkStream
from .._deadline import deadline_of, start_deadline
from .._exceptions import (
    ConnectionNotAvailable,
    ConnectTimeout,
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    WriteError,
    WriteTimeout,
)
from .._h2 import CANCEL, ClientH2, may_send
from .._h2_headers import request_headers
from .._logging import check as check_logging
from .._models import ByteStream, Request, Response, get_timeout
from .._synchronization import (
    AsyncLock,
    AsyncPoolLock,
    AsyncShieldCancellation,
    uninterruptible,
)
from .._trace import Trace
from .._urls import Origin
from .http2_reader import AsyncHTTP2Reader, ConnectionState, StreamInbox
from .interfaces import AsyncConnectionInterface
from .response_stream import NOT_STARTED, AsyncResponseStream

# The phases a request's total deadline names (_deadline.py).
_CONNECTING = "connecting"
_WRITING = "sending the request"

# How long ``aconnect`` waits for the server's SETTINGS when the request sets
# no connect timeout. A server that accepted HTTP/2 and says nothing would
# otherwise hold this request, and every request parked behind the
# connection, forever; a live server sends SETTINGS right after the handshake.
SETTINGS_TIMEOUT = 10.0


class AsyncHTTP2Connection(AsyncConnectionInterface):
    """An HTTP/2 connection to ``origin`` over an established ``stream``.

    ``aconnect`` sends the connection preface and waits for the server's
    SETTINGS; the pool calls it before the first request.
    """

    def __init__(
        self,
        origin: Origin,
        stream: AsyncNetworkStream,
        keepalive_expiry: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._origin = origin
        self._network_stream = stream
        self._keepalive_expiry = keepalive_expiry
        self._clock = time.monotonic if clock is None else clock
        check_logging()  # a connection made: notice a change of logging levels
        self._h2 = ClientH2()
        self._state_lock = AsyncPoolLock()
        self._reader = AsyncHTTP2Reader(
            self._h2, stream, self._state_lock, self._clock, self._flush
        )
        # The reader's stream table (the same dict, never replaced).
        self._streams = self._reader.streams
        self._write_lock = AsyncLock()
        # Whether a cancelled write still sends all its bytes (see _flush).
        self._whole_writes = getattr(stream, "whole_writes", False) is True
        self._connected = False
        self._request_count = 0
        self._idle_since = self._reader.last_events
        self._socket_closed = False

    @property
    def request_count(self) -> int:
        return self._request_count

    # The pool's transparent keep-alive retry does not apply: a stream's
    # failure says nothing about whether the server saw it, except for the
    # cases this module reports as ConnectionNotAvailable.
    response_started = True

    # ----- connection setup ----------------------------------------------------------

    @uninterruptible
    async def aconnect(self, request: Request) -> None:
        """Send the preface and our SETTINGS, then wait for the server's SETTINGS.

        Raises ``RemoteProtocolError`` when the server sends no SETTINGS within
        ``timeout["connect"]`` (``SETTINGS_TIMEOUT`` when that is None),
        closes, breaks the protocol, or sends another frame first.
        """
        if self._connected:
            return
        self._connected = True
        timeout = get_timeout(request.extensions, "connect")
        deadline, by_deadline = deadline_of(request), False
        if deadline is not None:
            timeout, by_deadline = deadline.limit(timeout, ConnectTimeout, _CONNECTING)
        settings_timeout = SETTINGS_TIMEOUT if timeout is None else timeout
        async with Trace.start("http2.send_connection_init", request):
            with self._state_lock:
                self._h2.start()
            await self._flush(timeout)
        settings = self._reader.connection_inbox = StreamInbox()
        try:
            while not settings.events:
                try:
                    await self._reader.read_once(settings_timeout)
                except ReadTimeout:
                    if deadline is not None and by_deadline:
                        raise deadline.error(ConnectTimeout, _CONNECTING) from None
                    raise RemoteProtocolError(
                        f"The server sent no HTTP/2 SETTINGS within {settings_timeout} seconds."
                    ) from None
                if self._reader.error is not None:
                    raise self._reader.error
        finally:
            self._reader.connection_inbox = None
        first = settings.events[0]
        if isinstance(first, BaseException):
            with self._state_lock:
                self._reader.fail(first)
            raise first

    # ----- requests ---------------------------------------------------------------------

    @uninterruptible
    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` on a new stream and return the response head.

        Raises ``ConnectionNotAvailable`` when the connection takes no new
        stream (going away, closed, at the server's stream limit) or the
        server refused or never processed it: the pool sends it elsewhere.
        Otherwise the errors of reading and writing, for this stream only
        unless the connection itself failed.
        """
        origin = request.url.origin
        if origin is not self._origin and origin != self._origin:
            raise RuntimeError(
                f"Attempted to send request to {origin} on connection to {self._origin}"
            )
        timeout = request.extensions.get("timeout")
        if timeout and "total" in timeout:  # used without a pool: the deadline starts here
            request = start_deadline(request, self._clock)
        if not self._connected:
            await self.aconnect(request)
        # Reusing an idle connection: notice a GOAWAY or EOF already sent. Never
        # wait for the read lock here: its holder may be waiting for a response
        # to a request that this one's turn would hold back.
        if (
            not self._streams
            and self._reader.connection_inbox is None  # not still in aconnect
            and self._reader.state is ConnectionState.ACTIVE
            and self._network_stream.get_extra_info("is_readable")
            and self._reader.read_lock.try_acquire()
        ):
            try:
                if self._network_stream.get_extra_info("is_readable"):
                    await self._reader.read_once(get_timeout(request.extensions, "read"))
            finally:
                self._reader.release()
        stream_id = self._open_stream(request)
        stream = self._streams[stream_id]
        try:
            await self._send_request(request, stream_id)
            async with Trace.start("http2.receive_response_headers", request) as trace:
                status, headers = await self._receive_response(request, stream_id)
                trace.return_value = (status, headers)
        except BaseException as exc:
            with AsyncShieldCancellation():
                await self._end_stream(stream_id)
            replayable = isinstance(request.stream, ByteStream) or not stream.body_started
            if isinstance(exc, ConnectionNotAvailable) and not replayable:
                raise RemoteProtocolError(
                    "The server went away before processing the request,"
                    " and its streamed body cannot be sent again."
                ) from exc
            raise
        return Response(
            status=status,
            headers=headers,
            content=AsyncHTTP2ResponseStream(self, request, stream_id),
            extensions={
                "http_version": b"HTTP/2",
                "stream_id": stream_id,
                "network_stream": self._network_stream,
                "trailers": stream.trailers,
            },
        )

    def _open_stream(self, request: Request) -> int:
        """Allocate a stream and queue its HEADERS (sent by the next flush)."""
        headers = request_headers(request)
        body = request.stream
        end_stream = isinstance(body, ByteStream) and not body.content
        with self._state_lock:
            if self._reader.state is not ConnectionState.ACTIVE:
                raise ConnectionNotAvailable()
            if len(self._streams) >= self._h2.remote_settings.max_concurrent_streams:
                raise ConnectionNotAvailable()  # the server lowered its limit
            stream_id = self._h2.get_next_available_stream_id()
            try:
                self._h2.send_headers(stream_id, headers, end_stream=end_stream)
            except h2.exceptions.ProtocolError as exc:
                raise LocalProtocolError(str(exc)) from exc
            self._streams[stream_id] = StreamInbox()
            self._request_count += 1
        return stream_id

    async def _send_request(self, request: Request, stream_id: int) -> None:
        write_timeout = get_timeout(request.extensions, "write")
        deadline = deadline_of(request)
        if deadline is not None:
            write_timeout = deadline.limit(write_timeout, WriteTimeout, _WRITING)[0]
        async with Trace.start("http2.send_request_headers", request):
            await self._flush(write_timeout, stream_id)
        if may_send(self._h2, stream_id):
            async with Trace.start("http2.send_request_body", request):
                await self._send_body(request, stream_id, write_timeout)

    async def _send_body(self, request: Request, stream_id: int, timeout: float | None) -> None:
        body: AsyncIterable[bytes] = request.stream  # type: ignore[assignment]
        stream = self._streams[stream_id]
        async for chunk in body:
            stream.body_started = True
            view = memoryview(chunk)
            while view:
                window = await self._send_window(stream_id, timeout)
                if window == 0:
                    return  # the server has already answered, or reset the stream
                with self._state_lock:
                    # Another thread may have used the connection's window since.
                    window = min(window, self._h2.local_flow_control_window(stream_id))
                    end = min(window, len(view))
                    frame_size = self._h2.max_outbound_frame_size
                    for start in range(0, end, frame_size):
                        self._h2.send_data(stream_id, view[start : min(start + frame_size, end)])
                    # The server's WINDOW_UPDATEs for this are not a flood.
                    self._h2.idle_frames = 0
                view = view[end:]
                await self._flush(timeout, stream_id)
        with self._state_lock:
            if stream_id in self._streams and self._h2.streams[stream_id].open:
                self._h2.end_stream(stream_id)
        await self._flush(timeout, stream_id)

    async def _send_window(self, stream_id: int, timeout: float | None) -> int:
        """Bytes we may send on ``stream_id`` now; reads the socket for
        WINDOW_UPDATE while it is 0. Returns 0 when the stream stopped taking
        data (the server reset it or ended its side)."""
        while True:
            window = self._sendable(stream_id)
            if window != 0:
                return max(window, 0)
            message = f"The server's flow-control window stayed shut for {timeout} seconds."
            if not await self._reader.read_lock.acquire(timeout):
                raise WriteTimeout(message)
            try:
                if self._sendable(stream_id) == 0:
                    await self._reader.read_once(timeout)
            except ReadTimeout:
                raise WriteTimeout(message) from None
            finally:
                self._reader.release()

    def _sendable(self, stream_id: int) -> int:
        """The send window, or -1 when the stream takes no more data."""
        self._reader.raise_if_failed(stream_id)
        with self._state_lock:
            if not may_send(self._h2, stream_id):
                return -1
            return self._h2.local_flow_control_window(stream_id)

    async def _receive_response(
        self, request: Request, stream_id: int
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        timeout = get_timeout(request.extensions, "read")
        # 1xx heads are not queued (see _dispatch); h2 allows nothing else first.
        event = await self._reader.next_event(stream_id, timeout, deadline_of(request))
        if not isinstance(event, h2.events.ResponseReceived):
            raise RemoteProtocolError(f"HTTP/2 stream {stream_id} ended without a response")
        status = 0
        headers = []
        for name, value in event.headers:
            if name == b":status":
                status = int(value)
            elif not name.startswith(b":"):
                headers.append((name, value))
        return status, headers

    async def next_body_chunk(self, body: AsyncHTTP2ResponseStream) -> bytes | None:
        """The next piece of ``body``, or ``None`` at its end (for ``AsyncResponseStream``).
        Each piece is acknowledged as it is handed over, so the server may
        send more."""
        stream_id, timeout, deadline = body._stream_id, body._timeout, body._deadline
        stream = self._streams[stream_id]
        while True:
            try:
                event = await self._reader.next_event(stream_id, timeout, deadline)
            except ConnectionNotAvailable:
                # A GOAWAY below this stream after its head arrived: too late
                # to send it elsewhere (the caller has the response).
                raise RemoteProtocolError(
                    "The server went away (GOAWAY) before the end of the response."
                ) from None
            if isinstance(event, h2.events.DataReceived):
                with self._state_lock:
                    self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    pending = self._h2.has_output()
                if pending:
                    await self._flush(timeout)
                data = event.data
                # Merged pieces (StreamInbox.add_data) are a bytearray.
                return data if type(data) is bytes else bytes(data)
            elif isinstance(event, h2.events.TrailersReceived):
                stream.trailers.extend(event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                return None

    async def body_closed(self, body: AsyncHTTP2ResponseStream) -> None:
        """The caller is done with ``body`` (for ``AsyncResponseStream``)."""
        await self._end_stream(body._stream_id)  # shields its awaits

    async def _end_stream(self, stream_id: int) -> None:
        """The caller is done with ``stream_id``: reset it if still open, forget it."""
        with self._state_lock:
            ours = self._streams.pop(stream_id, None)
            if not self._streams:
                self._idle_since = self._clock()
            if self._reader.state is ConnectionState.CLOSED:
                return
            stream = self._h2.streams.get(stream_id)
            if stream is not None and not stream.closed:
                self._h2.reset_stream(stream_id, CANCEL)
            if ours is not None:
                # Data that arrived but was never read still holds part of the
                # connection's window: hand it back, or early closes would
                # shut the window for every stream.
                unread = sum(
                    event.flow_controlled_length or 0
                    for event in ours.events
                    if isinstance(event, h2.events.DataReceived)
                )
                if unread:
                    self._h2.acknowledge_received_data(unread, stream_id)
            pending = bool(self._h2.has_output())
            done = self._reader.state is ConnectionState.GOING_AWAY and not self._streams
        if not (pending or done):
            return
        # Shielded: the stream is already forgotten, so a cancellation here
        # would leave its reset unsent (or a cut frame) and the connection open.
        with AsyncShieldCancellation():
            if pending:
                # A failure is recorded for the other streams; this one is over anyway.
                with contextlib.suppress(Exception):
                    await self._flush(None)
            if done:
                await self.aclose()

    # ----- the socket --------------------------------------------------------------------

    async def _flush(self, timeout: float | None, stream_id: int = 0) -> None:
        """Send whatever h2 has queued, whole and in order. If the write fails
        because the connection had already failed (and been closed), stream
        ``stream_id`` gets that first failure rather than the closed socket's."""
        async with self._write_lock:
            with self._state_lock:
                data = self._h2.take_output()
            if not data:
                return
            try:
                if timeout is None:
                    # Unbounded, so it must stay cancellable (a peer that
                    # never reads would otherwise hold the canceller forever).
                    await self._network_stream.write(data, None)
                else:
                    # A cancellation waits for these frames to go out, at most
                    # ``timeout``: cut off mid-frame, the connection would be
                    # lost to every stream on it.
                    with AsyncShieldCancellation():
                        await self._network_stream.write(data, timeout)
            except BaseException as exc:
                with self._state_lock:
                    if isinstance(exc, Exception):
                        if self._reader.error is not None:
                            self._reader.raise_if_failed(stream_id)
                        self._reader.fail(exc)
                    elif not self._whole_writes:
                        # Part of a frame may have gone out (h2 counts it
                        # all as sent): nothing more can follow it.
                        self._reader.fail(WriteError("A write on this connection was interrupted."))
                raise

    # ----- the pool's questions -------------------------------------------------------------

    @uninterruptible
    async def aclose(self) -> None:
        """Close the connection; streams still open fail. Never raises."""
        if self._socket_closed:
            return
        self._socket_closed = True
        with self._state_lock:
            was_open = self._reader.error is None
            self._reader.fail(ReadError("The HTTP/2 connection was closed."))
            if was_open and self._connected:
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self._h2.close_connection()
            data = self._h2.take_output() if was_open or self._reader.goaway_owed else b""
        with AsyncShieldCancellation():
            if data:
                with contextlib.suppress(Exception):  # closing anyway
                    await self._network_stream.write(data, 0.5)
            await self._network_stream.aclose()

    def can_handle_request(self, origin: Origin) -> bool:
        return origin == self._origin

    def capacity(self) -> int:
        if self._reader.state is not ConnectionState.ACTIVE:
            return 0
        return int(self._h2.remote_settings.max_concurrent_streams)

    def is_available(self) -> bool:
        return self._reader.state is ConnectionState.ACTIVE and len(self._streams) < self.capacity()

    def has_expired(self) -> bool:
        if self._reader.state is ConnectionState.CLOSED:
            return True
        if self._keepalive_expiry is None or self._streams:
            return False
        if self._reader.connection_inbox is not None:  # still in aconnect
            return False
        return self._clock() - self._idle_since > self._keepalive_expiry

    def is_idle(self) -> bool:
        return (
            self._reader.state is not ConnectionState.CLOSED
            and not self._streams
            and self._reader.connection_inbox is None
        )

    def is_closed(self) -> bool:
        return self._reader.state is ConnectionState.CLOSED

    def is_alive(self) -> bool:
        # Readable while idle may be a PING as well as a GOAWAY or EOF, so the
        # request path reads it (``handle_async_request``) instead of guessing.
        return self._reader.state is ConnectionState.ACTIVE

    def info(self) -> str:
        # httpcore's wording: IDLE when no stream is open (a GOAWAY shows as GOING_AWAY).
        state = self._reader.state.name
        if self._reader.state is ConnectionState.ACTIVE and not self._streams:
            state = "IDLE"
        return f"{str(self._origin)!r}, HTTP/2, {state}, Request Count: {self._request_count}"

    def __repr__(self) -> str:
        # httpcore's: without the protocol, which the class name says.
        return f"<{type(self).__name__} [{self.info().replace(' HTTP/2,', '', 1)}]>"

    async def __aenter__(self) -> AsyncHTTP2Connection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        await self.aclose()


class AsyncHTTP2ResponseStream(AsyncResponseStream):
    """A response body on one stream; closing it before its end resets the
    stream (``response_stream.py`` has the states and traces)."""

    __slots__ = ("_deadline", "_stream_id", "_timeout")

    def __init__(self, connection: AsyncHTTP2Connection, request: Request, stream_id: int) -> None:
        # The base's fields, set here (see AsyncResponseStream).
        self._request = request
        self._trace = Trace.start("http2.receive_response_body", request)
        self._state = NOT_STARTED
        self._connection = connection
        self._stream_id = stream_id
        self._timeout = get_timeout(request.extensions, "read")
        self._deadline = deadline_of(request)

    def _closed_trace(self) -> Trace:
        return Trace.start("http2.response_closed", self._request, {"stream_id": self._stream_id})
