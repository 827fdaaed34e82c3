"""Hypothesis strategies for HTTP/1.1 response byte streams, valid and broken.

Theory of operation: a response is drawn clean first, in the many shapes h11
parses alike (header names in any case, any optional whitespace around
values, tabs and obs-text inside them, an empty reason or none, Connection
lists, a Content-Length with leading zeros, a body that is short, exact or
followed by more bytes), then given from zero to three defects, each a
malformation the fast path must leave to h11: another version, 1xx or a
bodiless status, control bytes in the reason, bare LF or CR or a stray CR
ending a line, obs-fold, space before the colon, a name that is not a token,
NUL, CR, DEL or other controls in a value, duplicate, listed, signed, padded,
huge or overflowing Content-Length values or none, Transfer-Encoding chunked
or otherwise (with a chunked body or not), a blank line before the status
line, a head over the size limit. About a third of the responses stay clean,
so the fast path is exercised and not only declined. The bytes may then be
mutated (a byte replaced, inserted or deleted anywhere) and are finally cut
into reads at random points.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from hypothesis import strategies as st

# Clean pieces: each one h11 parses as the fast path does.
STATUSES = [b"200", b"200", b"200", b"201", b"206", b"404", b"500", b"999"]
REASONS = [b" OK", b" OK", b"", b" ", b" Not Found", b"  two  spaces ", b" a\tb", b" caf\xc3\xa9"]
NAMES = [b"Server", b"Date", b"X-A", b"content-type", b"ETag", b"Accept-Ranges", b"x!#$%&'*+.^_`|~"]
VALUES = [
    b"nginx",
    b"text/plain",
    b'"abc-e"',
    b"",
    b"a b",
    b"a\tb",
    b"caf\xc3\xa9",
    b"\xff",
    b"x" * 90,
]
BEFORE = [b": ", b": ", b":", b":\t", b":  \t"]  # whitespace before a value
AFTER = [b"", b"", b"", b" ", b"\t", b" \t "]  # and after it
LENGTH_NAMES = [b"Content-Length", b"Content-Length", b"content-length", b"CONTENT-LENGTH"]
CONNECTIONS = [b"keep-alive", b"close", b"Close", b"keep-alive, close", b"upgrade", b" close "]
CONNECTIONS += [b"closed", b"xclose", b"close,", b",close", b"", b"Keep-Alive, CLOSE"]

# Broken pieces.
VERSIONS = [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"http/1.1", b"HTTP/1.1 ", b"HTTP/11"]
BAD_STATUSES = [b"100", b"101", b"103", b"204", b"304", b"099", b"2000", b"20", b"abc", b"+200"]
BAD_REASONS = [b" a\x00b", b" a\x7f", b" a\x01", b" a\x0b", b" a\rb", b"OK", b" " + b"R" * 300]
LINE_ENDS = [b"\n", b"\r", b"\r\r\n", b" \r\n\r\n"]
BAD_NAMES = [b"Bad Name", b"", b"X-\xff", b"X\x00", b"X@Y", b"X:Y", b"Server "]
BAD_VALUES = [b"a\x00b", b"a\rb", b"a\nb", b"\x7f", b"a\x01", b"\x0b", b"\x0c", b"a\x1fb"]
LENGTHS = [b"5, 5", b"5,5", b"5,6", b"+5", b"-5", b"0x5", b"", b"5 5", b"1e3", b"\xef\xbc\x95"]
LENGTHS += [b"5;", b"99999999999999999999", b"999999999999999999999", b"18446744073709551616"]
CODINGS = [b"chunked", b"chunked", b"Chunked", b"gzip, chunked", b"identity", b"chunked, gzip"]
MUTATION_BYTES = [b"\x00", b"\r", b"\n", b"\t", b" ", b":", b",", b"\x7f", b"\x80", b"\xff", b"0"]


class Response:
    """A response in parts, so that defects can be put in the right place."""

    def __init__(self, status_line: bytes, lines: list[bytes], length: int, body: bytes) -> None:
        self.status_line = status_line
        self.lines = lines  # header lines, without their line ends
        self.ends = [b"\r\n"] * len(lines)
        self.status_end = self.blank = b"\r\n"
        self.before = b""
        self.length = length
        self.body = body

    def bytes(self) -> bytes:
        head = self.before + self.status_line + self.status_end
        head += b"".join(line + end for line, end in zip(self.lines, self.ends, strict=True))
        return head + self.blank + self.body


def _pick(draw: random.Random, items: list[bytes]) -> bytes:
    return draw.choice(items)


def _line(draw: random.Random, response: Response, line: bytes) -> None:
    at = draw.randint(0, len(response.lines))
    response.lines.insert(at, line)
    response.ends.insert(at, b"\r\n")


def _defect(draw: random.Random, response: Response) -> None:
    draw.choice(_DEFECTS)(draw, response)


def _version(draw: random.Random, r: Response) -> None:
    r.status_line = _pick(draw, VERSIONS) + r.status_line[8:]


def _status(draw: random.Random, r: Response) -> None:
    r.status_line = r.status_line[:9] + _pick(draw, BAD_STATUSES) + r.status_line[12:]


def _reason(draw: random.Random, r: Response) -> None:
    r.status_line = r.status_line[:12] + _pick(draw, BAD_REASONS)


def _line_end(draw: random.Random, r: Response) -> None:
    where = draw.randint(0, len(r.lines) + 1)
    end = _pick(draw, LINE_ENDS)
    if where == len(r.lines):
        r.status_end = end
    elif where > len(r.lines):
        r.blank = b"\n"
    else:
        r.ends[where] = end


def _fold(draw: random.Random, r: Response) -> None:
    _line(draw, r, _pick(draw, [b" folded", b"\tfolded", b" "]))


def _space_before_colon(draw: random.Random, r: Response) -> None:
    if r.lines:
        at = draw.randint(0, len(r.lines) - 1)
        r.lines[at] = r.lines[at].replace(b":", b" :", 1)


def _bad_name(draw: random.Random, r: Response) -> None:
    _line(draw, r, _pick(draw, BAD_NAMES) + b": x")


def _bad_value(draw: random.Random, r: Response) -> None:
    _line(draw, r, b"X-Bad: " + _pick(draw, BAD_VALUES))


def _lengths(draw: random.Random, r: Response) -> None:
    how = draw.randint(0, 3)
    if how == 0:  # another, the same or not
        _line(
            draw, r, b"Content-Length: " + _pick(draw, [b"%d" % r.length, b"%d" % (r.length + 1)])
        )
    elif how == 1:  # a bad one instead
        r.lines = [line for line in r.lines if not line.lower().startswith(b"content-length")]
        r.ends = r.ends[: len(r.lines)]
        _line(draw, r, _pick(draw, LENGTH_NAMES) + b": " + _pick(draw, LENGTHS))
    else:  # none
        r.lines = [line for line in r.lines if not line.lower().startswith(b"content-length")]
        r.ends = r.ends[: len(r.lines)]


def _coding(draw: random.Random, r: Response) -> None:
    _line(draw, r, b"Transfer-Encoding: " + _pick(draw, CODINGS))
    if draw.random() < 0.5:
        r.body = b"5\r\nhello\r\n" + _pick(draw, [b"0\r\n\r\n", b"0\r\nX: y\r\n\r\n", b"zz", b""])


def _blank_first(draw: random.Random, r: Response) -> None:
    r.before = _pick(draw, [b"\r\n", b"\n", b" "])


def _too_large(draw: random.Random, r: Response) -> None:
    _line(draw, r, b"X-Large: " + b"L" * draw.randint(40, 300))


_DEFECTS: list[Callable[[random.Random, Response], None]] = [
    _version,
    _status,
    _reason,
    _line_end,
    _line_end,
    _fold,
    _space_before_colon,
    _bad_name,
    _bad_value,
    _lengths,
    _lengths,
    _coding,
    _blank_first,
    _too_large,
]


def response(draw: random.Random) -> bytes:
    """One response, clean or with defects."""
    status_line = b"HTTP/1.1 " + _pick(draw, STATUSES) + _pick(draw, REASONS)
    lines = []
    for _ in range(draw.randint(0, 4)):
        value = _pick(draw, VALUES)
        lines.append(_pick(draw, NAMES) + _pick(draw, BEFORE) + value + _pick(draw, AFTER))
    length = _pick(draw, [b"0", b"5", b"13", b"005", b"20"])
    lines.insert(draw.randint(0, len(lines)), _pick(draw, LENGTH_NAMES) + b": " + length)
    if draw.random() < 0.5:
        lines.insert(draw.randint(0, len(lines)), b"Connection: " + _pick(draw, CONNECTIONS))
    size = int(length) + draw.choice((0, 0, 0, 0, 0, -1, 1, 7))
    response = Response(status_line, lines, int(length), b"b" * max(0, size))
    for _ in range(draw.choice((0, 0, 0, 1, 1, 2, 3))):
        _defect(draw, response)
    return response.bytes()


def streams(count: int = 1) -> st.SearchStrategy[tuple[bytes, list[bytes]]]:
    """``count`` responses back to back, maybe mutated, and the same bytes cut
    into reads: ``(data, chunks)``. Drawn from a ``Random`` seeded by
    hypothesis: many times cheaper than a hypothesis draw for each choice
    (hypothesis then shrinks only the seed; the tests ``note`` the bytes)."""
    return st.integers(0, 2**64).map(lambda seed: _stream(random.Random(seed), count))


def _stream(draw: random.Random, count: int) -> tuple[bytes, list[bytes]]:
    data = b""
    cuts: set[int] = set()
    for _ in range(count):
        if data and draw.random() < 0.8:
            cuts.add(len(data))  # the next response in reads of its own
        data += response(draw)
    if draw.randint(0, 4) == 0:
        at = draw.randint(0, len(data))
        byte = _pick(draw, MUTATION_BYTES)
        how = draw.randint(0, 2)
        data = data[:at] + (b"" if how == 2 else byte) + data[at + (how != 1) :]
    if draw.randint(0, 2) != 0:  # or each response in one read, as servers mostly send them
        cuts.update(draw.randint(1, max(1, len(data) - 1)) for _ in range(draw.randint(1, 3)))
    ends = sorted(cuts)
    chunks = [data[a:b] for a, b in zip([0, *ends], [*ends, len(data)], strict=True) if data[a:b]]
    return data, chunks
