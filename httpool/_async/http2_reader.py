"""The read side of an HTTP/2 connection, shared by all its streams.

Theory of operation
-------------------
Nobody owns the socket's read side. A stream that needs its next event
(response head, body chunk, end) or more send window takes the *read lock*,
does one read (``read_once``), dispatches every event to the inbox of the
stream it belongs to, flushes what h2 wants to say (settings and ping
acknowledgements, window updates) and lets go (``release``). So a stream
waits for the socket only while it has nothing queued, whichever stream's
data the read brings.

The hand-off: a stream that finds the read lock taken does not queue on it
(a stream whose events have arrived must not wait behind streams still
waiting for theirs). It registers in ``_waiting`` and sleeps on its own
event, woken by events for it or by the reader leaving, which wakes the
oldest waiting stream: that one reads next if nothing has arrived for it.
A stream that gives up (timeout, cancellation) while holding that turn
passes it on (``_stop_waiting``), or the streams still waiting would wait
for a reader that never comes.

Connection-level events (stream id 0) go to ``connection_inbox`` while the
connection waits for the server's SETTINGS (only the first is kept: it
must be SETTINGS), and a GOAWAY marks the streams above its last stream id
as never processed (``ConnectionNotAvailable``: the pool sends them
elsewhere). ``fail`` records the first error that made the connection
unusable; every stream learns it when it next asks (``raise_if_failed``).

``AsyncHTTP2Reader`` belongs to one ``AsyncHTTP2Connection``, which shares
with it the h2 state machine, the socket, the *state lock* (h2 and the
stream table; never held across I/O) and a ``flush`` callback (the send
path's, under its write lock). The connection reads ``streams``, ``state``,
``error`` and ``last_stream_id``; both sides change them under the state
lock only. This module knows nothing of requests, request bodies or the
pool, and does not import the connection.
"""

from __future__ import annotations

import collections
import enum
import typing
from collections.abc import Callable

import h2.events
import h2.exceptions

from .._backends.base import AsyncNetworkStream
from .._deadline import Deadline
from .._exceptions import ConnectionNotAvailable, ReadTimeout, RemoteProtocolError
from .._h2 import (
    HEADER_EVENTS,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    STREAM_EVENTS,
    ClientH2,
    describe,
    preface_answer,
    reset_error,
)
from .._h2_headers import malformed
from .._synchronization import AsyncEvent, AsyncLock, AsyncPoolLock

READ_SIZE = 65536

# The phase a request's total deadline names while its stream waits (_deadline.py).
_READING = "reading the response"


class ConnectionState(enum.Enum):
    ACTIVE = "active"  # takes new streams
    GOING_AWAY = "going away"  # GOAWAY received: running streams finish, no new ones
    CLOSED = "closed"


# Events queued on a stream past which small DATA pieces are merged, and how large.
_MERGE_AFTER = 64
_MERGED_SIZE = 65536


class StreamInbox:
    """What arrived for one stream and not yet consumed."""

    __slots__ = ("body_started", "events", "trailers", "wakeup")

    def __init__(self) -> None:
        self.body_started = False
        # Set while the stream waits for another stream's reader (see AsyncHTTP2Reader.next_event).
        self.wakeup: AsyncEvent | None = None
        self.events: collections.deque[h2.events.Event | BaseException] = collections.deque()
        self.trailers: list[tuple[bytes, bytes]] = []

    def add_data(self, event: h2.events.DataReceived) -> bool:
        """Queue a DATA event; False (not queued) when it holds no data. Once
        the reader is behind, small pieces are merged into the last one
        queued, so that a server sending one-byte frames cannot make us hold
        an event object per byte of window."""
        data = event.data
        if not data:
            return False
        events = self.events
        if len(events) >= _MERGE_AFTER:
            last = events[-1]
            if type(last) is h2.events.DataReceived and len(last.data) + len(data) <= _MERGED_SIZE:
                merged: typing.Any = last.data
                if type(merged) is not bytearray:
                    merged = bytearray(merged)
                merged += data
                last.data = merged
                last.flow_controlled_length += event.flow_controlled_length
                return True
        events.append(event)
        return True


class Flush(typing.Protocol):
    """The connection's send path: write whatever h2 has queued."""

    async def __call__(self, timeout: float | None) -> None: ...


class AsyncHTTP2Reader:
    """The shared reader of one HTTP/2 connection: the stream inboxes, the
    read lock and its hand-off, dispatch of received events, GOAWAY."""

    def __init__(
        self,
        h2_connection: ClientH2,
        stream: AsyncNetworkStream,
        state_lock: AsyncPoolLock,
        clock: Callable[[], float],
        flush: Flush,
    ) -> None:
        self._h2 = h2_connection
        self._network_stream = stream
        self._state_lock = state_lock
        self._clock = clock
        # Sends what h2 has queued (the connection's write path).
        self._flush = flush
        self.read_lock = AsyncLock()
        # Streams waiting for events while another stream reads, oldest first.
        self._waiting: dict[StreamInbox, None] = {}
        # The open streams' inboxes, by stream id.
        self.streams: dict[int, StreamInbox] = {}
        # Connection-level events while ``aconnect`` waits for the server's SETTINGS.
        self.connection_inbox: StreamInbox | None = None
        self.state = ConnectionState.ACTIVE
        # Why the connection died: raised to every stream that asks after it.
        self.error: BaseException | None = None
        # The lowest last stream id of the GOAWAYs received.
        self.last_stream_id = 2**31
        # A connection error of the server's: h2 has queued our GOAWAY (RFC 9113 5.4.1).
        self.goaway_owed = False
        # When the last read that completed a frame (gave h2 events) ended: bytes
        # that only add to an unfinished frame are not progress (see _retire_if_stalled).
        self.last_events = clock()

    async def next_event(
        self, stream_id: int, timeout: float | None, deadline: Deadline | None = None
    ) -> typing.Any:
        """The next event of ``stream_id``, reading the socket while there is none.

        ``timeout`` bounds the wait for this stream's next event: frames for
        other streams, PINGs and the like do not restart it. So does what is
        left of ``deadline``, the request's total deadline."""
        stream = self.streams[stream_id]
        if not stream.events:
            wait, by_deadline = timeout, False
            if deadline is not None:
                wait, by_deadline = deadline.limit(timeout, ReadTimeout, _READING)
            try:
                await self._wait_for_event(stream, stream_id, wait)
            except ReadTimeout as exc:
                self._retire_if_stalled(wait)
                if deadline is not None and by_deadline:
                    raise deadline.error(ReadTimeout, _READING) from exc
                raise
        event = stream.events.popleft()
        if isinstance(event, BaseException):
            raise event
        return event

    async def _wait_for_event(
        self, stream: StreamInbox, stream_id: int, timeout: float | None
    ) -> None:
        deadline = None if timeout is None else self._clock() + timeout
        wait = timeout
        while not stream.events:
            self.raise_if_failed(stream_id)
            if deadline is not None:
                wait = deadline - self._clock()
                if wait <= 0:
                    # Woken to read next just as time ran out: pass the turn on,
                    # or the streams still waiting would wait for a reader
                    # that never comes.
                    self._stop_waiting(stream)
                    raise ReadTimeout(f"No data for this stream within {timeout} seconds.")
            if self.read_lock.try_acquire():
                await self._read_as_reader(stream, wait)
                continue
            # Another stream is reading. Wait to be woken: by events for this
            # stream, or by the reader leaving (then this one may read). Not
            # queueing on the lock: a stream whose events have arrived must
            # not wait behind streams that are still waiting for theirs.
            with self._state_lock:
                if stream.events:
                    break
                wakeup = stream.wakeup = AsyncEvent()
                self._waiting[stream] = None
            if self.read_lock.try_acquire():  # the reader left meanwhile
                with self._state_lock:
                    self._waiting.pop(stream, None)
                await self._read_as_reader(stream, wait)
                continue
            try:
                woken = await wakeup.wait(wait)
            except BaseException:
                self._stop_waiting(stream)  # cancelled
                raise
            if not woken:
                self._stop_waiting(stream)
                if not stream.events:
                    raise ReadTimeout(f"No data for this stream within {timeout} seconds.")

    def _retire_if_stalled(self, timeout: float | None) -> None:
        """A stream's read timed out. If the server stopped in mid-frame and no
        frame has completed for that long (bytes that only add to the unfinished
        frame do not count: a server that announced a long frame and then sent
        other frames' bytes is as stuck), the connection takes no new stream
        and closes when its last stream ends. The other streams on it go on
        with their own read timeouts: a stall one stream gave up on may end
        before theirs do (a long frame from a busy server), and failing them
        for another stream's patience failed requests that would have succeeded."""
        with self._state_lock:
            if (
                timeout is not None
                and self.state is ConnectionState.ACTIVE
                and self._h2.mid_frame()
                and self._clock() - self.last_events >= timeout
            ):
                self.state = ConnectionState.GOING_AWAY

    async def _read_as_reader(self, stream: StreamInbox, timeout: float | None) -> None:
        """Read once for everyone (the read lock is held), unless this stream
        already has what it waits for."""
        try:
            if not stream.events and self.error is None:
                await self.read_once(timeout)
        finally:
            self.release()

    def release(self) -> None:
        """Let go of the read lock and wake the oldest waiting stream, which
        reads next if nothing has arrived for it."""
        self.read_lock.release()
        with self._state_lock:
            if self._waiting:
                self._wake(next(iter(self._waiting)))

    def _stop_waiting(self, stream: StreamInbox) -> None:
        """``stream`` gives up waiting. If it had just been woken to read next,
        the turn passes to the next waiting stream, so that nobody is left
        waiting for a reader that will not come."""
        with self._state_lock:
            if stream in self._waiting:
                del self._waiting[stream]
            elif self._waiting:
                # Woken already, perhaps to read next: pass that on.
                self._wake(next(iter(self._waiting)))
            stream.wakeup = None

    def _wake(self, stream: StreamInbox) -> None:
        # Called with the state lock held.
        self._waiting.pop(stream, None)
        if stream.wakeup is not None:
            stream.wakeup.set()
            stream.wakeup = None

    async def read_once(self, timeout: float | None) -> None:
        """One read, its events dispatched. Call with the read lock held."""
        if self.error is not None:
            return
        try:
            data = await self._network_stream.read(READ_SIZE, timeout)
        except ReadTimeout:
            raise
        except Exception as exc:
            with self._state_lock:
                self.fail(exc)
            return
        with self._state_lock:
            if not data:
                self.fail(RemoteProtocolError("The server closed the HTTP/2 connection."))
                return
            try:
                events = self._h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                # Owed to the server before closing (RFC 9113 5.4.1); aclose sends it.
                self._h2.last_words(int(exc.error_code or PROTOCOL_ERROR))
                self.goaway_owed = True
                self.fail(RemoteProtocolError(describe(exc)))
                return
            if events:
                self.last_events = self._clock()
            for event in events:
                self._dispatch(event)
        if self._h2.has_output():
            await self._flush(timeout)

    def _dispatch(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", 0)
        if stream_id:
            stream = self.streams.get(stream_id)
            if isinstance(event, h2.events.StreamReset):
                if stream is not None:
                    stream.events.append(reset_error(event))
                    self._wake(stream)
            elif stream is not None:
                if type(event) is h2.events.DataReceived:
                    if not stream.add_data(event):
                        # Padding only: nothing to hand over, the window it took comes back.
                        if event.flow_controlled_length:
                            self._h2.acknowledge_received_data(
                                event.flow_controlled_length, stream_id
                            )
                        return
                    self._wake(stream)
                elif isinstance(event, STREAM_EVENTS):
                    checked = self._checked(stream_id, event)
                    if type(checked) is h2.events.InformationalResponseReceived:
                        return  # not handed over: a flood of them must not pile up
                    stream.events.append(checked)
                    self._wake(stream)
            elif isinstance(event, h2.events.DataReceived):
                # A stream we gave up on: hand its bytes back to the connection window.
                self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.PushedStreamReceived):
                self._h2.reset_stream(event.pushed_stream_id or 0, REFUSED_STREAM)
        else:
            preface = self.connection_inbox
            if preface is not None and not preface.events:
                preface.events.append(preface_answer(event))
            if isinstance(event, h2.events.ConnectionTerminated):
                self._going_away(event.last_stream_id or 0)

    def _checked(self, stream_id: int, event: h2.events.Event) -> h2.events.Event | BaseException:
        """``event``, or the error that ends its stream if it carries a malformed
        header block (that stream is reset; the others go on)."""
        if not isinstance(event, HEADER_EVENTS):
            return event
        trailers = isinstance(event, h2.events.TrailersReceived)
        problem = malformed(event.headers or (), trailers=trailers)
        if problem is None:
            return event
        stream = self._h2.streams.get(stream_id)
        if stream is not None and not stream.closed:
            self._h2.reset_stream(stream_id, PROTOCOL_ERROR)
        what = "trailers" if trailers else "response head"
        return RemoteProtocolError(f"Malformed {what} on HTTP/2 stream {stream_id}: {problem}.")

    def _going_away(self, last_stream_id: int) -> None:
        """GOAWAY: streams above ``last_stream_id`` were never processed."""
        if self.state is ConnectionState.ACTIVE:
            self.state = ConnectionState.GOING_AWAY
        self.last_stream_id = min(self.last_stream_id, last_stream_id)
        for stream_id, stream in self.streams.items():
            if stream_id > last_stream_id:
                stream.events.append(ConnectionNotAvailable())
                self._wake(stream)

    def fail(self, exc: BaseException) -> None:
        """The connection is unusable: every stream learns it when it next asks.
        Called with the state lock held."""
        if self.error is None:
            self.error = exc
        self.state = ConnectionState.CLOSED
        for stream in list(self._waiting):
            self._wake(stream)

    def raise_if_failed(self, stream_id: int) -> None:
        if self.error is None:
            return
        if stream_id > self.last_stream_id:
            raise ConnectionNotAvailable()  # the GOAWAY said it was never processed
        raise self.error
