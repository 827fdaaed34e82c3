"""HTTP/2 header fields: what a request's headers become, and the check of
the header blocks received.

Theory of operation
-------------------
``request_headers``: a request's fields as HTTP/2 sends them, pseudo-headers
first; they were validated when the ``Request`` was built, so h2's outbound
checks are off (``ClientH2`` in ``_h2.py``, the module that knows h2).

Received header blocks: h2 can check them itself (``validate_inbound_headers``),
as a chain of seven generators that look at every header, and in two of them at
every byte, in Python. On a small response that was the largest single cost of
a request after HPACK decoding. httpool turns h2's check off and runs
``malformed`` on the blocks of its own streams instead: the same rules of RFC
9113 (sections 8.2 and 8.3) as h2 applies to a response, in one loop with one
regular expression per value, and per name only the first time that name is
seen:

- names are non-empty, with no uppercase letter, no control, space or byte
  above 0x7e, and no colon except the leading one of a pseudo-header;
- values hold no NUL, CR or LF and do not start or end with a space or tab;
- no connection-specific field (``connection``, ``keep-alive``,
  ``proxy-connection``, ``transfer-encoding``, ``upgrade``), and ``te`` only
  as ``trailers``;
- a head has exactly one pseudo-header, ``:status``, first; its value is
  three digits (h2 leaves that unchecked). Trailers have no pseudo-header.

A malformed block is a stream error (RFC 9113 section 8.1.1): the caller
fails that stream only, where h2's check failed the whole connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._models import Request

CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_NAME = re.compile(rb"[^\x00-\x20A-Z:\x7f-\xff]+")
# A value may hold none of these (and may not start or end with a space or
# tab): checked with bytes methods, a third of what a regular expression costs.
_VALUE_FORBIDDEN = b"\x00\r\n"
_VALUE_TRIMMED = b" \t"

# Names already found valid; the same few recur on every response.
_CACHE_LIMIT = 1024
_valid_names: set[bytes] = set()

# What a request's HTTP/1.1 headers lose in HTTP/2: the connection-specific
# fields (RFC 9113 section 8.2.2), and Host, which becomes :authority.
HOP_BY_HOP = CONNECTION_SPECIFIC | {b"host"}


def request_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """HTTP/2 request headers: pseudo-headers first, lower-case names, no
    connection-specific fields (``te`` only as ``trailers``)."""
    url = request.url
    authority = None
    fields = []
    for name, value in request.headers:
        lname = name.lower()
        if lname == b"host":
            authority = value
        elif lname in HOP_BY_HOP or (lname == b"te" and value.lower() != b"trailers"):
            continue
        else:
            fields.append((lname, value))
    if authority is None:
        authority = url.host if url.port is None else b"%b:%d" % (url.host, url.port)
    return [
        (b":method", request.method),
        (b":authority", authority),
        (b":scheme", url.scheme),
        (b":path", url.target),
        *fields,
    ]


def malformed(headers: Iterable[tuple[bytes, bytes]], *, trailers: bool = False) -> str | None:
    """Why ``headers``, as received, break RFC 9113; None when they do not."""
    status_seen = False
    regular_seen = False
    for name, value in headers:
        if name == b":status" and not trailers:
            if status_seen:
                return "more than one :status"
            if regular_seen:
                return ":status after a regular header"
            if len(value) != 3 or not value.isdigit():
                return f"bad :status {value!r}"
            status_seen = True
            continue
        if name not in _valid_names:
            problem = _name_problem(name, trailers)
            if problem is not None:
                return problem
        regular_seen = True
        if (
            len(value.translate(None, _VALUE_FORBIDDEN)) != len(value)
            or value.strip(_VALUE_TRIMMED) != value
        ):
            return f"illegal value {value!r} for header {name!r}"
        if name == b"te" and value.lower() != b"trailers":
            return f"te header {value!r} (only 'trailers' is allowed)"
    if not status_seen and not trailers:
        return "no :status"
    return None


def _name_problem(name: bytes, trailers: bool) -> str | None:
    if name[:1] == b":":
        where = "trailers" if trailers else "a response"
        return f"pseudo-header {name!r} in {where}"
    if _NAME.fullmatch(name) is None:
        return f"illegal header name {name!r}"
    if name in CONNECTION_SPECIFIC:
        return f"connection-specific header {name!r}"
    if len(_valid_names) < _CACHE_LIMIT:
        _valid_names.add(name)
    return None
