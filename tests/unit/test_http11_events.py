"""The h11 events built from validated requests match h11's own, byte for byte,
and whatever h11 would refuse or rewrite still goes through h11's checks."""

from __future__ import annotations

import h11
import pytest

import httpool._urls
from httpool import URL, LocalProtocolError, Request
from httpool._h11 import _trusted_headers, request_event, response_head
from httpool._models import Headers, include_request_headers
from httpool._urls import enforce_url


def _wire(event: h11.Request) -> bytes:
    return h11.Connection(h11.CLIENT).send(event)


def _h11_own(request: Request) -> h11.Request:
    return h11.Request(method=request.method, target=request.url.target, headers=request.headers)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"Accept", b"*/*"), (b"X-Empty", b"")],
        [(b"Content-Length", b"5")],
        [(b"Transfer-Encoding", b"chunked")],
        [(b"X-Tab", b"a\tb"), (b"x-obs", b"caf\xc3\xa9")],
    ],
)
def test_fast_event_matches_h11(headers: Headers) -> None:
    request = Request("POST", "http://example.com:8080/a?b", headers=headers)
    include_request_headers(request)
    assert _trusted_headers(request.headers) is not None
    fast, own = request_event(request), _h11_own(request)
    assert list(fast.headers) == list(own.headers)
    assert fast.headers.raw_items() == own.headers.raw_items()
    assert (fast.method, fast.target, fast.http_version) == (own.method, own.target, b"1.1")
    assert _wire(fast) == _wire(own)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"X-Space", b" padded ")],  # h11 refuses surrounding whitespace
        [(b"Content-Length", b"5, 5")],  # h11 normalises this to 5
        [(b"Content-Length", b"5"), (b"Content-Length", b"5")],
        [(b"Transfer-Encoding", b"Chunked")],  # h11 lowercases it
    ],
)
def test_unusual_headers_take_h11s_path(headers: Headers) -> None:
    request = Request("POST", "http://example.com/", headers=headers)
    include_request_headers(request)
    assert _trusted_headers(request.headers) is None
    try:
        own = _h11_own(request)
    except h11.LocalProtocolError as exc:
        with pytest.raises(LocalProtocolError, match=str(exc)[:20]):
            request_event(request)
    else:
        assert _wire(request_event(request)) == _wire(own)


@pytest.mark.parametrize(
    "header",
    [(b"X-Bad", b"a\r\nInjected: 1"), (b"X-Nul", b"a\x00"), (b"Bad Name", b"x")],
)
def test_headers_changed_after_validation_are_checked_again(header: tuple[bytes, bytes]) -> None:
    request = Request("GET", "http://example.com/")
    include_request_headers(request)
    request.headers.append(header)
    assert _trusted_headers(request.headers) is None
    with pytest.raises(LocalProtocolError):
        request_event(request)


def test_str_header_added_later_is_left_to_h11() -> None:
    request = Request("GET", "http://example.com/")
    include_request_headers(request)
    request.headers.append(("X-Str", "value"))  # type: ignore[arg-type]
    assert _trusted_headers(request.headers) is None
    assert _wire(request_event(request)) == _wire(_h11_own(request))


def test_missing_or_double_host_still_refused() -> None:
    request = Request("GET", "http://example.com/")
    with pytest.raises(LocalProtocolError, match="Host"):
        request_event(request)
    include_request_headers(request)
    request.headers.append((b"host", b"other.example"))
    with pytest.raises(LocalProtocolError, match="Host"):
        request_event(request)


@pytest.mark.parametrize(
    ("head", "length"),
    [
        (b"Content-Length: 12\r\n", 12),
        (b"Transfer-Encoding: chunked\r\n", None),
        (b"", None),
    ],
)
def test_response_head(head: bytes, length: int | None) -> None:
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    connection.send(h11.EndOfMessage())
    connection.receive_data(b"HTTP/1.1 200 OK\r\nX-A: b\r\n" + head + b"\r\n")
    event = connection.next_event()
    assert isinstance(event, h11.Response)
    raw, found = response_head(event)
    assert raw == event.headers.raw_items()
    assert found == length


def test_parsed_urls_are_copies_sharing_the_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty cache: the tests before this one may have filled it, and a full
    # cache parses every new URL afresh (no shared origin).
    monkeypatch.setattr(httpool._urls, "_parsed_urls", {})
    first = enforce_url("http://cache.example:81/x", name="url")
    second = enforce_url("http://cache.example:81/x", name="url")
    assert first == second and first is not second
    assert first.origin is second.origin
    first.target = b"/changed"
    assert enforce_url("http://cache.example:81/x", name="url").target == b"/x"
    assert enforce_url(URL("http://cache.example:81/x"), name="url") == second


def test_host_header_per_origin() -> None:
    for url, host in [
        ("http://h.example/", b"h.example"),
        ("http://h.example:80/", b"h.example"),
        ("https://h.example:80/", b"h.example:80"),
        ("http://[fe80::1%25eth0]:8080/", b"[fe80::1]:8080"),
    ]:
        request = Request("GET", url)
        include_request_headers(request)
        assert request.headers == [(b"Host", host)]
