"""h11 as httpool drives it: the one module that knows h11 beyond its events.

Theory of operation: h11 stays the HTTP/1.1 state machine and parser of
record. ``ClientParser`` is the client side of one connection as
``_async/http11.py`` uses it: it sends events and returns h11's pieces
uncopied, takes received bytes, hands out events, and answers the few
questions the connection asks about h11's states (is the response head still
awaited, did our side end cleanly, does a body follow, what was buffered past
the head). It also bounds the heads of one response (1xx included) to
``max_incomplete_event_size`` bytes in total, which h11 alone does not. It
knows nothing of streams, pools or timeouts; ``http11.py`` knows nothing of
h11's states, only of the events re-exported here.

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

This is the only module that depends on h11 internals (``h11._headers.Headers``
built from ``(raw, lowercased, value)`` triples and its ``_full_items``, the
``_parsed`` flag of ``h11.Request``, the 431 ``error_status_hint`` of a head
too large), which is why pyproject.toml pins h11 below 0.17, and no other
module but ``_exceptions.py`` (h11's public error types) imports h11 at all
(tests/test_h11_adapter.py checks both). The tests check the events this
builds against h11's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import h11
from h11 import NEED_DATA as NEED_DATA
from h11 import PAUSED as PAUSED
from h11 import Data as Data
from h11 import EndOfMessage as EndOfMessage
from h11 import Event as Event
from h11 import InformationalResponse as InformationalResponse
from h11 import Response as Response
from h11._headers import Headers as _H11Headers

from ._exceptions import H11_RECEIVE_ERRORS, H11_SEND_ERRORS, RemoteProtocolError, translate
from ._http11_fast import parse_response_head as parse_response_head
from ._http11_fast import request_head as request_head
from ._models import ByteStream, Headers, Request, proven_header_name

# What h11 refuses in a value and the model does not (or not if headers
# were changed after the model checked them): controls, edge whitespace.
_VALUE_H11_REFUSES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]|\A[ \t]|[ \t]\Z")
_FRAMING = (b"content-length", b"transfer-encoding")

# Header names as given -> lowercased; the same few recur on every request.
_CACHE_LIMIT = 1024
_lower: dict[bytes, bytes] = {}

_END = h11.EndOfMessage()  # events are immutable: one serves every request
# The common versions, looked up without a call; ``http_version`` for the rest.
HTTP_VERSIONS = {b"1.1": b"HTTP/1.1", b"1.0": b"HTTP/1.0"}
# A request sent past h11: method, target, headers, body.
_Sent = tuple[bytes, bytes, tuple[tuple[bytes, bytes], ...], bytes]
# A response head parsed past h11: status, reason, headers, Content-Length.
FastHead = tuple[int, bytes, Headers, int]
_SEND_RESPONSE = h11.SEND_RESPONSE
_SEND_BODY = h11.SEND_BODY
_DONE = h11.DONE


class ClientParser:
    """h11's client side of one HTTP/1.1 connection, request after request.

    Args:
        max_head_size: the most bytes the heads of one response may take.
    """

    __slots__ = (
        "_fast",
        "_fresh",
        "_h11",
        "_head_bytes",
        "_keep_alive",
        "_leftover",
        "_length",
        "_limit",
        "_untold",
        "pristine",
    )

    def __init__(self, max_head_size: int) -> None:
        self._limit = max_head_size
        self._fresh = False
        self._keep_alive = False  # the request sent past h11 lets the connection live
        self.renew()

    def renew(self) -> None:
        """Start over with a fresh h11 connection (for the next request after a
        body that bypassed h11, which therefore never saw it end)."""
        if not self._fresh:
            self._h11 = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=self._limit)
            self._fresh = True  # h11 has seen nothing yet
        # Nothing buffered yet: ``next_event`` could only say NEED_DATA.
        self.pristine = True
        self._head_bytes = 0  # received while the response head was awaited
        self._untold: _Sent | None = None  # a request sent past h11, not yet told to it
        self._fast = False  # the response head was parsed past h11
        self._leftover = b""  # what followed that head in the same read
        self._length = 0  # and its Content-Length

    def next_cycle(self) -> None:
        """Ready for the next request once h11 saw this exchange end on both
        sides; the caller has checked that nothing is buffered past it."""
        self._h11.start_next_cycle()
        self.pristine = True
        self._head_bytes = 0

    # Sending: the pieces as h11 made them, a Data event's body not copied.

    def send_request(self, request: Request) -> list[bytes]:
        """The pieces of ``request``'s head; ``LocalProtocolError`` if h11 refuses it.

        A request with a body in memory whose head ``_http11_fast`` can write
        as h11 would is written there; h11 is told of it (``_tell``) only if
        the response needs h11, before its first byte reaches h11."""
        stream = request.stream
        if isinstance(stream, ByteStream):
            body = stream.content
            target = request.url.target
            fast = request_head(request.method, target, request.headers, len(body))
            if fast is not None:
                self._untold = (request.method, target, tuple(request.headers), body)
                head, self._keep_alive = fast
                return [head]
        event = request_event(request)
        self._fresh = False
        try:
            return self._h11.send_with_data_passthrough(event) or []
        except h11.LocalProtocolError as exc:
            raise translate(exc, H11_SEND_ERRORS) from exc

    def _tell(self, sent: _Sent) -> None:
        """Tell h11 of a request the fast path sent: the same events it would
        have been sent, their bytes dropped, so its states are exactly those."""
        self._untold = None
        self._fresh = False
        method, target, headers, body = sent
        trusted = _trusted_headers(headers)
        send = self._h11.send_with_data_passthrough
        try:
            if trusted is None:  # pragma: no cover  # the fast path trusts less
                send(h11.Request(method=method, target=target, headers=list(headers)))
            else:
                send(h11.Request(method=method, target=target, headers=trusted, _parsed=True))
            if body:
                send(h11.Data(data=body))
            send(_END)
        except h11.LocalProtocolError as exc:  # pragma: no cover  # refused when sent
            raise translate(exc, H11_SEND_ERRORS) from exc

    def send_data(self, data: bytes) -> list[bytes]:
        """The pieces framing ``data`` (``LocalProtocolError`` beyond Content-Length)."""
        if self._untold is not None:
            return [data]  # its length was checked with the head
        try:
            return self._h11.send_with_data_passthrough(h11.Data(data=data)) or []
        except h11.LocalProtocolError as exc:
            raise translate(exc, H11_SEND_ERRORS) from exc

    def send_end(self) -> list[bytes]:
        """The pieces ending the request body (``LocalProtocolError`` if short)."""
        if self._untold is not None:
            return []
        try:
            return self._h11.send_with_data_passthrough(_END) or []
        except h11.LocalProtocolError as exc:
            raise translate(exc, H11_SEND_ERRORS) from exc

    # Receiving.

    def receive(self, data: bytes) -> None:
        """Feed h11 ``data`` as received (``b""`` for EOF)."""
        if self._untold is not None:
            self._tell(self._untold)
        self._fresh = self.pristine = False
        if data and self._h11.their_state is _SEND_RESPONSE:
            self._head_bytes += len(data)
        self._h11.receive_data(data)

    def next_event(self) -> Event | type[NEED_DATA] | type[PAUSED]:
        """h11's next event; ``RemoteProtocolError`` for what the server broke."""
        try:
            return self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:  # h11's "Receive buffer too long"
                raise self.too_large() from exc
            raise translate(exc, H11_RECEIVE_ERRORS) from exc

    def check_head_size(self) -> None:
        """``RemoteProtocolError`` if the heads of this response took too many bytes."""
        # What was received minus what is left is what the heads took.
        limit = self._limit
        if self._head_bytes > limit and self._head_bytes - len(self._h11.trailing_data[0]) > limit:
            raise self.too_large()

    def too_large(self) -> RemoteProtocolError:
        return RemoteProtocolError(
            f"Response head (or chunk header) larger than {self._limit} bytes."
        )

    # What the connection asks about h11's states.

    def awaiting_head(self) -> bool:
        """Whether the server's response head is still to come."""
        if self._fast:
            return False
        return self._untold is not None or self._h11.their_state is _SEND_RESPONSE

    def fast_pending(self) -> bool:
        """Whether the request went past h11 and no response byte has come:
        the first read may then be parsed by ``fast_head``."""
        return self._untold is not None

    def fast_head(self, data: bytes) -> FastHead | None:
        """The response head at the start of ``data`` (the first bytes read of
        the response to a request sent past h11) as ``(status, reason, headers,
        length)``, if ``_http11_fast`` can parse it exactly as h11 would; then
        h11 is not told of this exchange at all. None otherwise: ``receive``
        ``data`` then, and h11 parses it."""
        head = parse_response_head(data, self._limit)
        if head is None:
            return None
        status, reason, headers, length, keep_alive, end = head
        self._untold = None
        self._fast = True
        self._keep_alive = self._keep_alive and keep_alive
        self._leftover = data[end:]
        self._length = length
        return status, reason, headers, length

    def after_head(
        self, length: int | None, bodiless: bool, *, upload_failed: bool
    ) -> tuple[bool, bytes, int | None]:
        """Once the final head is in: whether the exchange may leave the
        connection reusable, and how to read the body.

        A body of ``length`` bytes (not chunked, not delimited by the
        connection closing, not ``bodiless`` as a HEAD, 204 or 304 response
        is) is read past h11: returned are the bytes of it h11 has buffered
        beyond the head, handed out first, and how many are still to come.
        h11, which then never sees the body end, is ``renew``-ed for the next
        request. Otherwise ``(reusable, b"", None)``: h11 reads the body, if any.

        Not reusable: either side said ``Connection: close`` (or the server
        speaks HTTP/1.0), the server answered before the upload ended (h11 has
        then moved our side from DONE to MUST_CLOSE, or left it sending), the
        upload failed (h11 believes a body sent once framed, even if its write
        failed), or h11 holds bytes beyond this response that nobody asked for.
        """
        if self._fast:
            # As h11 would have: our side DONE unless either side said close.
            leftover, self._leftover = self._leftover, b""
            reusable = self._keep_alive and not upload_failed
            length = self._length
        else:
            connection = self._h11
            reusable = connection.our_state is _DONE and not upload_failed
            if bodiless or length is None or connection.their_state is not _SEND_BODY:
                return reusable, b"", None
            leftover = connection.trailing_data[0]
        if len(leftover) > length:
            return False, leftover[:length], 0
        return reusable, leftover, length - len(leftover)

    def leftover(self) -> bytes:
        """What h11 has buffered and not parsed yet."""
        return self._h11.trailing_data[0]


def http_version(event: Response | InformationalResponse) -> bytes:
    """``b"HTTP/1.1"`` and the like for ``event``; ``RemoteProtocolError`` for a
    response that is not HTTP/1.x."""
    version = HTTP_VERSIONS.get(event.http_version)
    if version is None:
        version = b"HTTP/" + event.http_version
        if not event.http_version.startswith(b"1."):
            # HTTP/1.x framing under another major version (HTTP/0.9 had no
            # status line at all; HTTP/2 and 3 have no text).
            raise RemoteProtocolError(
                f"Unsupported HTTP version in the response: {version.decode()}."
            )
    return version


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


def _trusted_headers(headers: Iterable[tuple[bytes, bytes]]) -> _H11Headers | None:
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
