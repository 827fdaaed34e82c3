"""The HTTP/1.1 fast path's request side, and its response side by example.

Theory of operation: ``request_head`` may write a request only as h11 would,
byte for byte, and say whether it keeps the connection alive as h11 would
conclude; a hypothesis property checks that against h11 on generated
methods, targets, header lists (as built, or changed after the request was
validated) and bodies. When the response then needs h11 after all, h11 is
told of the request afterwards (``ClientParser._tell``) and must end up in the
very states it would have reached had it sent the request itself. The
examples pin down which common responses the fast path takes (so that it
does not silently stop being used) and which it leaves to h11; the
differential tests in ``test_http11_fast_diff.py`` do the proving.
"""

from __future__ import annotations

import os
import types
import typing

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpool import MockStream, Origin, Request
from httpool import _h11 as adapter
from httpool._h11 import ClientParser, request_event
from httpool._http11_fast import parse_response_head, request_head
from httpool._models import include_request_headers
from httpool._sync.http11 import HTTP11Connection, HTTPConnectionState


@pytest.fixture(autouse=True)
def fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are of the fast path itself: on, even under ``--h11-only``."""
    monkeypatch.setattr(adapter, "request_head", request_head)
    monkeypatch.setattr(adapter, "parse_response_head", parse_response_head)


METHODS = [b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"] * 2
METHODS += [b"HEAD", b"CONNECT", b"FOO", b"get", b"G T", b""]
# A str among the bytes on purpose (h11 converts it; the fast path declines).
TARGETS: list[typing.Any] = [
    b"/",
    b"/a?b=c",
    b"*",
    b"http://x/y",
    b"/ sp",
    b"/\x7f",
    b"/caf\xc3\xa9",
    b"",
    "/",
]
NAMES: list[typing.Any] = [b"Accept", b"User-Agent", b"X-A", b"accept-encoding"] * 2 + [
    b"Host",
    b"host",
    b"Content-Length",
    b"content-length",
    b"Transfer-Encoding",
    b"Connection",
    b"Upgrade",
    b"Expect",
    b"Bad Name",
    b"",
    "Accept",
]
VALUES: list[typing.Any] = [b"*/*", b"gzip, deflate", b"", b"a b", b"a\tb", b"caf\xc3\xa9"] * 2 + [
    b"0",
    b"5",
    b"05",
    b"5, 5",
    b"+5",
    b"chunked",
    b"close",
    b"Keep-Alive, CLOSE",
    b"upgrade",
    b"100-continue",
    b" padded",
    b"padded\t",
    b"a\x00b",
    b"a\r\nInjected: 1",
    b"\x7f",
    "str",
    bytearray(b"mutable"),
]
HOST = (b"Host", b"example.com")


def _examples(default: int) -> settings:
    return settings(
        max_examples=int(os.environ.get("HTTPOOL_DIFF_EXAMPLES", "0")) or default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    """Method, target, headers (Host first, mostly), body: of the common
    shape or not, valid or not."""
    headers = [(draw(st.sampled_from(NAMES)), draw(st.sampled_from(VALUES))) for _ in range(3)]
    headers = draw(st.lists(st.sampled_from(headers), max_size=4))
    if draw(st.integers(0, 4)):
        headers.insert(0, HOST)
    body = draw(st.sampled_from([b"", b"", b"hello"]))
    if body and draw(st.booleans()):
        headers.append((b"Content-Length", b"5"))
    return draw(st.sampled_from(METHODS)), draw(st.sampled_from(TARGETS)), headers, body


def h11_writes(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[bytes, bool] | str:
    """What h11 writes for this request, as ``ClientParser`` drives it, and
    whether it keeps the connection alive; "error" if it refuses it."""
    connection = h11.Connection(our_role=h11.CLIENT)
    request = types.SimpleNamespace(
        method=method, url=types.SimpleNamespace(target=target), headers=headers
    )
    try:
        pieces = connection.send_with_data_passthrough(request_event(request)) or []  # type: ignore[arg-type]
        if body:
            pieces += connection.send_with_data_passthrough(h11.Data(data=body)) or []
        pieces += connection.send_with_data_passthrough(h11.EndOfMessage()) or []
    except Exception:  # h11's refusal, translated or not
        return "error"
    return b"".join(pieces), connection.our_state is h11.DONE


@_examples(1500)
@given(requests())
def test_request_heads_are_h11s_bytes(
    request: tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes],
) -> None:
    method, target, headers, body = request
    fast = request_head(method, target, headers, len(body))
    if fast is not None:
        head, keep_alive = fast
        assert h11_writes(method, target, headers, body) == (head + body, keep_alive)


def _parser_states(parser: ClientParser) -> tuple[object, ...]:
    connection = parser._h11
    return (
        connection.our_state,
        connection.their_state,
        connection._request_method,
        connection._cstate.keep_alive,
        connection._cstate.pending_switch_proposals,
        connection.client_is_waiting_for_100_continue,
        connection._writer.__class__,
        connection._reader.__class__,
    )


@pytest.mark.parametrize(
    "method, headers, content",
    [
        ("GET", [], None),
        ("POST", [], b"hello"),
        ("PUT", [(b"Content-Length", b"005")], b"hello"),
        ("DELETE", [(b"Connection", b"close")], None),
        ("PATCH", [(b"Expect", b"100-continue")], b"x"),
        ("GET", [(b"Connection", b"keep-alive, Close")], None),
    ],
)
def test_h11_told_later_reaches_the_states_of_sending_itself(
    method: str, headers: list[tuple[bytes, bytes]], content: bytes | None
) -> None:
    states = []
    for fast in (True, False):
        request = Request(method, "http://example.com/", headers=headers, content=content)
        include_request_headers(request)
        parser = ClientParser(1024)
        if not fast:
            request.headers.insert(0, (b"X-First", b"1"))  # Host not first: h11's path
        head = parser.send_request(request)
        assert parser.fast_pending() is fast
        if content:
            head += parser.send_data(content)
        head += parser.send_end()
        parser.receive(b"HTTP/1.1 1")  # after a request sent past h11, h11 is told first
        states.append(_parser_states(parser))
    assert states[0] == states[1]


NGINX = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 13:51:57 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 14\r\n"
    b"Last-Modified: Thu, 26 Nov 2026 13:50:00 GMT\r\nConnection: keep-alive\r\n"
    b'ETag: "abc-e"\r\nAccept-Ranges: bytes\r\n\r\nHello, world!\n'
)


def test_the_common_response_is_taken() -> None:
    head = parse_response_head(NGINX, 64 * 1024)
    assert head is not None
    status, reason, headers, length, keep_alive, end = head
    assert (status, reason, length, keep_alive, NGINX[end:]) == (
        200,
        b"OK",
        14,
        True,
        b"Hello, world!\n",
    )
    assert headers[0] == (b"Server", b"nginx/1.22.1") and len(headers) == 8


@pytest.mark.parametrize(
    "response",
    [
        NGINX.replace(b"HTTP/1.1", b"HTTP/1.0"),
        NGINX.replace(b"200 OK", b"204 No Content"),
        NGINX.replace(b"200 OK", b"304 Not Modified"),
        b"HTTP/1.1 100 Continue\r\n\r\n" + NGINX,
        NGINX.replace(b"Content-Length: 14", b"Transfer-Encoding: chunked"),
        NGINX.replace(b"Content-Length: 14", b"Content-Length: 14\r\nContent-Length: 14"),
        NGINX.replace(b"Content-Length: 14", b"Content-Length: 14, 14"),
        NGINX.replace(b"Content-Length: 14", b"Content-Length: +14"),
        NGINX.replace(b"Content-Length: 14", b"X-No-Length: 14"),
        NGINX.replace(b"Server:", b"Server :"),
        NGINX.replace(b"Server: nginx", b"Server: \x00nginx"),
        NGINX.replace(b"\r\nDate", b"\n Date"),  # obs-fold
        NGINX.replace(b"\r\nDate", b"\nDate"),  # bare LF
        NGINX[:60],  # the head not complete in this read
    ],
)
def test_other_responses_are_left_to_h11(response: bytes) -> None:
    assert parse_response_head(response, 64 * 1024) is None


def test_a_head_over_the_limit_is_left_to_h11() -> None:
    end = NGINX.index(b"\r\n\r\n") + 4
    assert parse_response_head(NGINX, end) is not None
    assert parse_response_head(NGINX, end - 1) is None


def _connection(chunks: list[bytes]) -> tuple[HTTP11Connection, MockStream]:
    stream = MockStream(chunks)
    return HTTP11Connection(Origin(b"http", b"example.com", 80), stream), stream


def test_a_common_exchange_never_reaches_h11() -> None:
    connection, stream = _connection([NGINX, NGINX])
    for _ in range(2):
        response = connection.request("GET", "http://example.com/")
        assert response.content == b"Hello, world!\n"
        assert connection.state is HTTPConnectionState.IDLE
        assert connection._parser._fresh  # h11 has not seen a byte, nor been replaced
    assert stream.written == [b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"] * 2


@pytest.mark.parametrize(
    "response, state",
    [
        (NGINX + b"HTTP/1.1 200 OK\r\n", HTTPConnectionState.CLOSED),  # bytes beyond the body
        (NGINX.replace(b"keep-alive", b"close"), HTTPConnectionState.CLOSED),
        (NGINX, HTTPConnectionState.IDLE),
    ],
)
def test_the_fast_path_keeps_the_connection_only_as_h11_would(
    response: bytes, state: HTTPConnectionState
) -> None:
    connection, _ = _connection([response])
    assert connection.request("GET", "http://example.com/").content == b"Hello, world!\n"
    assert connection.state is state


def test_a_request_that_closes_is_not_kept_after_a_fast_response() -> None:
    connection, stream = _connection([NGINX])
    response = connection.request("GET", "http://example.com/", headers=[("Connection", "close")])
    assert response.status == 200 and connection.state is HTTPConnectionState.CLOSED
    assert stream.written == [b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"]


def test_a_head_request_goes_to_h11() -> None:
    connection, _ = _connection([NGINX[: NGINX.index(b"\r\n\r\n") + 4]])
    response = connection.request("HEAD", "http://example.com/")
    assert (response.status, response.content) == (200, b"")
    assert connection.state is HTTPConnectionState.IDLE
    assert not connection._parser._fresh  # h11 took this one
