"""HTTP/1.1 on one network stream: one request at a time, parsed by h11.

Theory of operation: the connection is in one of four states
(``HTTPConnectionState``) and moves between them only through ``TRANSITIONS``,
a table of ``(state, event) -> next state``; a pair missing from the table is
a move that must not happen. A request takes a NEW or IDLE connection to
ACTIVE. Closing its response takes it to IDLE only when the whole exchange is
over on both sides (h11 says DONE for us, the body was read to its end) and
neither side asked to close; anything else (a partly read body, an error,
``Connection: close``, a request body the server did not wait for) takes it
to CLOSED, because the bytes left on the wire make it unusable.

No byte beyond a response ever reaches the next request (response splitting,
RFC 9112 section 11.1): a response after which h11 or the bypass holds unread
bytes is not reused, and bytes that reach the stream or the socket later are
seen by a readability probe before the next request on the connection is
sent: the pool's ``is_alive``, which it runs on every connection it reuses,
or else ``handle_async_request`` itself (a connection used without a pool).
A head with both Transfer-Encoding and Content-Length is refused.

Writes are few: the request head and a bytes body under ``COALESCE_LIMIT`` go
out in one write; a larger body is written as it is, never copied. Between the
chunks of a streamed body the connection looks whether the server has
answered already (a 413, say): if so it stops uploading and reads that answer.

The heads of one response (1xx included) may total ``max_incomplete_event_size``
bytes, exactly: h11 alone lets one more read through, and endless 1xx heads.

Reads are 64 KiB, or for a body the stream's ``read_size`` where it has one
(asyncio: 256 KiB, its transport's chunks, handed over uncopied). A body with
a Content-Length bypasses h11: after the head, the bytes h11 buffered are
handed out once and the rest goes from the socket to the caller as read; h11
is then replaced by a fresh parser for the next request. Chunked and
close-delimited bodies go through h11.

``response_started`` tells whether any byte of the current response arrived:
a request on a reused connection that failed before that may be retried
elsewhere. This module knows nothing of pools, retries or backends beyond the
stream interface; the clock it reads for keep-alive expiry is injected.
"""

from __future__ import annotations

import time
import typing
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable

import h11

from .._backends.base import AsyncNetworkStream
from .._deadline import deadline_of, start_deadline
from .._exceptions import (
    H11_RECEIVE_ERRORS,
    H11_SEND_ERRORS,
    ConnectionNotAvailable,
    ReadTimeout,
    RemoteProtocolError,
    WriteError,
    translate,
)
from .._http11_events import request_event, response_head
from .._http11_state import TRANSITIONS as TRANSITIONS
from .._http11_state import ConnectionEvent as ConnectionEvent
from .._http11_state import HTTPConnectionState as HTTPConnectionState
from .._http11_state import next_state as next_state
from .._logging import check as check_logging
from .._models import ByteStream, Origin, Request, Response
from .._synchronization import AsyncShieldCancellation, uninterruptible
from .._trace import Trace
from .deadline_stream import AsyncDeadlineStream
from .interfaces import AsyncConnectionInterface
from .response_stream import NOT_STARTED, AsyncResponseStream
from .upgrade import AsyncHTTP11UpgradeStream

READ_SIZE = 64 * 1024
MAX_INCOMPLETE_EVENT_SIZE = 64 * 1024
# Pieces smaller than this are joined into one write; larger ones are written
# as they are, because joining would copy the body.
COALESCE_LIMIT = 64 * 1024
# How long the check for an early answer between two chunks of a streamed upload
# waits once the socket is readable: readable is not always a response byte (a TLS
# 1.3 server's session tickets make it readable with no application data in them).
EARLY_ANSWER_WAIT = 0.01

_NO_RESPONSE = "Server disconnected without sending a response."
_HTTP_VERSIONS = {b"1.1": b"HTTP/1.1", b"1.0": b"HTTP/1.0"}
_END = h11.EndOfMessage()  # events are immutable: one serves every request


_S = HTTPConnectionState
_E = ConnectionEvent


class AsyncHTTP11Connection(AsyncConnectionInterface):
    """An HTTP/1.1 connection over an established network stream.

    Args:
        origin: the origin every request on this connection must be for.
        stream: the connected (and, for https, TLS-wrapped) stream; owned from now on.
        keepalive_expiry: seconds an IDLE connection stays reusable.
        max_incomplete_event_size: the largest response head accepted, in bytes.
        clock: the monotonic clock for keep-alive expiry (the backend's ``now``).
    """

    def __init__(
        self,
        origin: Origin,
        stream: AsyncNetworkStream,
        keepalive_expiry: float | None = None,
        *,
        max_incomplete_event_size: int = MAX_INCOMPLETE_EVENT_SIZE,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._origin = origin
        check_logging()  # a connection made: notice a change of logging levels
        self._network_stream = stream
        # What the exchange reads and writes: the stream, or the stream bounded
        # by the request's total deadline (deadline_stream.py).
        self._io: AsyncNetworkStream = stream
        # Body reads: the stream's own chunk size if it has one (base.py).
        read_size = getattr(stream, "read_size", READ_SIZE)
        self._body_read_size = read_size if type(read_size) is int and read_size > 0 else READ_SIZE
        self._keepalive_expiry = keepalive_expiry
        self._max_incomplete_event_size = max_incomplete_event_size
        self._clock = time.monotonic if clock is None else clock
        self._expire_at: float | None = None
        self._state = HTTPConnectionState.NEW
        # Whether the liveness probe (``is_alive``) has passed this IDLE
        # connection since it was last used.
        self._probed = False
        self._request_count = 0
        self._h11 = self._new_parser()
        self._reset_exchange()

    def _reset_exchange(self) -> None:
        # Per request: did a response byte arrive; did the peer hang up; a
        # response event read while still uploading; the Content-Length body
        # read past h11 (bytes left, bytes h11 had buffered); is the body done;
        # may the connection be reused once it is.
        self._response_started = self._eof = self._body_complete = self._reusable = False
        self._head_bytes = 0  # received while the response head was awaited
        self._early_event: h11.Event | None = None
        self._direct_remaining: int | None = None
        self._direct_leftover = b""

    def _new_parser(self) -> h11.Connection:
        self._h11_empty = True  # no byte received yet
        return h11.Connection(
            our_role=h11.CLIENT, max_incomplete_event_size=self._max_incomplete_event_size
        )

    @property
    def state(self) -> HTTPConnectionState:
        return self._state

    @property
    def request_count(self) -> int:
        """Requests this connection has carried, the current one included."""
        return self._request_count

    @property
    def response_started(self) -> bool:
        """Whether any byte of the current (or last) response has arrived."""
        return self._response_started

    @uninterruptible
    async def aconnect(self, request: Request) -> None:
        """Nothing to do: the stream was connected before this object existed."""

    @uninterruptible
    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` and return the response with its body unread.

        Raises ``ConnectionNotAvailable`` if the connection is busy or closed,
        ``LocalProtocolError`` for a request h11 refuses (or a body that does
        not match its Content-Length), ``RemoteProtocolError`` for a bad or
        missing response, and the stream's timeouts and network errors. On
        any error the connection is closed.
        """
        origin = request.url.origin
        if origin is not self._origin and origin != self._origin:
            raise RuntimeError(
                f"Attempted to send request to {request.url.origin} on connection to {self._origin}"
            )
        state = TRANSITIONS.get((self._state, _E.REQUEST))
        if state is None:
            raise ConnectionNotAvailable()
        if self._state is _S.IDLE:
            # Reused. Unless the liveness probe has just passed it (the pool
            # probes every connection it reuses, right before the request),
            # bytes or an EOF that arrived since would be read as this response.
            probed, self._probed = self._probed, False
            if not probed and self._network_stream.get_extra_info("is_readable"):
                await self._close(_E.CLOSE)
                raise ConnectionNotAvailable()
        self._state = state
        self._request_count += 1
        self._expire_at = None
        self._reset_exchange()
        timeout = request.extensions.get("timeout")
        read_timeout = write_timeout = None
        self._io = self._network_stream
        if timeout:
            read_timeout, write_timeout = timeout.get("read"), timeout.get("write")
            if timeout.get("total") is not None:
                request = start_deadline(request, self._clock)
                deadline = deadline_of(request)
                assert deadline is not None
                self._io = AsyncDeadlineStream(self._network_stream, deadline)
        try:
            write_error = await self._send_request(request, write_timeout)
            async with Trace.start("http11.receive_response_headers", request) as trace:
                try:
                    event = await self._receive_response_head(read_timeout)
                except RemoteProtocolError:
                    if write_error is not None and not self._response_started:
                        # The server hung up mid-upload without a word: as in
                        # httpcore, that it never answered is what the caller
                        # learns (and a retry may follow), the write error is the cause.
                        raise RemoteProtocolError(_NO_RESPONSE) from write_error
                    raise
                http_version = _HTTP_VERSIONS.get(event.http_version)
                if http_version is None:
                    http_version = b"HTTP/" + event.http_version
                    if not event.http_version.startswith(b"1."):
                        # HTTP/1.x framing under another major version (HTTP/0.9
                        # had no status line at all; HTTP/2 and 3 have no text).
                        raise RemoteProtocolError(
                            f"Unsupported HTTP version in the response: {http_version.decode()}."
                        )
                headers, length = response_head(event)
                trace.return_value = (http_version, event.status_code, event.reason, headers)
            network_stream = self._network_stream
            if event.status_code == 101 or (
                request.method == b"CONNECT" and 200 <= event.status_code < 300
            ):
                leftover, _ = self._h11.trailing_data
                network_stream = AsyncHTTP11UpgradeStream(network_stream, leftover)
            else:
                self._prepare_body(request, event, length, upload_failed=write_error is not None)
            return Response.from_parser(
                event.status_code,
                headers,
                AsyncHTTP11ResponseStream(self, request, read_timeout),
                {
                    "http_version": http_version,
                    "reason_phrase": event.reason,
                    "network_stream": network_stream,
                },
            )
        except BaseException:
            # Traced as httpcore does, so that a trace ends the same way.
            with AsyncShieldCancellation():
                async with Trace.start("http11.response_closed", request, {}):
                    await self._close(_E.ERROR)
            raise

    async def _send_request(self, request: Request, timeout: float | None) -> WriteError | None:
        """Send head and body; return the write error, if any, for later.

        A server may hang up on purpose after answering early (a 413, say),
        and then its answer is what the caller needs, not our write error.
        """
        async with Trace.start("http11.send_request_headers", request):
            head = self._h11_send(request_event(request))
        try:
            async with Trace.start("http11.send_request_body", request):
                await self._send_body(request, head, timeout)
        except WriteError as exc:
            return exc
        return None

    # Sending.

    def _h11_send(self, event: h11.Event) -> list[bytes]:
        # The pieces as h11 made them: a Data event's body is not copied.
        try:
            return self._h11.send_with_data_passthrough(event) or []
        except h11.LocalProtocolError as exc:
            raise translate(exc, H11_SEND_ERRORS) from exc

    async def _send_body(self, request: Request, head: list[bytes], timeout: float | None) -> None:
        stream = request.stream
        if isinstance(stream, ByteStream):
            # Framed in full before the first write, so a body that does not
            # match its Content-Length fails without sending anything.
            body = stream.content
            pieces = head + self._h11_send(h11.Data(data=body)) if body else head
            await self._write_pieces(pieces + self._h11_send(_END), timeout)
            return
        if not isinstance(stream, AsyncIterable):
            raise TypeError(
                f"request content of type {type(stream).__name__} cannot be sent: use bytes, or an"
                " iterable of bytes of the pool's kind (async iterable for async pools)"
            )
        iterator = stream.__aiter__()
        try:
            await self._send_stream(iterator, head, timeout)
        finally:
            if isinstance(iterator, AsyncGenerator):
                # Left unfinished (early answer, error), it would otherwise be
                # finalised by the garbage collector, with a warning on trio.
                with AsyncShieldCancellation():
                    await iterator.aclose()

    async def _send_stream(
        self, iterator: AsyncIterator[bytes], head: list[bytes], timeout: float | None
    ) -> None:
        pending = head
        while True:
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                break
            if type(chunk) is not bytes and not isinstance(chunk, (bytearray, memoryview)):
                raise TypeError(f"request body chunks must be bytes, not {type(chunk).__name__}")
            if not chunk:
                continue
            if not pending and await self._answered_early():
                return
            pending.extend(self._h11_send(h11.Data(data=chunk)))
            await self._write_pieces(pending, timeout)
            pending = []
        await self._write_pieces(pending + self._h11_send(_END), timeout)

    async def _write_pieces(self, pieces: list[bytes], timeout: float | None) -> None:
        batch: list[bytes] = []
        for piece in pieces:
            if len(piece) >= COALESCE_LIMIT:
                if batch:
                    await self._io.write(b"".join(batch), timeout)
                    batch = []
                await self._io.write(piece, timeout)
            else:
                batch.append(piece)
        if batch:
            await self._io.write(batch[0] if len(batch) == 1 else b"".join(batch), timeout)

    async def _answered_early(self) -> bool:
        """Whether the server answered (or hung up) before the upload ended.

        Reads only what has arrived. A 100 Continue or a partial head lets the
        upload go on; a final response is kept for ``_receive_event``.
        """
        if not self._network_stream.get_extra_info("is_readable"):
            return False
        try:
            data = await self._io.read(READ_SIZE, EARLY_ANSWER_WAIT)
        except ReadTimeout:
            # Only TLS records without application data (now processed), or part
            # of a record: the upload goes on, and the next chunk looks again.
            return False
        if not data:
            self._eof = True
            return True
        self._receive_data(data)
        while True:
            event = self._h11_next_event()
            if event is h11.NEED_DATA:
                return False
            self._check_head_size()
            if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                continue
            self._early_event = typing.cast(h11.Event, event)
            return True

    # Receiving.

    def _h11_next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        try:
            return self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:  # h11's "Receive buffer too long"
                raise self._too_large() from exc
            raise translate(exc, H11_RECEIVE_ERRORS) from exc

    def _receive_data(self, data: bytes) -> None:
        self._h11_empty = False
        if data:
            self._response_started = True
            if self._h11.their_state is h11.SEND_RESPONSE:
                self._head_bytes += len(data)
        self._h11.receive_data(data)

    def _check_head_size(self) -> None:
        # What was received minus what is left is what the heads took.
        limit = self._max_incomplete_event_size
        if self._head_bytes > limit and self._head_bytes - len(self._h11.trailing_data[0]) > limit:
            raise self._too_large()

    def _too_large(self) -> RemoteProtocolError:
        limit = self._max_incomplete_event_size
        return RemoteProtocolError(f"Response head (or chunk header) larger than {limit} bytes.")

    async def _receive_event(self, timeout: float | None) -> h11.Event | type[h11.PAUSED]:
        early = self._early_event
        if early is not None:
            self._early_event = None
            return early
        # A parser that was given nothing yet can only say NEED_DATA: read first.
        ask = not self._h11_empty
        while True:
            if ask:
                event = self._h11_next_event()
                if event is not h11.NEED_DATA:
                    return event  # type: ignore[return-value]  # h11's types do not narrow
            ask = True
            data = b"" if self._eof else await self._io.read(READ_SIZE, timeout)
            if not data:
                self._eof = True
                if self._h11.their_state is h11.SEND_RESPONSE:
                    # h11 would call this a protocol violation; for the
                    # caller it is the server hanging up on the request.
                    if self._response_started:
                        raise RemoteProtocolError("Server disconnected inside the response head.")
                    raise RemoteProtocolError(_NO_RESPONSE)
            self._receive_data(data)

    async def _receive_response_head(
        self, timeout: float | None
    ) -> h11.Response | h11.InformationalResponse:
        while True:
            event = await self._receive_event(timeout)
            self._check_head_size()
            if isinstance(event, h11.Response) or getattr(event, "status_code", 0) == 101:
                return typing.cast(h11.Response | h11.InformationalResponse, event)
            if not isinstance(event, h11.InformationalResponse):  # pragma: no cover
                # Unreachable while h11 keeps its promises; 100 and 103 are skipped.
                raise RemoteProtocolError(f"Expected a response head, got {event!r}.")

    def _prepare_body(
        self,
        request: Request,
        event: h11.Response | h11.InformationalResponse,
        length: int | None,
        *,
        upload_failed: bool,
    ) -> None:
        """Pick how to read the body; note whether the connection is reusable."""
        # After the head, h11 has moved our side from DONE to MUST_CLOSE if
        # either side said "Connection: close" (or the server is HTTP/1.0);
        # SEND_BODY means the server answered before the upload ended.
        # h11 believes a bytes body sent once framed, even if its write failed.
        self._reusable = self._h11.our_state is h11.DONE and not upload_failed
        if (
            self._h11.their_state is not h11.SEND_BODY
            or request.method == b"HEAD"
            or event.status_code in (204, 304)
        ):
            return
        if length is None:  # chunked, or delimited by the connection closing
            return
        leftover, _ = self._h11.trailing_data
        if len(leftover) > length:
            # Bytes beyond this response that nobody asked for.
            self._reusable = False
            leftover = leftover[:length]
        self._direct_leftover = leftover
        self._direct_remaining = length - len(leftover)

    async def _next_body_chunk(self, timeout: float | None) -> bytes | None:
        """The next piece of the body, or ``None`` at its end."""
        remaining = self._direct_remaining
        if remaining is None:
            event = await self._receive_event(timeout)
            if isinstance(event, h11.Data):
                return bytes(event.data)
            # EndOfMessage, or PAUSED after a protocol switch: no more body.
            self._body_complete = isinstance(event, h11.EndOfMessage)
            return None
        if self._direct_leftover:
            leftover, self._direct_leftover = self._direct_leftover, b""
            return leftover
        if not remaining:
            self._body_complete = True
            return None
        data = await self._io.read(min(self._body_read_size, remaining), timeout)
        if not data:
            raise RemoteProtocolError(
                "Server disconnected before the end of the response body: "
                f"{remaining} bytes of it did not arrive."
            )
        self._direct_remaining = remaining - len(data)
        self._response_started = True
        return data

    async def _response_closed(self) -> None:
        if self._state is not HTTPConnectionState.ACTIVE:
            return  # closed under us, e.g. by the pool
        if self._body_complete and self._reusable and not self._unread_bytes():
            if self._direct_remaining is not None:
                self._h11 = self._new_parser()  # it never saw the body
            else:
                self._h11.start_next_cycle()
            self._state = next_state(self._state, _E.RESPONSE_DONE_KEEPALIVE)
            if self._keepalive_expiry is not None:
                self._expire_at = self._clock() + self._keepalive_expiry
        else:
            await self._close(_E.RESPONSE_DONE_CLOSE)

    def _unread_bytes(self) -> bool:
        """Whether bytes beyond the response are held here: nobody asked for
        them, and the next request would take them for its response.

        A Content-Length body that bypassed h11 was read to its exact end, and
        ``_prepare_body`` marked the connection unusable if h11 had buffered
        more; otherwise h11's buffer must be empty (a HEAD, 204 or 304
        response "with a body", bytes after the last chunk). What is still in
        the stream or the socket is the liveness probe's to see, before the
        next request (``is_alive``, or ``handle_async_request`` itself).
        """
        if self._direct_remaining is not None:
            return bool(self._direct_leftover)
        return bool(self._h11.trailing_data[0])

    async def _close(self, event: ConnectionEvent) -> None:
        self._state = next_state(self._state, event)
        with AsyncShieldCancellation():
            await self._network_stream.aclose()

    # The pool's questions.

    @uninterruptible
    async def aclose(self) -> None:
        """Close the connection at once, whatever it is doing. Idempotent."""
        await self._close(_E.CLOSE)

    def can_handle_request(self, origin: Origin) -> bool:
        return origin == self._origin

    def capacity(self) -> int:
        if self._state is HTTPConnectionState.ACTIVE:
            # Once the head is in, 0 if the exchange will end in a close.
            head_in = self._h11.their_state is not h11.SEND_RESPONSE
            return 0 if head_in and not self._reusable else 1
        return 0 if self._state is HTTPConnectionState.CLOSED else 1

    def is_available(self) -> bool:
        return self._state is HTTPConnectionState.IDLE

    def has_expired(self) -> bool:
        return self._expire_at is not None and self._clock() > self._expire_at

    def is_idle(self) -> bool:
        return self._state is HTTPConnectionState.IDLE

    def is_closed(self) -> bool:
        return self._state is HTTPConnectionState.CLOSED

    def is_alive(self) -> bool:
        if self._state is HTTPConnectionState.CLOSED:
            return False
        if self._state is HTTPConnectionState.IDLE:
            # Nothing is owed to us while IDLE: readable means EOF or junk.
            self._probed = not self._network_stream.get_extra_info("is_readable")
            return self._probed
        return True

    def info(self) -> str:
        state, count = self._state.name, self._request_count
        return f"{str(self._origin)!r}, HTTP/1.1, {state}, Request Count: {count}"

    def __repr__(self) -> str:
        # httpcore's: without the protocol, which the class name says.
        state, count = self._state.name, self._request_count
        return f"<{type(self).__name__} [{str(self._origin)!r}, {state}, Request Count: {count}]>"

    async def __aenter__(self) -> AsyncHTTP11Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncHTTP11ResponseStream(AsyncResponseStream):
    """The body of one response, chunk by chunk; closing it settles the
    connection's fate (``response_stream.py`` has the states and traces)."""

    __slots__ = ("_connection", "_timeout")

    def __init__(
        self, connection: AsyncHTTP11Connection, request: Request, timeout: float | None
    ) -> None:
        # The base's fields, set here (see AsyncResponseStream).
        self._request = request
        self._trace = Trace.start("http11.receive_response_body", request)
        self._state = NOT_STARTED
        self._connection = connection
        self._timeout = timeout

    def _next_chunk(self) -> typing.Any:
        return self._connection._next_body_chunk(self._timeout)

    async def _failed(self) -> None:
        await self._connection._close(_E.ERROR)

    def _closed(self) -> typing.Any:
        # Suspends only to close the socket, and that step is shielded.
        return self._connection._response_closed()

    def _closed_trace(self) -> Trace:
        return Trace.start("http11.response_closed", self._request, {})
