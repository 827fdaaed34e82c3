"""Is a received HTTP/2 header block well formed? One pass, in place of h2's.

Theory of operation: h2 can check received header blocks itself
(``validate_inbound_headers``), as a chain of seven generators that look at
every header, and in two of them at every byte, in Python. On a small
response that was the largest single cost of a request after HPACK decoding.
httpool turns h2's check off and runs ``malformed`` on the blocks of its own
streams instead: the same rules of RFC 9113 (sections 8.2 and 8.3) as h2
applies to a response, in one loop with one regular expression per value,
and per name only the first time that name is seen.

The rules, for a response head (informational or final) and for trailers:

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

CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_NAME = re.compile(rb"[^\x00-\x20A-Z:\x7f-\xff]+")
_BAD_VALUE = re.compile(rb"[\x00\n\r]|\A[ \t]|[ \t]\Z")
_STATUS = re.compile(rb"[0-9]{3}")

# Names already found valid; the same few recur on every response.
_CACHE_LIMIT = 1024
_valid_names: set[bytes] = set()


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
            if _STATUS.fullmatch(value) is None:
                return f"bad :status {value!r}"
            status_seen = True
            continue
        if name not in _valid_names:
            problem = _name_problem(name, trailers)
            if problem is not None:
                return problem
        regular_seen = True
        if _BAD_VALUE.search(value) is not None:
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
