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

What one request and its response have seen is one ``_Exchange``, reset in
full at the start of each request, so nothing of an exchange leaks into the
next; h11 is driven only through ``_h11.ClientParser``, which knows h11's states.
``response_started`` tells whether any byte of the current response arrived:
a request on a reused connection that failed before that may be retried
elsewhere. This module knows nothing of pools, retries or backends beyond the
stream interface; the clock it reads for keep-alive expiry is injected.
"""

from __future__ import annotations

import time
import typing
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable

from .. import _h11
from .._backends.base import AsyncNetworkStream
from .._deadline import deadline_of, start_deadline
from .._exceptions import ConnectionNotAvailable, ReadTimeout, RemoteProtocolError, WriteError
from .._h11 import ClientParser, http_version, response_head
from .._http11_state import TRANSITIONS as TRANSITIONS
from .._http11_state import ConnectionEvent as ConnectionEvent
from .._http11_state import HTTPConnectionState as HTTPConnectionState
from .._http11_state import next_state as next_state
from .._logging import check as check_logging
from .._models import ByteStream, Headers, Request, Response
from .._synchronization import AsyncShieldCancellation, uninterruptible
from .._trace import NO_TRACE, Trace
from .._urls import Origin
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


_S = HTTPConnectionState
_E = ConnectionEvent


class _Exchange:
    """What one request and its response have seen so far. One per
    connection, ``reset`` at the start of every request: every field is set
    there and only there, so nothing of one exchange carries over into the
    next. (Reset in place rather than made anew: a new object with its
    ``__init__`` cost some 2,500 instructions more per request.)"""

    __slots__ = ("complete", "early_event", "eof", "leftover", "remaining", "reusable", "started")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = False  # a byte of the response arrived
        self.eof = False  # the server hung up
        self.early_event: _h11.Event | None = None  # a response read while still uploading
        # A Content-Length body read past h11: bytes still to come, and the
        # bytes h11 had buffered beyond the head (handed out first).
        self.remaining: int | None = None
        self.leftover = b""
        self.complete = False  # the body was read to its end
        self.reusable = False  # the connection may be reused once the body is


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
        self._clock = time.monotonic if clock is None else clock
        self._expire_at: float | None = None
        self._state = HTTPConnectionState.NEW
        # Whether the liveness probe (``is_alive``) has passed this IDLE
        # connection since it was last used.
        self._probed = False
        self._request_count = 0
        self._parser = ClientParser(max_incomplete_event_size)
        self._exchange = _Exchange()

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
        return self._exchange.started

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
        exchange = self._exchange
        exchange.reset()
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
            trace = Trace.start("http11.receive_response_headers", request)
            if trace is NO_TRACE:  # spares awaiting its no-op hooks on every request
                head = await self._response_head(read_timeout, write_error)
            else:
                async with trace:
                    head = await self._response_head(read_timeout, write_error)
                    trace.return_value = head[:4]
            version, status, reason, headers, length = head
            network_stream = self._network_stream
            if status == 101 or (request.method == b"CONNECT" and 200 <= status < 300):
                leftover = self._parser.leftover()
                network_stream = AsyncHTTP11UpgradeStream(network_stream, leftover)
            else:
                # How to read the body, and whether the connection may be reused.
                bodiless = request.method == b"HEAD" or status in (204, 304)
                exchange.reusable, exchange.leftover, exchange.remaining = self._parser.after_head(
                    length, bodiless, upload_failed=write_error is not None
                )
            return Response.from_parser(
                status,
                headers,
                AsyncHTTP11ResponseStream(self, request, read_timeout),
                {
                    "http_version": version,
                    "reason_phrase": reason,
                    "network_stream": network_stream,
                },
            )
        except BaseException:
            # Traced as httpcore does, so that a trace ends the same way.
            with AsyncShieldCancellation():
                async with Trace.start("http11.response_closed", request, {}):
                    await self._close(_E.ERROR)
            raise

    async def _response_head(
        self, timeout: float | None, write_error: WriteError | None
    ) -> tuple[bytes, int, bytes, Headers, int | None]:
        """The final response head: version, status, reason, headers, Content-Length."""
        try:
            event = await self._receive_response_head(timeout)
        except RemoteProtocolError:
            if write_error is not None and not self._exchange.started:
                # The server hung up mid-upload without a word: as in
                # httpcore, that it never answered is what the caller
                # learns (and a retry may follow), the write error is the cause.
                raise RemoteProtocolError(_NO_RESPONSE) from write_error
            raise
        if isinstance(event, tuple):  # parsed past h11: HTTP/1.1 with a Content-Length
            return (b"HTTP/1.1", *event)
        version = _h11.HTTP_VERSIONS.get(event.http_version) or http_version(event)
        headers, length = response_head(event)
        return version, event.status_code, event.reason, headers, length

    async def _send_request(self, request: Request, timeout: float | None) -> WriteError | None:
        """Send head and body; return the write error, if any, for later.

        A server may hang up on purpose after answering early (a 413, say),
        and then its answer is what the caller needs, not our write error.
        The steps are traced only if a trace will see them (``NO_TRACE``:
        their no-op hooks are not awaited).
        """
        trace = Trace.start("http11.send_request_headers", request)
        if trace is NO_TRACE:
            head = self._parser.send_request(request)
        else:
            async with trace:
                head = self._parser.send_request(request)
        trace = Trace.start("http11.send_request_body", request)
        try:
            if trace is NO_TRACE:
                await self._send_body(request, head, timeout)
            else:
                async with trace:
                    await self._send_body(request, head, timeout)
        except WriteError as exc:
            return exc
        return None

    # Sending.

    async def _send_body(self, request: Request, head: list[bytes], timeout: float | None) -> None:
        stream = request.stream
        if isinstance(stream, ByteStream):
            # Framed in full before the first write, so a body that does not
            # match its Content-Length fails without sending anything.
            body = stream.content
            if not body and self._parser.fast_pending():
                await self._io.write(head[0], timeout)  # the whole request, as h11 would
                return
            pieces = head + self._parser.send_data(body) if body else head
            await self._write_pieces(pieces + self._parser.send_end(), timeout)
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
            pending.extend(self._parser.send_data(chunk))
            await self._write_pieces(pending, timeout)
            pending = []
        await self._write_pieces(pending + self._parser.send_end(), timeout)

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
        exchange = self._exchange
        if not data:
            exchange.eof = True
            return True
        exchange.started = True
        parser = self._parser
        parser.receive(data)
        while True:
            event = parser.next_event()
            if event is _h11.NEED_DATA:
                return False
            parser.check_head_size()
            if isinstance(event, _h11.InformationalResponse) and event.status_code != 101:
                continue
            exchange.early_event = typing.cast(_h11.Event, event)
            return True

    # Receiving.

    async def _receive_event(self, timeout: float | None) -> _h11.Event | type[_h11.PAUSED]:
        exchange, parser = self._exchange, self._parser
        early = exchange.early_event
        if early is not None:
            exchange.early_event = None
            return early
        # A parser with nothing buffered can only say NEED_DATA: read first.
        ask = not parser.pristine
        while True:
            if ask:
                event = parser.next_event()
                if event is not _h11.NEED_DATA:
                    return event  # type: ignore[return-value]  # h11's types do not narrow
            ask = True
            data = b"" if exchange.eof else await self._io.read(READ_SIZE, timeout)
            if data:
                exchange.started = True
            else:
                exchange.eof = True
                if parser.awaiting_head():
                    # h11 would call this a protocol violation; for the
                    # caller it is the server hanging up on the request.
                    if exchange.started:
                        raise RemoteProtocolError("Server disconnected inside the response head.")
                    raise RemoteProtocolError(_NO_RESPONSE)
            parser.receive(data)

    async def _receive_response_head(
        self, timeout: float | None
    ) -> _h11.Response | _h11.InformationalResponse | _h11.FastHead:
        parser = self._parser
        if parser.fast_pending():
            # The request went past h11: its response may too, if the first
            # read holds a head of the common shape; if not, h11 takes over.
            data = await self._io.read(READ_SIZE, timeout)
            if not data:
                self._exchange.eof = True
                raise RemoteProtocolError(_NO_RESPONSE)
            self._exchange.started = True
            head = parser.fast_head(data)
            if head is not None:
                return head
            parser.receive(data)
        while True:
            event = await self._receive_event(timeout)
            parser.check_head_size()
            if isinstance(event, _h11.Response) or getattr(event, "status_code", 0) == 101:
                return typing.cast(_h11.Response | _h11.InformationalResponse, event)
            if not isinstance(event, _h11.InformationalResponse):  # pragma: no cover
                # Unreachable while h11 keeps its promises; 100 and 103 are skipped.
                raise RemoteProtocolError(f"Expected a response head, got {event!r}.")

    async def next_body_chunk(self, body: AsyncHTTP11ResponseStream) -> bytes | None:
        """The next piece of ``body``, or ``None`` at its end (for ``AsyncResponseStream``)."""
        exchange = self._exchange
        remaining = exchange.remaining
        if remaining is None:
            event = await self._receive_event(body._timeout)
            if isinstance(event, _h11.Data):
                return bytes(event.data)
            # EndOfMessage, or PAUSED after a protocol switch: no more body.
            exchange.complete = isinstance(event, _h11.EndOfMessage)
            return None
        if exchange.leftover:
            leftover, exchange.leftover = exchange.leftover, b""
            return leftover
        if not remaining:
            exchange.complete = True
            return None
        data = await self._io.read(min(self._body_read_size, remaining), body._timeout)
        if not data:
            raise RemoteProtocolError(
                "Server disconnected before the end of the response body: "
                f"{remaining} bytes of it did not arrive."
            )
        exchange.remaining = remaining - len(data)
        exchange.started = True
        return data

    async def body_closed(self, body: AsyncHTTP11ResponseStream) -> None:
        """The caller is done with ``body`` (for ``AsyncResponseStream``). Suspends
        only to close the socket, and that step is shielded."""
        if self._state is not HTTPConnectionState.ACTIVE:
            return  # closed under us, e.g. by the pool
        exchange = self._exchange
        if exchange.complete and exchange.reusable and not self._unread_bytes():
            if exchange.remaining is not None:
                self._parser.renew()  # it never saw the body
            else:
                self._parser.next_cycle()
            self._state = next_state(self._state, _E.RESPONSE_DONE_KEEPALIVE)
            if self._keepalive_expiry is not None:
                self._expire_at = self._clock() + self._keepalive_expiry
        else:
            await self._close(_E.RESPONSE_DONE_CLOSE)

    def _unread_bytes(self) -> bool:
        """Whether bytes beyond the response are held here: nobody asked for
        them, and the next request would take them for its response.

        A Content-Length body that bypassed h11 was read to its exact end, and
        ``ClientParser.after_head`` marked the connection unusable if h11 had buffered
        more; otherwise h11's buffer must be empty (a HEAD, 204 or 304
        response "with a body", bytes after the last chunk). What is still in
        the stream or the socket is the liveness probe's to see, before the
        next request (``is_alive``, or ``handle_async_request`` itself).
        """
        if self._exchange.remaining is not None:
            return bool(self._exchange.leftover)
        return bool(self._parser.leftover())

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
            head_in = not self._parser.awaiting_head()
            return 0 if head_in and not self._exchange.reusable else 1
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

    __slots__ = ("_timeout",)
    _connection: AsyncHTTP11Connection

    def __init__(
        self, connection: AsyncHTTP11Connection, request: Request, timeout: float | None
    ) -> None:
        # The base's fields, set here (see AsyncResponseStream).
        self._request = request
        self._trace = Trace.start("http11.receive_response_body", request)
        self._state = NOT_STARTED
        self._connection = connection
        self._timeout = timeout

    async def _failed(self) -> None:
        await self._connection._close(_E.ERROR)

    def _closed_trace(self) -> Trace:
        return Trace.start("http11.response_closed", self._request, {})
