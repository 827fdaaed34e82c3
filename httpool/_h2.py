"""The h2 adapter: the only module that touches h2's and hpack's internals.

Theory of operation
-------------------
Everything HTTP/2 that does no I/O and knows h2 lives here: the SETTINGS we
send, h2's client state machine as httpool needs it (``ClientH2``), its HPACK
coders (``MemoDecoder``, ``MemoEncoder``), and what a frame or an h2 error
means to a caller (``preface_answer``, ``reset_error``, ``describe``,
``may_send``).
``_async/http2.py`` and ``_async/http2_reader.py`` do the I/O and know h2 only
through its public events, exceptions and ``H2Connection`` methods, and
through what ``ClientH2`` adds.

What is reached behind h2's public API, and why (the pins in pyproject.toml
follow this list; a test fails if another module reaches such a name):

- ``ClientH2`` overrides h2's ``_receive_frame`` (the flood bound),
  ``_receive_headers_frame`` (HEADERS on even streams, COMPRESSION_ERROR),
  ``_receive_rst_stream_frame`` (RST_STREAM on idle streams) and
  ``_receive_goaway_frame`` (python-hyper/h2#1181: h2 4.x moves its state
  machine to CLOSED on a received GOAWAY, then rejects the frames of the
  streams the server promised to finish, and drops pending output), and
  reads ``_data_to_send`` (h2 has no way to look at its output without
  taking it).
- ``_FrameBuffer`` subclasses ``h2.frame_buffer.FrameBuffer`` and reads its
  ``_data``, ``_headers_buffer`` and ``_validate_frame_length``, to refuse an
  overlong frame at its header and an oversized header block early. It gives
  each frame a quiet twin of its class (same name, same handler in h2's
  ``_frame_dispatch_table``) whose repr costs nothing: h2 builds
  ``repr(frame)`` for a trace line its no-op logger drops, on every frame.
- ``ClientH2._open_streams`` is h2's count of open streams (run for every
  stream opened), without a property call per stream.
- ``MemoDecoder`` subclasses hpack's ``Decoder`` (its ``header_table``,
  ``_update_encoding_context``, ``_assert_valid_table_size``; hpack's
  ``decode_integer`` and ``decode_huffman``) and ``MemoEncoder`` its
  ``Encoder`` (its ``HeaderTable``'s ``_maxsize``): see each class.

Header fields (what a request's headers become, the check of received
blocks) are in ``_h2_headers.py``, which knows nothing of h2.
"""

from __future__ import annotations

import typing

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
import h2.stream
import hpack
import hpack.hpack
import hpack.huffman_table
import hpack.table
import hyperframe.frame
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from hyperframe.frame import GoAwayFrame

from ._exceptions import RemoteProtocolError, StreamRefused

# What the server may send before we acknowledge: per stream, and in all.
STREAM_WINDOW = 4 * 1024 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
MAX_FRAME_SIZE = 256 * 1024
# The error codes this package sends or looks for (RFC 9113 section 7).
REFUSED_STREAM = h2.errors.ErrorCodes.REFUSED_STREAM
CANCEL = h2.errors.ErrorCodes.CANCEL
PROTOCOL_ERROR = h2.errors.ErrorCodes.PROTOCOL_ERROR
# Frames in a row that carry nothing for any stream (PING, SETTINGS, empty
# DATA, WINDOW_UPDATE, PRIORITY, 1xx heads, unknown types, frames on reset
# streams) before the server is taken for a flood. A server answering our
# uploads with WINDOW_UPDATE is not: each DATA frame we send starts a new count.
MAX_IDLE_FRAMES = 10_000
# The largest header block (HEADERS and its CONTINUATION frames, still
# compressed) we buffer: twice what our SETTINGS_MAX_HEADER_LIST_SIZE allows
# once decoded, which no honest encoder exceeds.
MAX_HEADER_LIST_SIZE = 65536
MAX_HEADER_BLOCK = 2 * MAX_HEADER_LIST_SIZE


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


# Events that carry something for a stream (a DataReceived only when not empty).
_PROGRESS = frozenset(
    (
        h2.events.ResponseReceived,
        h2.events.DataReceived,
        h2.events.TrailersReceived,
        h2.events.StreamEnded,
        h2.events.StreamReset,
    )
)


class _CompressionError(h2.exceptions.ProtocolError):
    error_code = h2.errors.ErrorCodes.COMPRESSION_ERROR


def _quiet(frame_type: type[typing.Any]) -> type[typing.Any]:
    # The same frame class, with a repr that costs nothing: h2 formats
    # ``repr(frame)`` for a trace log line on every frame it receives, and
    # its logger (ours is h2's no-op default) never prints it.
    def __repr__(self: typing.Any) -> str:
        return frame_type.__name__

    return type(frame_type.__name__, (frame_type,), {"__repr__": __repr__})


# Every frame class hyperframe parses into, and its quiet twin.
_QUIET = {
    frame_type: _quiet(frame_type)
    for frame_type in hyperframe.frame.FRAMES.values()
    if isinstance(frame_type, type)
}
_QUIET[hyperframe.frame.ExtensionFrame] = _quiet(hyperframe.frame.ExtensionFrame)


class _FrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame splitter, refusing an overlong frame as soon as its header
    arrives (h2 buffers all of it first: up to 16 MiB) and a header block
    larger than ``MAX_HEADER_BLOCK`` (h2 allows 64 CONTINUATION frames of
    any size allowed)."""

    def __init__(self) -> None:
        super().__init__(server=False)

    def __next__(self) -> typing.Any:
        if self._headers_buffer and len(self._data) >= 9:
            # Inside a header block (h2 comes back here for each CONTINUATION).
            block = sum(len(f.data) for f in self._headers_buffer)
            if block + int.from_bytes(self._data[:3], "big") > MAX_HEADER_BLOCK:
                raise h2.exceptions.DenialOfServiceError(
                    f"The server sent a header block larger than {MAX_HEADER_BLOCK} bytes."
                )
        try:
            frame = super().__next__()
        except StopIteration:
            # Not a whole frame yet: is what its header announces allowed?
            if len(self._data) >= 9:
                self._validate_frame_length(int.from_bytes(self._data[:3], "big"))
            raise
        # (Not found: a frame already made quiet, by the recursion inside h2's
        # __next__, or a class hyperframe added since.)
        quiet = _QUIET.get(type(frame))
        if quiet is not None:
            frame.__class__ = quiet
        return frame

    def mid_frame(self) -> bool:
        """Whether part of a frame or of a header block is waiting for the rest."""
        return bool(self._data or self._headers_buffer)


# The Huffman-coded strings a connection's decoder remembers: at most
# _MEMO_ENTRIES of them, each at most _MEMO_STRING bytes long as received (its
# decoded form is at most 8/5 as long), so a connection holds at most some
# 256 * (64 + 103) bytes of them, whatever its server sends.
_MEMO_ENTRIES = 256
_MEMO_STRING = 64
_decode_integer = hpack.hpack.decode_integer
_decode_huffman = hpack.huffman_table.decode_huffman
_new_tuple = tuple.__new__


class MemoDecoder(hpack.Decoder):
    """hpack's decoder, with a faster ``decode`` for the raw bytes h2 asks for.

    A server re-sends the same Huffman-coded strings (nginx: its name, the
    content type, ``last-modified``, ``etag``) in every response, as literals.
    The decoded form of each is remembered, keyed by its exact coded bytes, in
    a table bounded in entries and entry size (oldest out first); a string
    never decoded before goes through hpack's ``decode_huffman``, so an
    invalid one (bad padding, EOS) raises the same error as ever, and is not
    remembered.

    Everything else is hpack's own, in one loop instead of a call and a debug
    log record per field: the same representations, the same dynamic table
    (``header_table.add``, ``get_by_index``, size updates through hpack's
    ``_update_encoding_context`` and its ``_assert_valid_table_size``), the
    same header list size limit, the same errors with the same messages
    (multi-byte integers and truncated ones go through hpack's
    ``decode_integer``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.huffman_memo: dict[bytes, bytes] = {}

    def decode(self, data: bytes, raw: bool = False) -> typing.Any:
        if not raw:
            return super().decode(data, raw)  # h2 asks for raw bytes; others get hpack's
        if type(data) is not bytes:
            data = bytes(data)
        headers: list[HeaderTuple] = []
        inflated = 0
        limit = self.max_header_list_size
        table = self.header_table
        end = len(data)
        at = 0
        while at < end:
            first = data[at]
            if first & 0x80:  # an indexed field
                index = first & 0x7F
                if index == 0x7F:
                    index, used = _decode_integer(memoryview(data)[at:], 7)
                    at += used
                else:
                    at += 1
                header = _new_tuple(HeaderTuple, table.get_by_index(index))
            elif first & 0x40 or not first & 0x20:  # a literal
                header, at = self._literal(data, at, first)
            else:  # a dynamic table size update, only before the first field
                if headers:
                    raise hpack.HPACKDecodingError(
                        "Table size update not at the start of the block"
                    )
                at += self._update_encoding_context(memoryview(data)[at:])
                continue
            headers.append(header)
            inflated += 32 + len(header[0]) + len(header[1])
            if inflated > limit:
                raise hpack.OversizedHeaderListError(
                    f"A header list larger than {limit} has been received"
                )
        self._assert_valid_table_size()
        return headers

    def _literal(self, data: bytes, at: int, first: int) -> tuple[HeaderTuple, int]:
        """The literal field at ``data[at]``, and where the next one starts."""
        indexing = bool(first & 0x40)
        if indexing:
            name_index, prefix = first & 0x3F, 6
        else:
            name_index, prefix = first & 0x0F, 4
        if name_index:
            if name_index == (1 << prefix) - 1:
                name_index, used = _decode_integer(data[at:], prefix)
            else:
                used = 1
            name = self.header_table.get_by_index(name_index)[0]
            at += used
        else:
            name, at = self._string(data, at + 1)
        value, at = self._string(data, at)
        if indexing:
            self.header_table.add(name, value)
        if first & 0x10 and not indexing:
            return _new_tuple(NeverIndexedHeaderTuple, (name, value)), at
        return _new_tuple(HeaderTuple, (name, value)), at

    def _string(self, data: bytes, at: int) -> tuple[bytes, int]:
        """The string literal at ``data[at]``, and where what follows starts."""
        if at < len(data) and data[at] & 0x7F != 0x7F:
            length, used = data[at] & 0x7F, 1
        else:
            length, used = _decode_integer(data[at:], 7)  # long, or the error
        start = at + used
        stop = start + length
        if stop > len(data):
            raise hpack.HPACKDecodingError("Truncated header block")
        coded = data[start:stop]
        if not data[at] & 0x80:
            return coded, stop
        memo = self.huffman_memo
        decoded = memo.get(coded)
        if decoded is None:
            decoded = _decode_huffman(coded)
            if length <= _MEMO_STRING:
                if len(memo) >= _MEMO_ENTRIES:
                    del memo[next(iter(memo))]
                memo[coded] = decoded
        return decoded, stop


# Request header lists whose encoding a connection remembers (each of at most
# _MEMO_FIELDS fields, all already in the tables: nothing new to send).
_ENCODED_ENTRIES = 32
_MEMO_FIELDS = 32


class _CountedTable(hpack.table.HeaderTable):
    """hpack's header table, counting the changes to it (entries, size)."""

    changes = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.changes += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return int(self._maxsize)

    @maxsize.setter
    def maxsize(self, new: int) -> None:
        self.changes += 1
        hpack.table.HeaderTable.maxsize.fset(self, new)  # type: ignore[attr-defined]


class MemoEncoder(hpack.Encoder):
    """hpack's encoder, remembering the block of a header list that added
    nothing to the dynamic table (every field found there or in the static
    table): the same list encodes to the same bytes for as long as the table
    is unchanged. The same requests sent again on a connection are such
    lists. Only lists of plain ``(bytes, bytes)`` pairs are remembered (a
    ``NeverIndexedHeaderTuple`` compares equal to its plain pair); any change
    to the table (an entry added, a size change) retires, and drops, every
    block remembered before it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.header_table = self._table = _CountedTable()
        # Blocks valid for the table as it was after its ``changes``-th change.
        self.encoded_memo: dict[tuple[tuple[bytes, bytes], ...], tuple[bool, bytes]] = {}
        self._memo_changes = 0

    def encode(self, headers: typing.Any, huffman: bool = True) -> bytes:
        key = _plain(headers)
        if key is None:
            return super().encode(headers, huffman)
        table, memo = self._table, self.encoded_memo
        if table.changes != self._memo_changes:
            # The table moved on: every block remembered is stale, let go of it.
            memo.clear()
            self._memo_changes = table.changes
        known = memo.get(key)
        if known is not None and known[0] is huffman:
            return known[1]
        resized = table.resized  # then the block starts with a size update
        block = super().encode(headers, huffman)
        if table.changes != self._memo_changes:
            memo.clear()
            self._memo_changes = table.changes
        elif not resized:
            if len(memo) >= _ENCODED_ENTRIES:
                del memo[next(iter(memo))]
            memo[key] = (huffman, block)
        return block


def _plain(headers: typing.Any) -> tuple[tuple[bytes, bytes], ...] | None:
    """``headers`` as a key, if a short list of plain pairs of bytes."""
    if type(headers) is not list or len(headers) > _MEMO_FIELDS:
        return None
    for field in headers:
        if type(field) is not tuple or len(field) != 2:
            return None
        if type(field[0]) is not bytes or type(field[1]) is not bytes:
            return None
    return tuple(headers)


class _Silent(h2.config.DummyLogger):
    """h2's no-op logger, for less than it costs: a builtin that ignores its
    arguments instead of a Python call, and h2 logs some ten debug lines per
    request."""

    debug = trace = "".format  # type: ignore[assignment]


_SILENT = _Silent()


class ClientH2(h2.connection.H2Connection):
    """h2's client connection, with what h2 lacks against a hostile server.

    h2#1181: h2 moves its state machine to CLOSED on a received GOAWAY and
    would then reject the frames of the streams the server promised to
    finish, and it drops pending output; undone here.

    Limits, each a connection error (h2 queues a GOAWAY naming it): more than
    ``MAX_IDLE_FRAMES`` frames in a row that carry nothing for any stream
    (ENHANCE_YOUR_CALM), a frame longer than we allow (FRAME_SIZE_ERROR, at
    its header), a header block over ``MAX_HEADER_BLOCK`` bytes
    (ENHANCE_YOUR_CALM), HEADERS on an even stream (the server may open none:
    pushes are off) and RST_STREAM on a stream never opened (PROTOCOL_ERROR,
    RFC 9113 5.1; h2 lets both pass).
    """

    def __init__(self) -> None:
        # Our request headers are validated when the Request is built, and
        # request_headers lower-cases names and drops connection-specific
        # ones, so h2 need not check them again. Received header blocks are
        # checked by malformed, for a fraction of what h2's check costs;
        # h2's inbound normalising only joins request cookies.
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
            logger=_SILENT,
        )
        super().__init__(config=config)
        # h2 finds a frame's handler by its class: the quiet twins share them.
        table = self._frame_dispatch_table
        for frame_type, quiet in _QUIET.items():
            if frame_type in table:
                table[quiet] = table[frame_type]
        decoder = MemoDecoder()
        decoder.max_header_list_size = self.decoder.max_header_list_size
        self.decoder = decoder
        self.encoder = MemoEncoder()
        self.held_output = b""
        self.incoming_buffer: _FrameBuffer = _FrameBuffer()
        # Frames since the last one that carried something for a stream.
        self.idle_frames = 0

    def _receive_frame(self, frame: typing.Any) -> typing.Any:
        events = super()._receive_frame(frame)
        if events:
            # A stream's last event from a frame says what the frame carried.
            last: typing.Any = events[-1]
            kind = type(last)
            if kind in _PROGRESS and (kind is not h2.events.DataReceived or last.data):
                self.idle_frames = 0
                return events
        self.idle_frames += 1
        if self.idle_frames > MAX_IDLE_FRAMES:
            raise h2.exceptions.DenialOfServiceError(
                f"The server sent {MAX_IDLE_FRAMES} HTTP/2 frames in a row that carried"
                " nothing for any stream (a flood)."
            )
        return events

    def _open_streams(self, remainder: int) -> int:
        # h2's: the streams open (or half closed) with ids of this parity,
        # closed streams moved to _closed_streams as the count goes by.
        count = 0
        closed = []
        for stream_id, stream in self.streams.items():
            state = stream.state_machine.state
            if _STREAM_OPEN[state]:
                if stream_id % 2 == remainder:
                    count += 1
            elif state is _CLOSED:
                closed.append(stream_id)
        for stream_id in closed:
            self._closed_streams[stream_id] = self.streams.pop(stream_id).closed_by
        return count

    def _receive_headers_frame(self, frame: typing.Any) -> typing.Any:
        if not frame.stream_id & 1:
            raise h2.exceptions.ProtocolError(
                f"The server sent HEADERS on stream {frame.stream_id}, which it may not open."
            )
        try:
            return super()._receive_headers_frame(frame)
        except h2.exceptions.ProtocolError as exc:
            # h2 calls a field block it cannot decode a PROTOCOL_ERROR; RFC 9113
            # 4.3 names it COMPRESSION_ERROR (our decoder's state is lost).
            if type(exc) is h2.exceptions.ProtocolError and isinstance(
                exc.__cause__, hpack.HPACKError
            ):
                raise _CompressionError(str(exc)) from exc
            raise

    def _receive_rst_stream_frame(self, frame: typing.Any) -> typing.Any:
        stream_id = frame.stream_id
        if not stream_id & 1 or stream_id > self.highest_outbound_stream_id:
            raise h2.exceptions.ProtocolError(
                f"The server reset stream {stream_id}, which was never opened."
            )
        return super()._receive_rst_stream_frame(frame)

    def start(self) -> None:
        """Queue the connection preface and our SETTINGS."""
        codes = h2.settings.SettingCodes
        self.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                codes.ENABLE_PUSH: 0,
                codes.MAX_CONCURRENT_STREAMS: 100,
                codes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                # Fewer, larger DATA frames from servers that send what we allow.
                codes.MAX_FRAME_SIZE: MAX_FRAME_SIZE,
                codes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
            },
        )
        # The preface must not carry settings h2 does not know we sent.
        del self.local_settings[codes.ENABLE_CONNECT_PROTOCOL]
        self.initiate_connection()
        # h2 would only raise its frame limit once the server acknowledges
        # our SETTINGS, and checks it per read: a read holding the ACK and
        # a larger frame after it would fail. Accepting early is harmless.
        self.max_inbound_frame_size = MAX_FRAME_SIZE
        self.increment_flow_control_window(CONNECTION_WINDOW - 65535)

    def mid_frame(self) -> bool:
        """Whether a frame (or header block) has begun to arrive and not ended."""
        return self.incoming_buffer.mid_frame()

    def last_words(self, error_code: int) -> None:
        """After a connection error of the server's: of everything queued to
        send, keep only a GOAWAY naming the error (acknowledgements of the
        flood that caused it would only delay it)."""
        self.data_to_send()
        frame = GoAwayFrame(0, last_stream_id=self.highest_inbound_stream_id)
        frame.error_code = error_code
        self.held_output = frame.serialize()

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


def may_send(connection: h2.connection.H2Connection, stream_id: int) -> bool:
    """Whether our side of ``stream_id`` is still open (it may take DATA)."""
    stream = connection.streams.get(stream_id)
    return stream is not None and stream.state_machine.state in _SENDING


_SENDING = frozenset((h2.stream.StreamState.OPEN, h2.stream.StreamState.HALF_CLOSED_REMOTE))
# What h2 counts as open against the concurrency limit (RFC 9113 5.1.2), by state.
_STREAM_OPEN = h2.stream.STREAM_OPEN
_CLOSED = h2.stream.StreamState.CLOSED


def reset_error(event: h2.events.StreamReset) -> BaseException:
    """What a stream reset by the server (or by h2 for the server's fault) raises."""
    code = event.error_code
    if event.remote_reset and code == REFUSED_STREAM:
        return StreamRefused()
    if event.remote_reset:
        return RemoteProtocolError(f"The server reset HTTP/2 stream {event.stream_id} ({code!r}).")
    return RemoteProtocolError(
        f"HTTP/2 stream {event.stream_id} was reset for the server's error ({code!r})."
    )


def describe(exc: h2.exceptions.ProtocolError) -> str:
    """The message of a connection error h2 found (some carry only a stream id)."""
    stream_id = getattr(exc, "stream_id", None)
    if stream_id is not None:
        return f"The server sent a frame on HTTP/2 stream {stream_id}, which is not open."
    return str(exc) or type(exc).__name__
