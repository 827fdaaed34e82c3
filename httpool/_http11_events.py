"""h11 events for requests the models already validated, and response heads read once.

Theory of operation: h11 stays the HTTP/1.1 state machine and parser of
record; this module only spares it work it would repeat on every request.

Requests: ``Request`` has checked header names (RFC 9110 tokens) and values
(no CR, LF, NUL or other control but HTAB) when it was built, so
``request_event`` hands h11 its ``Headers`` ready-made (``_parsed=True``) and
h11 skips its second validation and normalisation. It re-checks what is
cheap and would be dangerous to trust blindly, since ``request.headers`` is
a mutable list that may have changed since: each name is one proven a token,
each value free of controls. Whatever h11 would refuse or rewrite (a value
with surrounding whitespace, several or odd ``Content-Length`` or
``Transfer-Encoding`` values) takes h11's own validating path, so its
errors and normalisation stay exactly h11's.

Responses: ``response_head`` walks the parsed headers once, giving the raw
pairs for the caller and the body framing h11 chose (h11 has validated and
normalised ``Content-Length`` and ``Transfer-Encoding`` by then).

This depends on h11 internals (``Headers`` and its ``_full_items``, the
``_parsed`` flag), which is why the dependency is pinned below 0.17; the
tests check the events this builds against h11's own.
"""

from __future__ import annotations

import re

import h11
from h11._headers import Headers as _H11Headers

from ._exceptions import H11_SEND_ERRORS, RemoteProtocolError, translate
from ._models import Headers, Request, proven_header_name

# What h11 refuses in a value and the model does not (or not if headers
# were changed after the model checked them): controls, edge whitespace.
_VALUE_H11_REFUSES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]|\A[ \t]|[ \t]\Z")
_FRAMING = (b"content-length", b"transfer-encoding")

# Header names as given -> lowercased; the same few recur on every request.
_CACHE_LIMIT = 1024
_lower: dict[bytes, bytes] = {}


def request_event(request: Request) -> h11.Request:
    """The h11 event for ``request``; LocalProtocolError for one h11 refuses."""
    try:
        headers = _trusted_headers(request.headers)
        if headers is None:
            return h11.Request(
                method=request.method, target=request.url.target, headers=request.headers
            )
        # Method and target are still checked by h11, Host counted.
        return h11.Request(
            method=request.method, target=request.url.target, headers=headers, _parsed=True
        )
    except h11.LocalProtocolError as exc:
        raise translate(exc, H11_SEND_ERRORS) from exc


def _trusted_headers(headers: Headers) -> _H11Headers | None:
    """h11's ``Headers`` for ``headers``, or None when h11 must look itself."""
    items = []
    framing = 0
    for name, value in headers:
        lower = _lower.get(name)
        if lower is None:
            if type(name) is not bytes or not proven_header_name(name):
                return None
            lower = name.lower()
            if len(_lower) < _CACHE_LIMIT:
                _lower[name] = lower
        if type(value) is not bytes or _VALUE_H11_REFUSES.search(value) is not None:
            return None
        if lower in _FRAMING:
            # One plain length, or exactly "chunked": what h11 keeps as is.
            framing += 1
            if framing > 1 or not (
                value == b"chunked"
                if lower == b"transfer-encoding"
                else value.isdigit() and len(value) <= 20
            ):
                return None
        items.append((name, lower, value))
    return _H11Headers(items)


def response_head(event: h11.Response | h11.InformationalResponse) -> tuple[Headers, int | None]:
    """The raw ``(name, value)`` pairs of ``event`` and its Content-Length.

    The length is None when the body is chunked or has no Content-Length (it
    is then delimited by h11, or by the connection closing). A head with both
    ``Transfer-Encoding`` and ``Content-Length`` is refused with
    ``RemoteProtocolError``: RFC 9112 section 6.3 says to handle it as an
    error, since a proxy on the way that framed it by the other header would
    see a different response (response splitting).
    """
    raw: Headers = []
    append = raw.append
    length: int | None = None
    chunked = False
    for name, lower, value in event.headers._full_items:
        append((name, value))
        if lower == b"content-length":
            length = int(value)  # h11 has validated it: digits only, one value
        elif lower == b"transfer-encoding":
            chunked = True
    if chunked and length is not None:
        raise RemoteProtocolError(
            "The response has both Transfer-Encoding and Content-Length"
            " (RFC 9112 section 6.3: a possible response-splitting attempt); refused."
        )
    return raw, None if chunked else length
