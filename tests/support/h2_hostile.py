"""Hostile HTTP/2 servers for tests: the h2 test server with its first connection turned hostile.

Theory of operation: ``HostileConnection`` is the test server's ``Connection``
(``h2_server_connection.py``) with an ``Attack`` plugged into three hooks:
``on_start`` runs once the server's preface (its SETTINGS) is queued,
``on_request`` runs in place of the normal answer to a request, and a flood
that an attack starts tops the output up whenever it runs low, for as long
as the client listens. Frames h2 would refuse to send are written as raw
bytes (``frame``); header blocks go through the connection's own HPACK
encoder where the client's decoder must stay in step with it.

Only the first connection is hostile (unless the attack names others), and
only for its first ``Attack.streams`` requests (after ``Attack.after``
ordinary ones): later requests and connections get the ordinary server, so
a test can check that the pool recovers on a clean connection.

Every frame the client sends is also parsed here, apart from h2
(``ClientFrames``), and its GOAWAY and RST_STREAM frames are recorded in the
``Hostility`` record, so a test can check what the client said even when the
attack has left the server's h2 state confused. Should h2 refuse the
client's bytes, the connection stops answering (``deaf``) but keeps
recording, and it sends nothing of its own in reply.

Safety: a hostile connection closes itself ``SAFETY_TIMEOUT`` seconds after
it was accepted, so a client that never gives up fails its test (on the
time bound the test checks) instead of hanging it.
"""

from __future__ import annotations

import dataclasses
import math
import socket
import struct
import threading
import time
import typing
from collections.abc import Callable, Iterator

import h2.events
import h2.exceptions
from hyperframe.frame import SettingsFrame

from tests.support.h2_server import H2Server
from tests.support.h2_server_connection import Closed, Connection

SAFETY_TIMEOUT = 60.0
# Keep this much flood queued for the socket; it is topped up as it drains.
FLOOD_LOW_WATER = 64 * 1024

# Frame types and flags (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
# Error codes (RFC 9113 section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 5, 6, 7, 8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 9, 11

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame as bytes, whatever it says."""
    return (
        struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream_id) + payload
    )


def settings_frame(**values: int) -> bytes:
    """A SETTINGS frame with these raw values (names as in RFC 9113 6.5.2)."""
    codes = {
        "header_table_size": 1,
        "enable_push": 2,
        "max_concurrent_streams": 3,
        "initial_window_size": 4,
        "max_frame_size": 5,
        "max_header_list_size": 6,
    }
    payload = b"".join(struct.pack(">HI", codes[name], value) for name, value in values.items())
    return frame(SETTINGS, 0, 0, payload)


def goaway_frame(last_stream_id: int, error_code: int = NO_ERROR) -> bytes:
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream_id, error_code))


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


class ClientFrames:
    """Splits what the client sends into frames, without h2 and without judging them."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.preface_left = len(PREFACE)

    def feed(self, data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
        """Yield ``(type, flags, stream_id, payload)`` for each complete frame."""
        self.buffer += data
        if self.preface_left:
            cut = min(self.preface_left, len(self.buffer))
            del self.buffer[:cut]
            self.preface_left -= cut
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                return
            kind, flags = self.buffer[3], self.buffer[4]
            stream_id = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self.buffer[9 : 9 + length])
            del self.buffer[: 9 + length]
            yield kind, flags, stream_id, payload


Flood = Callable[["HostileConnection"], bytes]


@dataclasses.dataclass(frozen=True)
class Attack:
    """What a hostile connection does. ``on_request`` returns True when it
    answered the request itself (or means never to), False to let the
    ordinary server answer it after all."""

    on_start: Callable[[HostileConnection], None] | None = None
    on_request: Callable[[HostileConnection, int], bool] | None = None
    streams: int = 1  # how many requests meet on_request
    after: int = 0  # ordinary requests before the first hostile one
    connections: tuple[int, ...] | None = (1,)  # the hostile ones (by number); None: all


class Hostility:
    """An attack and what the client did about it; makes the server's connections."""

    def __init__(self, attack: Attack) -> None:
        self.attack = attack
        self.lock = threading.Lock()
        self.goaways: list[tuple[int, int]] = []  # (last stream id, error code) from the client
        self.resets: list[tuple[int, int]] = []  # (stream id, error code) from the client
        self.streams_opened = 0  # HEADERS frames from the client, on every connection
        self.refused = 0  # streams refused by a refusing attack
        self.first_request: float | None = None  # when the first request arrived

    def __call__(self, server: H2Server, sock: socket.socket, number: int) -> Connection:
        return HostileConnection(server, sock, number, self)

    @property
    def goaway_codes(self) -> list[int]:
        with self.lock:
            return [code for _, code in self.goaways]

    @property
    def reset_codes(self) -> list[int]:
        with self.lock:
            return [code for _, code in self.resets]


class HostileConnection(Connection):
    """The test server's connection, running an ``Attack`` (see the module docstring)."""

    def __init__(
        self, server: H2Server, sock: socket.socket, number: int, hostility: Hostility
    ) -> None:
        super().__init__(server, sock, number)
        self.hostility = hostility
        self.attack = hostility.attack
        hostile = self.attack.connections
        self.hostile = hostile is None or number in hostile
        self.client_frames = ClientFrames()
        self.deaf = False
        self.flood: Flood | None = None
        self.seen_requests = 0
        if self.hostile:
            self._later(SAFETY_TIMEOUT, self._give_up)

    def _give_up(self) -> None:
        raise Closed()

    def _start(self) -> None:
        super()._start()
        if self.hostile and self.attack.on_start is not None:
            self.attack.on_start(self)

    def _request(self, stream_id: int, raw_headers: typing.Any) -> None:
        self.seen_requests += 1
        attack = self.attack
        first = attack.after + 1
        if (
            self.hostile
            and attack.on_request is not None
            and first <= self.seen_requests < first + attack.streams
        ):
            with self.server.lock:
                self.server.streams_received += 1
            if attack.on_request(self, stream_id):
                return
        super()._request(stream_id, raw_headers)

    def _flush(self) -> bool:
        try:
            if self.flood is None:
                return super()._flush()
            self._top_up(self.flood)
            super()._flush()
            # Never drained while flooding: the loop keeps waiting for the
            # socket to take more.
            self._top_up(self.flood)
            return False
        except OSError:
            # Reset by the client, perhaps just after its GOAWAY: what it
            # sent before the reset can still be read.
            self._read_the_rest()
            raise

    def _read_the_rest(self) -> None:
        while True:
            try:
                data = socket.socket.recv(self.sock, 65536)
            except OSError:
                return
            if not data:
                return
            self._record(data)

    def _top_up(self, flood: Flood) -> None:
        while len(self.out) < FLOOD_LOW_WATER:
            self.out += flood(self)

    def _receive(self, data: bytes) -> None:
        self._record(data)
        if self.deaf:
            return
        self.last_activity = time.monotonic()
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            # The client's answer to the abuse confused h2: answer nothing
            # more (not even h2's GOAWAY), but keep recording.
            self.deaf = True
            self.h2.data_to_send()
            return
        for event in events:
            self._handle(event)

    def _record(self, data: bytes) -> None:
        record = self.hostility
        for kind, _, stream_id, payload in self.client_frames.feed(data):
            with record.lock:
                if kind == GOAWAY:
                    last, code = struct.unpack(">II", payload[:8])
                    record.goaways.append((last & 0x7FFFFFFF, code))
                elif kind == RST_STREAM:
                    record.resets.append((stream_id, struct.unpack(">I", payload[:4])[0]))
                elif kind == HEADERS:
                    record.streams_opened += 1

    # Helpers for attacks.

    def send_raw(self, data: bytes) -> None:
        """Queue ``data`` after whatever h2 has queued."""
        self.out += self.h2.data_to_send() + data

    def head_block(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """An HPACK block from the connection's encoder (the client's decoder follows it)."""
        return bytes(self.h2.encoder.encode(headers))


# ----- the attacks -------------------------------------------------------------------------

OK_HEAD = [(b":status", b"200"), (b"content-type", b"text/plain")]


def _flooding(chunk: bytes, *, head: bool = False) -> Callable[[HostileConnection, int], bool]:
    """An attack that floods ``chunk`` (its ``{sid}`` bytes replaced by the
    stream id) for ever, after the response head when ``head``."""

    def attack(connection: HostileConnection, stream_id: int) -> bool:
        if head:
            connection.send_raw(
                frame(HEADERS, END_HEADERS, stream_id, connection.head_block(OK_HEAD))
            )
        data = chunk.replace(b"{sid}", stream_id.to_bytes(4, "big")) * max(1, 16384 // len(chunk))
        connection.flood = lambda _: data
        connection.deaf = True  # it only floods now; reading is recording
        return True

    return attack


def _ping_drip(connection: HostileConnection, stream_id: int) -> bool:
    # A PING every 0.1 s, for ever, and no answer: bytes keep arriving, none for the stream.
    def drip() -> None:
        connection.send_raw(frame(PING, 0, 0, b"dripdrip"))
        connection._later(0.1, drip)

    drip()
    return True


def _raw(
    make: Callable[[HostileConnection, int], bytes],
) -> Callable[[HostileConnection, int], bool]:
    """An attack that sends ``make(connection, stream_id)`` and nothing else."""

    def attack(connection: HostileConnection, stream_id: int) -> bool:
        connection.send_raw(make(connection, stream_id))
        return True

    return attack


def _raw_then_answer(
    make: Callable[[HostileConnection, int], bytes],
) -> Callable[[HostileConnection, int], bool]:
    def attack(connection: HostileConnection, stream_id: int) -> bool:
        connection.send_raw(make(connection, stream_id))
        return False

    return attack


def _frame_on(kind: int, flags: int, payload: bytes) -> bytes:
    # The stream id is patched in by _flooding.
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + b"{sid}" + payload


def _continuation_flood(size: int) -> Callable[[HostileConnection, int], bool]:
    def attack(connection: HostileConnection, stream_id: int) -> bool:
        block = connection.head_block(OK_HEAD)
        connection.send_raw(frame(HEADERS, 0, stream_id, block))  # no END_HEADERS
        filler = frame(CONTINUATION, 0, stream_id, b"\x00" * size)
        connection.flood = lambda _: filler
        connection.deaf = True
        return True

    return attack


def _hpack_bomb(connection: HostileConnection, stream_id: int) -> bytes:
    # One 4,000-byte value into the dynamic table (literal with incremental
    # indexing, new name), then 16,000 one-byte references to it (index 62):
    # 20 KB on the wire, 64 MB once decoded.
    name, value = b"x-bomb", b"a" * 4000
    literal = b"\x40" + bytes([len(name)]) + name + b"\x7f" + _hpack_int(len(value) - 127) + value
    block = b"\x88" + literal + b"\xbe" * 16000  # :status 200 (static index 8)
    return _headers_in_frames(stream_id, block)


def _hpack_int(value: int) -> bytes:
    """The continuation bytes of an HPACK integer whose prefix is full."""
    out = bytearray()
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _headers_in_frames(stream_id: int, block: bytes, size: int = 16384) -> bytes:
    pieces = [block[i : i + size] for i in range(0, len(block), size)]
    frames = []
    for index, piece in enumerate(pieces):
        kind = HEADERS if index == 0 else CONTINUATION
        flags = END_HEADERS if index == len(pieces) - 1 else 0
        frames.append(frame(kind, flags, stream_id, piece))
    return b"".join(frames)


def _many_headers(connection: HostileConnection, stream_id: int) -> bytes:
    # 100,000 small headers, each a reference to a static-table entry with a
    # one-byte value: 300 KB on the wire (64 KiB past the limit within the first 2,000).
    block = b"\x88" + b"\x0f\x28\x01a" * 100_000  # "x" literal name index 55 (set-cookie)
    return _headers_in_frames(stream_id, block)


def _table_size_update(connection: HostileConnection, stream_id: int) -> bytes:
    # A dynamic table size update to 1 MiB, above the 4,096 our SETTINGS allow.
    block = b"\x3f" + _hpack_int((1 << 20) - 31) + b"\x88"
    return frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block)


def _data_beyond_window(connection: HostileConnection, stream_id: int) -> bytes:
    # The client allows 4 MiB per stream; it gets 4 MiB and 16 KiB at once.
    head = frame(HEADERS, END_HEADERS, stream_id, connection.head_block(OK_HEAD))
    chunk = frame(DATA, 0, stream_id, b"d" * 16384)
    return head + chunk * (4 * 64 + 1)


def _tiny_data(connection: HostileConnection, stream_id: int) -> bytes:
    # A 30,000-byte body in one-byte DATA frames: 300 KB on the wire, and an
    # event object per byte for a client that queues each frame as it comes.
    head = frame(HEADERS, END_HEADERS, stream_id, connection.head_block(OK_HEAD))
    return head + frame(DATA, 0, stream_id, b"x") * 30_000 + frame(DATA, END_STREAM, stream_id)


def _data_on_closed_stream(connection: HostileConnection, stream_id: int) -> bytes:
    # The previous request's stream (answered and ended) gets more DATA.
    return frame(DATA, 0, stream_id - 2, b"late")


def _push_promise(connection: HostileConnection, stream_id: int) -> bytes:
    promised = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/pushed")]
    promised.append((b":authority", b"127.0.0.1"))
    payload = struct.pack(">I", 2) + connection.head_block(promised)
    return frame(PUSH_PROMISE, END_HEADERS, stream_id, payload)


def _reset(connection: HostileConnection, stream_id: int) -> bool:
    connection.h2.reset_stream(stream_id, INTERNAL_ERROR)
    return True


def _silence(connection: HostileConnection, stream_id: int) -> bool:
    return True


def _refusing(seconds: float) -> Callable[[HostileConnection, int], bool]:
    """RST_STREAM(REFUSED_STREAM) for every stream during ``seconds`` from the
    first request on, on every connection; then the ordinary answers."""

    def attack(connection: HostileConnection, stream_id: int) -> bool:
        record = connection.hostility
        now = time.monotonic()
        with record.lock:
            if record.first_request is None:
                record.first_request = now
            refusing = now - record.first_request < seconds
            record.refused += refusing
        if refusing:
            connection.h2.reset_stream(stream_id, REFUSED_STREAM)
        return refusing

    return attack


def _never_ack_settings(connection: HostileConnection) -> None:
    # h2 acknowledges SETTINGS by itself; drop the acknowledgement it queues.
    table = connection.h2._frame_dispatch_table
    receive = table[SettingsFrame]

    def without_ack(received: typing.Any) -> typing.Any:
        frames, events = receive(received)
        kept = [f for f in frames if not (isinstance(f, SettingsFrame) and "ACK" in f.flags)]
        return kept, events

    table[SettingsFrame] = without_ack


def _garbage(connection: HostileConnection) -> None:
    connection.send_raw(b"GARBAGE! " * 1000)


def _half_a_frame(connection: HostileConnection) -> None:
    # A frame header announcing 200,000 bytes (within our 256 KiB frame limit),
    # of an unknown type, and then only part of it: the client waits for the rest.
    connection.send_raw(struct.pack(">I", 200_000)[1:] + b"\xfa\x00\x00\x00\x00\x00" + b"g" * 1000)


def _stall_then_resume(connection: HostileConnection, stream_id: int) -> bool:
    # The first stream: half of a long frame of an unknown type at once, its
    # rest 2 s later, then the stream's answer. The second stream is never
    # answered: it arrives during the stall (2 s leave a loaded machine time to
    # send it), and gives up on it. A stall that ends, seen by two streams.
    head = struct.pack(">I", 200_000)[1:] + b"\xfa\x00\x00\x00\x00\x00"
    if connection.seen_requests == 1:
        answer = frame(HEADERS, END_HEADERS, stream_id, connection.head_block(OK_HEAD))
        answer += frame(DATA, END_STREAM, stream_id, b"Hello, world!")
        connection.send_raw(head + b"g" * 1000)
        connection._later(2.0, lambda: connection.send_raw(b"g" * 199_000 + answer))
    return True


def _no_status(connection: HostileConnection, stream_id: int) -> bytes:
    block = connection.head_block([(b"content-type", b"text/plain")])
    return frame(HEADERS, END_HEADERS, stream_id, block)  # the stream stays open


def _after_promised_goaway(connection: HostileConnection, stream_id: int) -> bytes:
    return goaway_frame(stream_id)


# The catalogue: name -> attack. What the client must do about each is the
# test's business (tests/_async/test_h2_hostile.py).
ATTACKS: dict[str, Attack] = {
    # Floods of frames that carry nothing, for ever.
    "ping-flood": Attack(on_request=_flooding(frame(PING, 0, 0, b"12345678"))),
    "ping-ack-flood": Attack(on_request=_flooding(frame(PING, ACK, 0, b"12345678"))),
    "settings-flood": Attack(on_request=_flooding(frame(SETTINGS, 0, 0))),
    "settings-ack-flood": Attack(on_request=_flooding(frame(SETTINGS, ACK, 0))),
    "window-update-flood": Attack(
        on_request=_flooding(_frame_on(WINDOW_UPDATE, 0, struct.pack(">I", 1)))
    ),
    "priority-flood": Attack(on_request=_flooding(_frame_on(PRIORITY, 0, b"\x00\x00\x00\x00\x10"))),
    "ping-drip": Attack(on_request=_ping_drip),
    "unknown-frame-flood": Attack(on_request=_flooding(_frame_on(0xFA, 0, b"x"))),
    "empty-data-flood": Attack(on_request=_flooding(_frame_on(DATA, 0, b""), head=True)),
    "informational-flood": Attack(
        on_request=_flooding(_frame_on(HEADERS, END_HEADERS, b"\x08\x03100"))
    ),
    "continuation-flood": Attack(on_request=_continuation_flood(0)),
    "continuation-flood-large": Attack(on_request=_continuation_flood(256 * 1024)),
    # HPACK abuse.
    "hpack-bomb": Attack(on_request=_raw(_hpack_bomb)),
    "hpack-many-headers": Attack(on_request=_raw(_many_headers)),
    "hpack-table-size": Attack(on_request=_raw(_table_size_update)),
    # Flow control.
    "window-update-zero-connection": Attack(
        on_request=_raw(lambda c, s: window_update_frame(0, 0))
    ),
    "window-update-zero-stream": Attack(on_request=_raw(lambda c, s: window_update_frame(s, 0))),
    "window-overflow-connection": Attack(
        on_request=_raw(lambda c, s: window_update_frame(0, 2**31 - 1))
    ),
    "window-overflow-stream": Attack(
        on_request=_raw(lambda c, s: window_update_frame(s, 2**31 - 1))
    ),
    "data-beyond-window": Attack(on_request=_raw(_data_beyond_window)),
    "tiny-data": Attack(on_request=_raw(_tiny_data)),
    # Frames on streams that are not open.
    "headers-on-idle-stream": Attack(
        on_request=_raw(lambda c, s: frame(HEADERS, END_HEADERS, s + 2, c.head_block(OK_HEAD)))
    ),
    "headers-on-even-stream": Attack(
        on_request=_raw(lambda c, s: frame(HEADERS, END_HEADERS, 2, c.head_block(OK_HEAD)))
    ),
    "data-on-idle-stream": Attack(on_request=_raw(lambda c, s: frame(DATA, 0, s + 2, b"x"))),
    "reset-of-idle-stream": Attack(
        on_request=_raw(lambda c, s: frame(RST_STREAM, 0, s + 2, struct.pack(">I", 2)))
    ),
    "window-update-on-idle-stream": Attack(
        on_request=_raw(lambda c, s: window_update_frame(s + 2, 1))
    ),
    "data-on-closed-stream": Attack(on_request=_raw_then_answer(_data_on_closed_stream), after=1),
    "push-promise": Attack(on_request=_raw(_push_promise)),
    # Resets and GOAWAY.
    "reset-every-stream": Attack(on_request=_reset, streams=5),
    "refuse-for-a-while": Attack(on_request=_refusing(0.5), streams=2**62, connections=None),
    "refuse-on-second-connection": Attack(
        on_request=_refusing(math.inf), streams=2**62, after=1, connections=(2,)
    ),
    "goaway-then-silence": Attack(on_request=_raw(lambda c, s: goaway_frame(0))),
    "promised-goaway-then-silence": Attack(on_request=_raw(_after_promised_goaway)),
    "goaway-growing": Attack(
        on_request=_raw_then_answer(lambda c, s: goaway_frame(0) + goaway_frame(s))
    ),
    # SETTINGS.
    "settings-window-too-large": Attack(
        on_request=_raw(lambda c, s: settings_frame(initial_window_size=2**31))
    ),
    "settings-frame-size-too-small": Attack(
        on_request=_raw(lambda c, s: settings_frame(max_frame_size=16383))
    ),
    "settings-frame-size-too-large": Attack(
        on_request=_raw(lambda c, s: settings_frame(max_frame_size=2**24))
    ),
    "settings-enable-push-2": Attack(on_request=_raw(lambda c, s: settings_frame(enable_push=2))),
    "settings-never-acked": Attack(on_start=_never_ack_settings),
    # Malformed responses and garbage.
    "no-status": Attack(on_request=_raw(_no_status)),
    "garbage-after-preface": Attack(on_start=_garbage),
    "half-a-frame": Attack(on_start=_half_a_frame, on_request=_silence),
    "stall-then-resume": Attack(on_request=_stall_then_resume, streams=2),
}


def hostile_server(name: str, **options: typing.Any) -> tuple[H2Server, Hostility]:
    """An unstarted h2c server running attack ``name`` on its first connection."""
    hostility = Hostility(ATTACKS[name])
    return H2Server(connection_factory=hostility, **options), hostility


__all__ = ["ATTACKS"]
