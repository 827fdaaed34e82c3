"""httpool's HPACK decoder (``MemoDecoder`` in ``_h2.py``) against hpack's own.

The decoder remembers Huffman-decoded strings and decodes in one loop; it
must give exactly what hpack's ``Decoder`` gives, raise what it raises, leave
the dynamic table as it leaves it, and keep its memory bounded whatever the
server sends.
"""

from __future__ import annotations

import re
import typing

import hpack
import pytest
from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpool import _h2
from httpool._h2 import ClientH2, MemoDecoder, MemoEncoder

Outcome = tuple[str, typing.Any]

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def outcome(decoder: hpack.Decoder, block: bytes) -> Outcome:
    """What decoding ``block`` gives: the headers with their types, or the error."""
    try:
        headers = decoder.decode(block, raw=True)
    except Exception as exc:  # the comparison is the point
        # An error message may show a memoryview, whose address differs.
        return ("error", (type(exc), _ADDRESS.sub("", str(exc))))
    return ("headers", [(type(h), type(h[0]), type(h[1]), tuple(h)) for h in headers])


def state(decoder: hpack.Decoder) -> tuple[typing.Any, ...]:
    table = decoder.header_table
    return (list(table.dynamic_entries), table.maxsize, table._current_size)


def assert_same(blocks: list[bytes], max_list: int = 65536, max_table: int = 4096) -> None:
    """Decode ``blocks`` in order with both decoders: the same at every step."""
    ours, theirs = MemoDecoder(), hpack.Decoder()
    for decoder in (ours, theirs):
        decoder.max_header_list_size = max_list
        decoder.max_allowed_table_size = max_table
    for block in blocks:
        assert outcome(ours, block) == outcome(theirs, block)
        assert state(ours) == state(theirs)


# Names and values as a server may send them, and as it may not.
_text = st.one_of(
    st.sampled_from([b"server", b"date", b"content-type", b"etag", b"nginx/1.22.1", b"14", b""]),
    st.binary(max_size=40),
    st.binary(min_size=100, max_size=300),
)
_header = st.tuples(_text, _text, st.booleans())  # name, value, sensitive
_block = st.tuples(
    st.lists(_header, max_size=12),
    st.booleans(),  # Huffman
    st.one_of(st.none(), st.integers(min_value=0, max_value=8192)),  # table size change
)


def encode_all(blocks: list[typing.Any]) -> list[bytes]:
    encoder = hpack.Encoder()
    encoded = []
    for headers, huffman, table_size in blocks:
        if table_size is not None:
            encoder.header_table_size = table_size
        fields = [
            hpack.NeverIndexedHeaderTuple(n, v) if sensitive else (n, v)
            for n, v, sensitive in headers
        ]
        encoded.append(encoder.encode(fields, huffman=huffman))
    return encoded


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_block, min_size=1, max_size=8), st.sampled_from([65536, 600, 100]))
def test_valid_blocks_decode_as_hpack_decodes_them(blocks: list[typing.Any], limit: int) -> None:
    # Repeated blocks: the second time round, strings come from the memo.
    encoded = encode_all(blocks)
    assert_same(encoded + encoded, max_list=limit)


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.integers(0, 255)),
)


def mutate(block: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(block)
    for kind, where, byte in mutations:
        if kind == "insert":
            at = where % (len(data) + 1)
            data[at:at] = bytes([byte])
        elif data:
            at = where % len(data)
            if kind == "flip":
                data[at] ^= byte
            else:
                del data[at:]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_block, min_size=1, max_size=5),
    st.lists(st.lists(_mutation, min_size=1, max_size=3), min_size=1, max_size=5),
    st.sampled_from([65536, 300]),
    st.sampled_from([4096, 100]),
)
def test_damaged_blocks_fail_as_hpack_fails(
    blocks: list[typing.Any],
    mutations: list[list[tuple[str, int, int]]],
    limit: int,
    max_table: int,
) -> None:
    encoded = encode_all(blocks)
    damaged = [mutate(block, mutations[i % len(mutations)]) for i, block in enumerate(encoded)]
    # Each good block before and after its damaged twin: the memo is warm, and
    # the table state after an error carries into the next block.
    assert_same(
        [b for pair in zip(encoded, damaged, encoded, strict=True) for b in pair],
        max_list=limit,
        max_table=max_table,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=6))
def test_arbitrary_bytes_decode_or_fail_as_hpack(blocks: list[bytes]) -> None:
    assert_same(blocks + blocks)


_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def huffman_literal(value: bytes) -> bytes:
    """A literal field never indexed, name ``x-h`` as it is, value Huffman-coded."""
    return literal(_HUFFMAN.encode(value))


def literal(coded: bytes) -> bytes:
    length = encode_integer(len(coded), 7)
    length[0] |= 0x80
    return b"\x10\x03x-h" + bytes(length) + coded


@pytest.mark.parametrize(
    ("coded", "error"),
    [
        (b"\xff\xff\xff\xff", "Invalid Huffman string"),  # holds EOS
        (b"\x1c\x7f\xff", "Incomplete Huffman string"),  # padding longer than 7 bits
        (b"\x00", "Incomplete Huffman string"),  # padding not all ones
    ],
)
def test_invalid_huffman_raises_every_time(coded: bytes, error: str) -> None:
    block = literal(coded)
    decoder = MemoDecoder()
    decoder.decode(huffman_literal(b"nginx"), raw=True)  # the memo is in use
    for _ in range(3):
        with pytest.raises(hpack.HPACKDecodingError, match=error):
            decoder.decode(block, raw=True)
    assert coded not in decoder.huffman_memo
    with pytest.raises(hpack.HPACKDecodingError, match=error):
        hpack.Decoder().decode(block, raw=True)


def test_a_remembered_string_is_keyed_by_its_exact_coding() -> None:
    decoder = MemoDecoder()
    coded = _HUFFMAN.encode(b"nginx")
    good = literal(coded)
    assert decoder.decode(good, raw=True) == [(b"x-h", b"nginx")]
    assert decoder.huffman_memo == {coded: b"nginx"}
    # The same bytes and one more padding byte: no longer a valid string.
    with pytest.raises(hpack.HPACKDecodingError, match="Incomplete Huffman string"):
        decoder.decode(literal(coded + b"\xff"), raw=True)
    assert decoder.decode(good, raw=True) == [(b"x-h", b"nginx")]


def test_many_distinct_strings_keep_the_memo_bounded() -> None:
    decoder = MemoDecoder()
    decoder.decode(huffman_literal(b"nginx"), raw=True)
    for i in range(5 * _h2._MEMO_ENTRIES):
        value = b"%d-%s" % (i, b"x" * (i % 90))
        assert decoder.decode(huffman_literal(value), raw=True) == [(b"x-h", value)]
        memo = decoder.huffman_memo
        assert len(memo) <= _h2._MEMO_ENTRIES
        assert all(len(coded) <= _h2._MEMO_STRING for coded in memo)
    # The bound the module promises, in bytes held.
    held = sum(len(coded) + len(text) for coded, text in memo.items())
    assert held <= _h2._MEMO_ENTRIES * (_h2._MEMO_STRING + _h2._MEMO_STRING * 8 // 5 + 1)
    # Oldest out first: the first string has gone, the newest is there.
    assert b"nginx" not in memo.values()
    assert memo[_HUFFMAN.encode(value)] == value


def test_long_strings_are_not_remembered() -> None:
    decoder = MemoDecoder()
    value = b"a" * 200
    assert decoder.decode(huffman_literal(value), raw=True) == [(b"x-h", value)]
    assert decoder.huffman_memo == {}


def test_the_header_list_limit_still_holds() -> None:
    decoder = MemoDecoder()
    decoder.max_header_list_size = 100
    block = hpack.Encoder().encode([(b"a", b"b" * 40), (b"c", b"d" * 40)])
    with pytest.raises(hpack.OversizedHeaderListError):
        decoder.decode(block, raw=True)


def test_the_connection_decodes_with_it_and_hpack_limits() -> None:
    connection = ClientH2()
    assert type(connection.decoder) is MemoDecoder
    # What h2 had set on its own decoder before we replaced it.
    assert connection.decoder.max_header_list_size == h2_default_list_size()
    # Unicode decoding (which h2 does not ask for) is hpack's own.
    block = hpack.Encoder().encode([(b"a", b"b")])
    assert connection.decoder.decode(block) == [("a", "b")]


def h2_default_list_size() -> int:
    import h2.connection

    return int(h2.connection.H2Connection().decoder.max_header_list_size)


# ----- the encoder ------------------------------------------------------------------------

_request_field = st.one_of(
    st.sampled_from(
        [(b":method", b"GET"), (b":path", b"/"), (b":path", b"/a"), (b"accept", b"*/*")]
    ),
    st.tuples(st.sampled_from([b"x-a", b"cookie"]), st.binary(max_size=30)),
)
_request = st.tuples(
    st.lists(st.tuples(_request_field, st.booleans()), max_size=8),  # field, never indexed
    st.booleans(),  # Huffman
    st.one_of(st.none(), st.sampled_from([0, 64, 256, 4096])),  # the server's table size
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_request, min_size=1, max_size=12), st.integers(1, 4))
def test_the_encoder_encodes_as_hpack_encodes(requests: list[typing.Any], repeat: int) -> None:
    ours, theirs = MemoEncoder(), hpack.Encoder()
    for fields, huffman, table_size in requests * repeat:
        headers = [hpack.NeverIndexedHeaderTuple(*f) if never else f for f, never in fields]
        if table_size is not None:
            ours.header_table_size = theirs.header_table_size = table_size
        assert ours.encode(list(headers), huffman) == theirs.encode(list(headers), huffman)
        assert list(ours.header_table.dynamic_entries) == list(theirs.header_table.dynamic_entries)
        assert ours.header_table.maxsize == theirs.header_table.maxsize


def test_the_same_request_again_is_not_encoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = MemoEncoder()
    request = [(b":method", b"GET"), (b":path", b"/x"), (b"accept", b"*/*")]
    first = encoder.encode(list(request))  # adds :path and accept to the table
    second = encoder.encode(list(request))  # all indexed now: remembered
    assert second != first
    encoded = []
    monkeypatch.setattr(hpack.Encoder, "encode", lambda *args: encoded.append(args))
    assert encoder.encode(list(request)) == second
    assert encoded == []
    # A change to the table (the server's new size) retires it.
    encoder.header_table_size = 2048
    encoder.encode(list(request))
    assert len(encoded) == 1
    monkeypatch.undo()
    # And a new entry (another path) drops it: no stale block is kept.
    assert tuple(request) not in encoder.encoded_memo
    encoder.encode(list(request))  # starts with the size update: not remembered
    assert tuple(request) not in encoder.encoded_memo
    encoder.encode(list(request))
    assert tuple(request) in encoder.encoded_memo
    encoder.encode([(b":method", b"GET"), (b":path", b"/y")])
    assert encoder.encoded_memo == {}


def test_never_indexed_fields_are_not_taken_for_plain_ones() -> None:
    # Equal as tuples, and the same hash: a memo keyed by them would mix them up.
    never = hpack.NeverIndexedHeaderTuple(b"x-b", b"2")
    assert never == (b"x-b", b"2")
    ours, theirs = MemoEncoder(), hpack.Encoder()
    for headers in ([never], [never], [(b"x-b", b"2")], [(b"x-b", b"2")], [never]):
        assert ours.encode(list(headers)) == theirs.encode(list(headers))
    assert list(ours.encoded_memo) == [((b"x-b", b"2"),)]


def test_remembered_requests_are_bounded() -> None:
    encoder = MemoEncoder()
    for i in range(3 * _h2._ENCODED_ENTRIES):
        request = [(b":method", b"GET"), (b":path", b"/")] * (1 + i % 3) + [(b":scheme", b"http")]
        request += [(b":authority", b"")] * (i // 3)
        encoder.encode(list(request))
        encoder.encode(list(request))
        assert len(encoder.encoded_memo) <= _h2._ENCODED_ENTRIES
    long = [(b":method", b"GET")] * (_h2._MEMO_FIELDS + 1)
    encoder.encode(list(long))
    assert tuple(long) not in encoder.encoded_memo


# ----- h2's count of open streams ------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["open", "end", "reset"]), st.integers(0, 20))))
def test_open_streams_are_counted_as_h2_counts_them(steps: list[tuple[str, int]]) -> None:
    import h2.connection

    ours = ClientH2()
    theirs = h2.connection.H2Connection(config=ours.config)
    for connection in (ours, theirs):
        connection.initiate_connection()
    request = [(b":method", b"GET"), (b":authority", b"a"), (b":scheme", b"http"), (b":path", b"/")]
    for step, which in steps:
        for connection in (ours, theirs):
            streams = sorted(connection.streams)
            if step == "open":
                stream_id = connection.get_next_available_stream_id()
                connection.send_headers(stream_id, request, end_stream=which % 2 == 0)
            elif (
                streams and step == "end" and connection.streams[streams[which % len(streams)]].open
            ):
                stream_id = streams[which % len(streams)]
                if not connection.streams[stream_id].state_machine.state.name.endswith("LOCAL"):
                    connection.end_stream(stream_id)
            elif streams and step == "reset":
                stream_id = streams[which % len(streams)]
                if not connection.streams[stream_id].closed:
                    connection.reset_stream(stream_id)
        assert ours.open_outbound_streams == theirs.open_outbound_streams
        assert ours.open_inbound_streams == theirs.open_inbound_streams
        assert sorted(ours.streams) == sorted(theirs.streams)
        assert ours._closed_streams == theirs._closed_streams
