"""The strict HTTP/1.1 fast path in front of h11: request heads by one join,
the common response head by one strict pass.

Theory of operation: h11 stays the parser of record (``_h11.py``). Both
functions here either produce exactly what h11 would, or decline with None,
and then h11 does the work unchanged, with its own behaviour and errors. They
decline everything that is not the common, strict shape; being stricter than
h11 only costs speed, never correctness, and being looser is a bug that
``tests/unit/test_http11_fast_diff.py`` (hypothesis, against h11 itself) is
there to catch.

``request_head`` writes ``METHOD target HTTP/1.1``, then the headers as
given, as h11 writes them when it is handed headers it trusts: only for a
method whose response h11 frames in the ordinary way (not HEAD, not CONNECT),
no ``Upgrade`` (a protocol switch h11 must track), ``Host`` first and only
once (h11 moves it first and counts it), names that are tokens, values that
h11 takes as they are (no control but HTAB, no whitespace at either end), and
the body's framing that h11 would write without a byte of its own: no
``Transfer-Encoding``, at most one plain ``Content-Length`` that equals the
body's length (or none for an empty body). It also says whether the request
lets the connection be kept alive (no ``close`` in ``Connection``), which h11
would have learnt from it.

``parse_response_head`` takes the first bytes read of a response and accepts
only a head complete in them, within the size limit: the status line
``HTTP/1.1 NNN reason`` (status 200 to 999 but 204 and 304: no 1xx, no
bodiless status), then header lines ``token:`` value, each ended by CRLF (no
bare CR or LF anywhere, no obs-fold, a value of visible or obs-text bytes
with spaces and tabs between them), exactly one ``Content-Length`` of at most
20 digits and no ``Transfer-Encoding``. It returns the status, the reason,
the ``(name, value)`` pairs as h11 gives them (raw name, value without the
whitespace around it), the length, whether the response lets the connection
be kept alive, and where the head ends. The request method is the caller's to
check (HEAD and CONNECT frame the response otherwise).

It knows nothing of h11 (no import), streams or connections.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

# Methods whose response h11 frames by its headers alone.
_PLAIN_METHODS = frozenset((b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"))
_TARGET = re.compile(rb"[\x21-\x7e]+")  # h11's request-target: visible ASCII
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# What h11 would refuse or rewrite in a value it is handed: controls, edge whitespace.
_VALUE_REFUSED = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]|\A[ \t]|[ \t]\Z")
# Names the head's framing or h11's state depends on.
_SPECIAL = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade"))

# Bounded caches of what was proven once: the same few names and values recur
# on every request (a bytes object keeps its hash, so a hit costs little).
_CACHE_LIMIT = 1024
_names: dict[bytes, bytes] = {}  # token name -> lowercased
_values: set[bytes] = set()  # values proven free of what h11 refuses
_targets: set[bytes] = set()  # request targets proven visible ASCII

# The response head. Field values: visible ASCII and obs-text, with spaces
# and tabs only between them; every line ends in CRLF. A header line is
# matched only where a line starts (after CRLF), so that counting matches
# against CRLFs proves that every line matched. The classes next to each
# other are disjoint, so a line parses one way only: possessive quantifiers
# (``*+``, ``++``: Python 3.11+) match exactly what the greedy ones match, and
# spare the backtracking at each line's end (about 4 % of a request's
# instructions). Python 3.10 gets the greedy forms; the differential tests
# run on every version.
_P = "+" if sys.version_info >= (3, 11) else ""
_STATUS_LINE = re.compile(
    rf"HTTP/1\.1 ([0-9]{{3}})(?: ([\t\x20-\x7e\x80-\xff]*{_P}))?\r\n".encode()
)
_VCHAR = r"[\x21-\x7e\x80-\xff]"
_FIELD_LINE = re.compile(
    (
        rf"(?<=\r\n)([-!#$%&'*+.^_`|~0-9a-zA-Z]+{_P}):[ \t]*{_P}"
        rf"((?:{_VCHAR}+{_P}(?:[ \t]+{_P}{_VCHAR}+{_P})*{_P})?{_P})[ \t]*{_P}\r\n"
    ).encode()
)
_CONTENT_LENGTH = re.compile(
    rf"\r\ncontent-length:[ \t]*{_P}([0-9]{{1,20}})[ \t]*{_P}\r\n".encode()
)


def request_head(
    method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]], body_length: int
) -> tuple[bytes, bool] | None:
    """The head h11 would write for this request, and whether the request
    keeps the connection alive; None where h11 must do it.

    ``body_length`` is the length of the whole body, known in advance."""
    if method not in _PLAIN_METHODS or type(target) is not bytes:
        return None
    if target not in _targets:
        if not _TARGET.fullmatch(target):
            return None
        if len(_targets) < _CACHE_LIMIT:
            _targets.add(target)
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    keep_alive = True
    length = 0
    framed = False
    first = True
    for name, value in headers:
        lower = _names.get(name)
        if lower is None:
            if type(name) is not bytes or _TOKEN.fullmatch(name) is None:
                return None
            lower = name.lower()
            if len(_names) < _CACHE_LIMIT:
                _names[name] = lower
        if type(value) is not bytes:
            return None  # h11 converts what it can, or refuses it
        if value not in _values:
            if _VALUE_REFUSED.search(value) is not None:
                return None
            if len(_values) < _CACHE_LIMIT:
                _values.add(value)
        if first:
            if lower != b"host":
                return None  # no Host, or one h11 would move first
            first = False
        elif lower in _SPECIAL:
            if lower == b"content-length":
                if framed or not value.isdigit() or len(value) > 20:
                    return None
                framed = True
                length = int(value)
            elif lower == b"connection":
                keep_alive = keep_alive and not _says_close(value)
            else:  # a second Host, Transfer-Encoding, Upgrade
                return None
        parts += (name, b": ", value, b"\r\n")
    if first or length != body_length:
        return None
    parts.append(b"\r\n")
    return b"".join(parts), keep_alive


def _says_close(value: bytes) -> bool:
    """Whether a Connection value lists ``close`` (as h11 reads a comma header)."""
    return any(item.strip() == b"close" for item in value.lower().split(b","))


def keeps_alive(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether no ``Connection`` header of ``headers`` lists ``close``."""
    for name, value in headers:
        if name.lower() == b"connection" and _says_close(value):
            return False
    return True


def parse_response_head(
    data: bytes, limit: int
) -> tuple[int, bytes, list[tuple[bytes, bytes]], int, bool, int] | None:
    """``(status, reason, headers, length, keep_alive, end)`` for a response
    head at the start of ``data`` that h11 would parse to exactly these, with
    a body of ``length`` bytes from ``data[end:]`` on; None for any other.

    ``limit`` is the most bytes the head may take."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or end + 4 > limit:
        return None
    status_line = _STATUS_LINE.match(data)
    if status_line is None:
        return None
    status = int(status_line[1])
    if status < 200 or status == 204 or status == 304:
        return None
    start = status_line.end()
    stop = end + 2
    headers: list[tuple[bytes, bytes]] = _FIELD_LINE.findall(data, start, stop)
    if len(headers) != data.count(b"\r\n", start, stop):
        return None  # a line that is not a strict header line
    lowered = data[start - 2 : stop].lower()
    if lowered.count(b"\r\ncontent-length:") != 1 or b"\r\ntransfer-encoding:" in lowered:
        return None
    length = _CONTENT_LENGTH.search(lowered)
    if length is None:
        return None
    keep_alive = b"close" not in lowered or keeps_alive(headers)
    return status, status_line[2] or b"", headers, int(length[1]), keep_alive, end + 4
