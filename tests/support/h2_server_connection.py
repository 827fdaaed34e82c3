"""One HTTP/2 connection of the test server (``tests/support/h2_server.py``).

Theory of operation: every connection runs in its own thread, one event loop
over a non-blocking socket: ``poll`` waits on the socket (readable, and
writable while output is queued), on the connection's wake-up socket pair and
on the nearest timer. Each turn runs the commands other threads posted
(``H2Server.send_ping`` and friends), fires due timers (``/slow``), feeds what
arrived to h2, then lets every stream with a response body queue as much as
the flow-control windows allow, then writes. No stream ever blocks another,
and nothing here takes a lock except to touch the server's counters.

This module holds the socket, the loop, the cross-thread commands and timers,
and turns h2's events into ``Stream`` records; what each path answers and how
a body is pumped out under flow control live in its base class
(``h2_server_responses.Responses``).

GOAWAY is written as a raw frame, not through ``H2Connection.close_connection``:
h2 moves its state machine to CLOSED on a GOAWAY and would then refuse to send
the responses that the GOAWAY promised to finish. Streams above the last id
are counted and then ignored; the connection closes once every stream at or
below it is answered and flushed.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import select
import socket
import ssl
import threading
import time
import typing
import urllib.parse
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from tests.support.h2_server_responses import Headers, Responses, Stream

if typing.TYPE_CHECKING:
    from tests.support.h2_server import H2Server

READ_SIZE = 65536
SEND_SIZE = 65536
# Bounds the TLS handshake and the drain before close; a test that trips them
# has a bug, not a slow machine.
HANDSHAKE_TIMEOUT = 10.0
LINGER_TIMEOUT = 1.0


class Closed(Exception):
    """The server is stopping or the peer went away: end the connection quietly."""


class Connection(Responses):
    """Serves one accepted socket until the peer leaves, a GOAWAY completes, or stop()."""

    def __init__(self, server: H2Server, sock: socket.socket, number: int) -> None:
        self.server = server
        self.sock = sock
        self.number = number  # 1 for the first connection the server accepted
        self.wake_r, self.wake_w = socket.socketpair()
        self.h2 = h2.connection.H2Connection(
            config=h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                # /malformed sends what h2 would refuse to.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self.out = bytearray()
        self.streams: dict[int, Stream] = {}
        self.held: list[Stream] = []
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.timer_seq = itertools.count()
        self.requests = 0
        self.goaway_last: int | None = None
        self.peer_goaway = False
        self.last_activity = time.monotonic()
        self.settings_seen: dict[int, int] | None = None
        # Commands from other threads, each with the event its caller waits on.
        self.commands: list[tuple[Callable[[], None], threading.Event]] = []
        self.finished = False
        self.backlogged = False  # a body stopped at HIGH_WATER, not for want of window
        self.ping_seq = itertools.count(1)

    # Called from other threads.

    def call(self, command: Callable[[], None]) -> threading.Event:
        """Run ``command`` on the connection thread; the event is set once it ran
        (or the connection is gone)."""
        done = threading.Event()
        with self.server.lock:
            if self.finished:
                done.set()
                return done
            self.commands.append((command, done))
        self.wake()
        return done

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")

    # The thread.

    def run(self) -> None:
        try:
            self.sock.setblocking(False)
            # Small frames (WINDOW_UPDATE, PING ACK) must not wait for Nagle.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.server.ssl_context is not None:
                self._handshake()
            self._start()
            self._loop()
            self._linger()
        except (Closed, OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            with self.server.lock:
                self.finished = True
                commands, self.commands = self.commands, []
                self.server.held -= len(self.held)
                self.held.clear()
            for _, done in commands:
                done.set()
            self.sock.close()
            self.wake_r.close()
            self.wake_w.close()
            self.server.connection_done(self)

    def _handshake(self) -> None:
        assert self.server.ssl_context is not None
        self.sock = self.server.ssl_context.wrap_socket(
            self.sock, server_side=True, do_handshake_on_connect=False
        )
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        while True:
            try:
                self.sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                events = select.POLLIN
            except ssl.SSLWantWriteError:
                events = select.POLLOUT
            self._wait(events, deadline - time.monotonic())
            if time.monotonic() > deadline:
                raise Closed()

    def _start(self) -> None:
        server = self.server
        codes = h2.settings.SettingCodes
        base = {codes.MAX_HEADER_LIST_SIZE: self.h2.DEFAULT_MAX_HEADER_LIST_SIZE}
        announced: dict[h2.settings.SettingCodes, int] = {}
        if server.max_concurrent_streams is not None:
            announced[codes.MAX_CONCURRENT_STREAMS] = server.max_concurrent_streams
        if server.initial_window_size is not None:
            announced[codes.INITIAL_WINDOW_SIZE] = server.initial_window_size
        # h2 would advertise MAX_CONCURRENT_STREAMS=100; send only what was asked.
        self.h2.local_settings = h2.settings.Settings(
            client=False, initial_values={**base, **announced}
        )
        self.h2.initiate_connection()
        # h2 applies its initial SETTINGS at once, but they bind only once the
        # client acknowledges them (RFC 9113 6.5.3): a client may open streams
        # or send DATA under the defaults before it has read them. Re-state
        # them as pending, so that h2 holds the client to them from the ACK on.
        pending = h2.settings.Settings(client=False, initial_values=base)
        for code, value in announced.items():
            pending[code] = value
        self.h2.local_settings = pending
        window = server.initial_window_size
        if window is not None and window > 65535:
            # The connection window is not a setting; open it as wide, so that
            # one stream can use its whole window.
            self.h2.increment_flow_control_window(window - 65535)
        self.out += self.h2.data_to_send()

    def _loop(self) -> None:
        while True:
            self._run_commands()
            self._run_timers()
            self.backlogged = False
            for stream in list(self.streams.values()):
                self._pump(stream)
            self.out += self.h2.data_to_send()
            flushed = self._flush()
            if flushed and self._done():
                return
            # A body held back by HIGH_WATER goes on as soon as the socket took
            # the rest: only a quick look for incoming frames first.
            timeout = 0.0 if flushed and self.backlogged else self._timeout()
            readable = self._wait(self._poll_events(), timeout)
            if readable:
                data = self._recv()
                if data == b"":
                    raise Closed()
                if data is not None:
                    self._receive(data)

    def _poll_events(self) -> int:
        return select.POLLIN | (select.POLLOUT if self.out else 0)

    def _wait(self, events: int, timeout: float | None) -> bool:
        """Wait for the socket (or stop); True when it may be readable."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        poller = select.poll()
        poller.register(self.sock, events)
        poller.register(self.wake_r, select.POLLIN)
        ready = poller.poll(None if timeout is None else max(0.0, timeout) * 1000)
        for fd, _ in ready:
            if fd == self.wake_r.fileno():
                with contextlib.suppress(BlockingIOError):
                    self.wake_r.recv(4096)
        if self.server.stopping.is_set():
            raise Closed()
        return any(fd == self.sock.fileno() and flags & ~select.POLLOUT for fd, flags in ready)

    def _timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [self.timers[0][0]] if self.timers else []
        idle = self.server.idle_timeout
        if idle is not None and self.goaway_last is None and not self.streams:
            deadlines.append(self.last_activity + idle)
        return min(deadlines) - now if deadlines else None

    def _recv(self) -> bytes | None:
        try:
            return self.sock.recv(READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None

    def _flush(self) -> bool:
        """Write what the socket takes; True once nothing is left."""
        while self.out:
            try:
                # The slice never shrinks between retries, as OpenSSL requires.
                sent = self.sock.send(self.out[:SEND_SIZE])
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return False
            del self.out[:sent]
        return True

    def _done(self) -> bool:
        """A GOAWAY was exchanged and every stream it covers is answered."""
        if self.goaway_last is not None:
            return not any(stream_id <= self.goaway_last for stream_id in self.streams)
        return self.peer_goaway and not self.streams

    def _linger(self) -> None:
        """Close gracefully: end TLS, half-close, then drain what the client still
        sends, so that the kernel does not answer it with a reset that destroys
        the responses we just wrote."""
        if isinstance(self.sock, ssl.SSLSocket):
            # Sends close_notify; waiting for the client's is not worth it.
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                self.sock.unwrap()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_TIMEOUT
        while time.monotonic() < deadline:
            if self._wait(select.POLLIN, deadline - time.monotonic()):
                try:
                    if socket.socket.recv(self.sock, READ_SIZE) == b"":
                        return
                except BlockingIOError:
                    pass

    # Commands and timers.

    def _run_commands(self) -> None:
        with self.server.lock:
            commands, self.commands = self.commands, []
        for command, done in commands:
            try:
                command()
            finally:
                done.set()

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, callback = heapq.heappop(self.timers)
            callback()
        idle = self.server.idle_timeout
        if (
            idle is not None
            and self.goaway_last is None
            and not self.streams
            and now - self.last_activity >= idle
        ):
            self.send_goaway(self.h2.highest_inbound_stream_id)

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.timer_seq), callback))

    def send_goaway(self, last_stream_id: int | None = None) -> None:
        if last_stream_id is None:
            last_stream_id = self.h2.highest_inbound_stream_id
        self.goaway_last = last_stream_id
        for stream_id in [i for i in self.streams if i > last_stream_id]:
            self._forget(stream_id)  # refused: never answered
        frame = GoAwayFrame(0, last_stream_id=last_stream_id, error_code=0)
        self.out += self.h2.data_to_send() + frame.serialize()

    def send_ping(self) -> None:
        self.h2.ping(next(self.ping_seq).to_bytes(8, "big"))

    def send_settings(self, changes: dict[int, int]) -> None:
        self.h2.update_settings(typing.cast(dict[typing.Any, int], changes))

    def release_held(self) -> None:
        held, self.held = self.held, []
        with self.server.lock:
            self.server.held -= len(held)
        for stream in held:
            if stream.id in self.streams:
                self._respond(stream, 200, b"held")

    # Frames in.

    def _receive(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            # h2 queued a GOAWAY naming the error; try to deliver it, then leave.
            self.out += self.h2.data_to_send()
            self._flush()
            raise
        for event in events:
            self._handle(event)

    def _handle(self, event: h2.events.Event) -> None:
        server = self.server
        if isinstance(event, h2.events.RequestReceived):
            self._request(event.stream_id, event.headers or [])
        elif isinstance(event, h2.events.DataReceived):
            self._data(event)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._request_complete(stream)
        elif isinstance(event, h2.events.StreamReset):
            self._forget(event.stream_id)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            changed = {int(code): c.new_value for code, c in event.changed_settings.items()}
            with server.lock:
                if self.settings_seen is None:
                    self.settings_seen = {}
                    server.client_settings.append(self.settings_seen)
                self.settings_seen.update(changed)
        elif isinstance(event, h2.events.PingAckReceived):
            with server.lock:
                server.pings_acked += 1
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.peer_goaway = True

    def _request(self, stream_id: int, raw_headers: typing.Any) -> None:
        server = self.server
        headers: Headers = [(bytes(name), bytes(value)) for name, value in raw_headers]
        self.requests += 1
        with server.lock:
            server.streams_received += 1
            server.max_streams_seen = max(server.max_streams_seen, self.h2.open_inbound_streams)
        if self.goaway_last is not None and stream_id > self.goaway_last:
            return  # refused by our GOAWAY: never answered
        if stream_id not in self.h2.streams:
            return  # reset by the client in the same read as its HEADERS: h2 forgot it
        pseudo = dict(headers)
        split = urllib.parse.urlsplit(pseudo.get(b":path", b"/").decode("ascii"))
        stream = Stream(
            id=stream_id,
            method=pseudo.get(b":method", b"GET"),
            path=split.path,
            query=dict(urllib.parse.parse_qsl(split.query)),
            headers=headers,
        )
        self.streams[stream_id] = stream
        if stream.path == "/reset":
            self._forget(stream_id)
            self.h2.reset_stream(stream_id, error_code=int(stream.query.get("code", "2")))
        elif stream.path == "/echo":
            stream.echo = True
            self._start_response(stream, 200, length=None)
        goaway_after = server.goaway_after
        if goaway_after is not None and self.number == 1 and self.requests == goaway_after:
            self.send_goaway(stream_id)

    def _data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        data = event.data or b""
        length = event.flow_controlled_length or 0
        stream = self.streams.get(stream_id)
        if stream is not None and stream.echo:
            # Acknowledged as it is forwarded (padding right away), which is
            # what keeps an echo of any size within one window of memory.
            if data:
                stream.chunks.append(data)
            unforwarded = len(data)
        else:
            if stream is not None:
                stream.nbytes += len(data)
                stream.digest.update(data)
            unforwarded = 0
        # With stall_uploads nothing is ever acknowledged: the client's windows run dry.
        if length > unforwarded and not self.server.stall_uploads:
            self.h2.acknowledge_received_data(length - unforwarded, stream_id)

    def _forget(self, stream_id: int) -> None:
        """Drop a stream that was reset, giving back the window its data held."""
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        if stream in self.held:
            self.held.remove(stream)
            with self.server.lock:
                self.server.held -= 1
        pending = sum(len(chunk) for chunk in stream.chunks) - stream.offset
        if stream.echo and pending and not self.server.stall_uploads:
            self.h2.acknowledge_received_data(pending, stream_id)
