"""Tests of the data models: Origin, headers, Request, Response, streams."""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections import UserList
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import pytest

from httpool import ConnectionPool, MockBackend, _models, _urls
from httpool._exceptions import ConnectError, LocalProtocolError, UnsupportedProtocol
from httpool._models import (
    ByteStream,
    Request,
    Response,
    enforce_headers,
    enforce_stream,
    get_timeout,
    include_request_headers,
)
from httpool._urls import URL, Origin, enforce_bytes


def refused_when_sent(request: Request) -> LocalProtocolError:
    """The error sending ``request`` raises (before any connection): what
    httpcore accepts when building a request, httpool refuses when sending it."""
    backend = MockBackend([])
    with ConnectionPool(network_backend=backend) as pool, pytest.raises(LocalProtocolError) as info:
        pool.handle_request(request)
    assert backend.connects == 0
    return info.value


def test_unsendable_request_keeps_what_it_was_given() -> None:
    # As httpx would build it: no error now, httpx's own exception when sent.
    request = Request("GE T", "http://a/", headers=[(b"X", b"a\nb")], content=b"body")
    assert request.method == b"GE T" and request.headers == [(b"X", b"a\nb")]
    assert bytes(request.url) == b"http://a/" and not request.url.is_requestable()
    assert "Invalid method" in str(refused_when_sent(request))
    assert "Invalid method" in str(refused_when_sent(request))  # every time


# Origin


def test_origin_is_a_usable_dict_key() -> None:
    a = URL("https://example.com/one").origin
    b = URL("https://EXAMPLE.com:443/two").origin
    assert a is not b
    assert a == b and hash(a) == hash(b)
    pool: dict[Origin, str] = {a: "conn"}
    assert pool[b] == "conn"
    assert Origin(b"http", b"example.com", 443) not in pool
    assert Origin(b"https", b"example.com", 80) not in pool
    assert Origin(b"https", b"example.org", 443) not in pool
    assert a != ("https", "example.com", 443)
    assert len({a, b, Origin(b"https", b"example.com", 443)}) == 1


def test_origin_is_immutable() -> None:
    origin = Origin(b"http", b"a", 80)
    with pytest.raises(AttributeError):
        origin.port = 81
    with pytest.raises(AttributeError):
        del origin.host
    assert origin.port == 80


def test_origin_copies_and_pickles() -> None:
    origin = Origin(b"https", b"::1", 8443)
    assert pickle.loads(pickle.dumps(origin)) == origin
    assert copy.copy(origin) == origin
    assert copy.deepcopy(origin) == origin


def test_origin_str_and_repr() -> None:
    assert str(Origin(b"https", b"example.com", 443)) == "https://example.com:443"
    assert str(Origin(b"http", b"::1", 8080)) == "http://[::1]:8080"
    assert repr(Origin(b"http", b"a", 80)) == "Origin(scheme=b'http', host=b'a', port=80)"


# enforce_bytes and headers


def test_enforce_bytes() -> None:
    assert enforce_bytes("GET", name="method") == b"GET"
    raw = b"\xff"
    assert enforce_bytes(raw, name="x") is raw
    with pytest.raises(LocalProtocolError, match="method must be ASCII"):
        enforce_bytes("G\u00c9T", name="method")
    with pytest.raises(TypeError, match="method must be bytes or str, but got int"):
        enforce_bytes(1, name="method")  # type: ignore[arg-type]


def test_headers_accept_mappings_and_sequences() -> None:
    expected = [(b"Accept", b"*/*"), (b"X-Token", b"abc")]
    assert enforce_headers({"Accept": "*/*", b"X-Token": b"abc"}, name="h") == expected
    assert enforce_headers([("Accept", b"*/*"), (b"X-Token", "abc")], name="h") == expected
    pairs: Any = ((b"Accept", b"*/*"), [b"X-Token", b"abc"])
    assert enforce_headers(pairs, name="h") == expected
    assert enforce_headers(None, name="h") == []
    assert enforce_headers([(b"X-Empty", b"")], name="h") == [(b"X-Empty", b"")]


def test_headers_are_a_new_list() -> None:
    given_headers = [(b"A", b"1")]
    result = enforce_headers(given_headers, name="h")
    result.append((b"B", b"2"))
    assert given_headers == [(b"A", b"1")]


@pytest.mark.parametrize(
    "name",
    [b"Bad Name", b"Bad:Name", b"", b"X\r\nY", b"X\nY", b"X\rY", b"X\x00Y", b"(comment)", b"\xff"],
)
def test_invalid_header_names(name: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="header name") as info:
        enforce_headers([(name, b"value")], name="headers")
    assert repr(name) in str(info.value)
    assert "header name" in str(
        refused_when_sent(Request("GET", "http://a/", headers=[(name, b"v")]))
    )


@pytest.mark.parametrize("value", [b"a\rb", b"a\nb", b"a\x00b", b"a\r\nX-Evil: 1", b"\n"])
def test_invalid_header_values_name_the_header(value: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="X-Custom") as info:
        enforce_headers([(b"X-Custom", value)], name="headers")
    assert "CR, LF or NUL" in str(info.value)
    request = Request("GET", "http://a/", headers={"X-Custom": value.decode("latin-1")})
    assert "X-Custom" in str(refused_when_sent(request))


def test_header_name_cache_does_not_hide_errors() -> None:
    assert enforce_headers([(b"X-Cached", b"1")], name="h") == [(b"X-Cached", b"1")]
    assert enforce_headers([("X-Cached", "1")], name="h") == [(b"X-Cached", b"1")]
    with pytest.raises(LocalProtocolError):
        enforce_headers([(b"X-Cached", b"1\r\n")], name="h")


def test_header_name_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_models, "_CACHE_LIMIT", 0)
    monkeypatch.setattr(_urls, "_CACHE_LIMIT", 0)
    assert enforce_headers([(b"X-Not-Cached-Yet", b"1")], name="h") == [(b"X-Not-Cached-Yet", b"1")]
    assert b"X-Not-Cached-Yet" not in _models._valid_names
    with pytest.raises(LocalProtocolError):
        enforce_headers([(b"X Not Cached", b"1")], name="h")
    assert URL("http://Not-Cached.example/").host == b"not-cached.example"
    assert b"Not-Cached.example" not in _urls._valid_hosts
    with pytest.raises(LocalProtocolError):
        URL("http://not<cached/")


def test_headers_from_any_sequence() -> None:
    assert enforce_headers(UserList([(b"A", b"1")]), name="h") == [(b"A", b"1")]


def test_non_ascii_header_str_is_a_protocol_error() -> None:
    with pytest.raises(LocalProtocolError, match="header value must be ASCII"):
        enforce_headers({"X-Name": "caf\u00e9"}, name="headers")
    assert enforce_headers({"X-Name": "caf\u00e9".encode()}, name="h")[0][1] == b"caf\xc3\xa9"


@pytest.mark.parametrize(
    "value",
    ["Host: a", b"Host: a", 42, [("only-one",)], [("a", "b", "c")], ["ab"], [b"ab"], [(1, b"x")]],
)
def test_headers_wrong_types(value: Any) -> None:
    with pytest.raises(TypeError):
        enforce_headers(value, name="headers")


def test_response_headers_are_converted_not_validated() -> None:
    response = Response(200, headers=[("Set-Cookie", "a=b"), (b"X-Raw", b"v")])
    assert response.headers == [(b"Set-Cookie", b"a=b"), (b"X-Raw", b"v")]
    with pytest.raises(TypeError):
        Response(200, headers=[(1, 2)])  # type: ignore[list-item]


# Streams


def _collect(stream: Any) -> list[bytes]:
    async def main() -> list[bytes]:
        return [chunk async for chunk in stream]

    return asyncio.run(main())


def test_byte_stream_replays_sync_and_async() -> None:
    stream = ByteStream(b"hello")
    assert list(stream) == [b"hello"]
    assert list(stream) == [b"hello"]
    assert _collect(stream) == [b"hello"]
    assert _collect(stream) == [b"hello"]
    assert repr(stream) == "<ByteStream [5 bytes]>"


def test_empty_byte_stream_yields_nothing() -> None:
    stream = ByteStream(b"")
    assert list(stream) == []
    assert _collect(stream) == []


def test_enforce_stream() -> None:
    empty = enforce_stream(None, name="content")
    assert isinstance(empty, ByteStream) and list(empty) == []
    stream = enforce_stream(b"abc", name="content")
    assert isinstance(stream, ByteStream) and list(stream) == [b"abc"]
    chunks = [b"a", b"b"]
    assert enforce_stream(chunks, name="content") is chunks

    async def agen() -> AsyncIterator[bytes]:
        yield b"x"

    body = agen()
    assert enforce_stream(body, name="content") is body
    assert _collect(body) == [b"x"]


@pytest.mark.parametrize("value", ["text", bytearray(b"x"), memoryview(b"x"), 42, object()])
def test_enforce_stream_rejects(value: Any) -> None:
    with pytest.raises(TypeError, match="content must be bytes"):
        enforce_stream(value, name="content")
    with pytest.raises(TypeError):
        Request("POST", "http://a/", content=value)


# Request


def test_request_fields() -> None:
    extensions: dict[str, Any] = {"trace": None}
    request = Request(
        "POST", "https://example.com/x", headers={"A": "1"}, content=b"b", extensions=extensions
    )
    assert request.method == b"POST"
    assert request.url == URL("https://example.com/x")
    assert request.headers == [(b"A", b"1")]
    assert list(request.stream) == [b"b"]  # type: ignore[arg-type]
    assert request.extensions is extensions
    assert Request("GET", URL("http://a/")).extensions == {}
    empty: dict[str, Any] = {}
    assert Request("GET", "http://a/", extensions=empty).extensions is empty
    assert repr(request) == "<Request [b'POST']>"


@pytest.mark.parametrize("method", ["GET", b"GET", "PROPFIND", b"M-SEARCH", "get"])
def test_request_valid_methods(method: str | bytes) -> None:
    expected = method if isinstance(method, bytes) else method.encode()
    assert Request(method, "http://a/").method == expected


@pytest.mark.parametrize("method", ["", "GE T", "GET\r\n", b"GET\x00", "G(E)T", "G\u00c9T"])
def test_request_invalid_methods(method: str | bytes) -> None:
    refused_when_sent(Request(method, "http://a/"))


def test_request_argument_types() -> None:
    with pytest.raises(TypeError):
        Request(None, "http://a/")  # type: ignore[arg-type]
    # httpcore's wording, word for word.
    with pytest.raises(TypeError) as info:
        Request("GET", 42)  # type: ignore[arg-type]
    assert str(info.value) == "url must be a URL, bytes, or str, but got int."
    with pytest.raises(TypeError) as info:
        Request("GET", "http://a/", headers=123)  # type: ignore[arg-type]
    assert str(info.value) == "headers must be a mapping or sequence of two-tuples, but got int."


@pytest.mark.parametrize(
    ("url", "error", "match"),
    [
        ("socks5://proxy:1080/", UnsupportedProtocol, "'socks5://'"),
        ("invalid://example.org/", UnsupportedProtocol, "'invalid://'"),
        ("://example.org/", UnsupportedProtocol, "missing an 'http://'"),
        ("http://", LocalProtocolError, "host is empty"),
        (URL(scheme="http", host="a", port=70000), ConnectError, "port"),
    ],
)
def test_request_unsendable_url_fails_when_sent(
    url: str | URL, error: type[Exception], match: str
) -> None:
    # Built without complaint (as in httpcore; httpx builds requests outside
    # its exception mapping), refused by the pool before any connection exists.
    request = Request("GET", url)
    backend = MockBackend([])
    with ConnectionPool(network_backend=backend) as pool:
        with pytest.raises(error, match=match):
            pool.handle_request(request)
        assert backend.connects == 0
        assert pool.stats().connections == 0


def test_request_target_extension() -> None:
    request = Request("OPTIONS", "https://a:8443/ignored", extensions={"target": b"*"})
    assert request.url.target == b"*"
    assert request.url.origin == Origin(b"https", b"a", 8443)


@pytest.mark.parametrize(
    "timeout",
    [
        {},
        {"connect": 1, "read": 2.5, "write": None, "pool": 0},
        {"read": 0.0},
        {"pool": 10**6},
    ],
)
def test_valid_timeouts(timeout: dict[str, Any]) -> None:
    request = Request("GET", "http://a/", extensions={"timeout": timeout})
    for key in ("connect", "read", "write", "pool"):
        assert get_timeout(request.extensions, key) == timeout.get(key)


@pytest.mark.parametrize(
    ("timeout", "match"),
    [
        (None, "must be a dict"),
        (5.0, "must be a dict"),
        ([("read", 1)], "must be a dict"),
        ({"reed": 1}, "Unknown timeout 'reed'"),
        ({"read": -1}, "Invalid timeout 'read'"),
        ({"read": float("inf")}, "Invalid timeout 'read'"),
        ({"read": float("nan")}, "Invalid timeout 'read'"),
        ({"connect": "5"}, "Invalid timeout 'connect'"),
        ({"pool": True}, "Invalid timeout 'pool'"),
    ],
)
def test_invalid_timeouts(timeout: Any, match: str) -> None:
    request = Request("GET", "http://a/", extensions={"timeout": timeout})
    assert match in str(refused_when_sent(request))


def test_timeout_helpers_without_timeouts() -> None:
    assert get_timeout({}, "pool") is None
    assert get_timeout({"timeout": {"pool": 3}}, "pool") == 3
    assert get_timeout({"timeout": {"pool": 3}}, "read") is None


# include_request_headers


def _headers(*args: Any, **kwargs: Any) -> list[tuple[bytes, bytes]]:
    request = Request(*args, **kwargs)
    include_request_headers(request)
    return request.headers


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://example.com/", b"example.com"),
        ("http://example.com:80/", b"example.com"),
        ("https://example.com:443/", b"example.com"),
        ("http://example.com:443/", b"example.com:443"),
        ("https://example.com:8443/", b"example.com:8443"),
        ("wss://example.com:443/", b"example.com"),
        ("http://[::1]/", b"[::1]"),
        ("http://[::1]:8080/", b"[::1]:8080"),
        ("http://[fe80::1%25eth0]:81/", b"[fe80::1]:81"),
        ("http://b\u00fccher.example/", b"xn--bcher-kva.example"),
    ],
)
def test_host_header(url: str, host: bytes) -> None:
    assert _headers("GET", url) == [(b"Host", host)]


def test_host_header_goes_first_and_is_not_duplicated() -> None:
    assert _headers("GET", "http://a/", headers={"Accept": "*/*"}) == [
        (b"Host", b"a"),
        (b"Accept", b"*/*"),
    ]
    assert _headers("GET", "http://a/", headers={"hOsT": "other"}) == [(b"hOsT", b"other")]


@pytest.mark.parametrize(
    ("method", "content", "expected"),
    [
        ("GET", None, []),
        ("HEAD", b"", []),
        ("DELETE", None, []),
        ("GET", b"abc", [(b"Content-Length", b"3")]),
        ("POST", None, [(b"Content-Length", b"0")]),
        ("POST", b"", [(b"Content-Length", b"0")]),
        ("PUT", None, [(b"Content-Length", b"0")]),
        ("PATCH", b"", [(b"Content-Length", b"0")]),
        ("POST", b"x" * 1000, [(b"Content-Length", b"1000")]),
        ("POST", [b"a", b"b"], [(b"Transfer-Encoding", b"chunked")]),
        ("GET", iter([b"a"]), [(b"Transfer-Encoding", b"chunked")]),
    ],
)
def test_body_framing_headers(method: str, content: Any, expected: list[Any]) -> None:
    assert _headers(method, "http://a/", content=content) == [(b"Host", b"a"), *expected]


def test_chunked_for_async_body() -> None:
    async def body() -> AsyncGenerator[bytes, None]:
        yield b"x"  # pragma: no cover - never iterated here

    stream = body()
    assert _headers("POST", "http://a/", content=stream)[-1] == (b"Transfer-Encoding", b"chunked")
    asyncio.run(stream.aclose())


@pytest.mark.parametrize(
    "given_headers", [[(b"Content-Length", b"3")], [(b"transfer-encoding", b"chunked")]]
)
@pytest.mark.parametrize("content", [b"abc", None, [b"abc"]])
def test_existing_framing_header_is_kept(given_headers: list[Any], content: Any) -> None:
    assert _headers("POST", "http://a/", headers=given_headers, content=content) == [
        (b"Host", b"a"),
        *given_headers,
    ]


def test_include_request_headers_is_idempotent() -> None:
    request = Request("POST", "http://a:81/", content=b"xy")
    include_request_headers(request)
    include_request_headers(request)
    assert request.headers == [(b"Host", b"a:81"), (b"Content-Length", b"2")]


# Response


class SyncBody:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed += 1


class AsyncBody:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.closed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed += 1


def test_response_defaults_and_repr() -> None:
    response = Response(204)
    assert response.status == 204
    assert response.headers == []
    assert response.extensions == {}
    assert response.read() == b""
    assert repr(response) == "<Response [204]>"


def test_response_sync_read() -> None:
    body = SyncBody(b"ab", b"cd")
    response = Response(200, content=body)
    with pytest.raises(RuntimeError, match=r"response\.read\(\)"):
        _ = response.content
    assert response.read() == b"abcd"
    assert response.read() == b"abcd"
    assert response.content == b"abcd"
    response.close()
    assert body.closed == 1


def test_response_sync_stream_once() -> None:
    response = Response(200, content=SyncBody(b"a", b"b"))
    assert list(response.iter_stream()) == [b"a", b"b"]
    with pytest.raises(RuntimeError, match="already been streamed"):
        response.iter_stream()
    with pytest.raises(RuntimeError, match="already been streamed"):
        response.read()


def test_response_bytes_content_needs_read() -> None:
    response = Response(200, content=b"hello")
    with pytest.raises(RuntimeError):
        _ = response.content
    assert response.read() == b"hello"
    response.close()  # a ByteStream has nothing to close


def test_response_async_read_stream_and_close() -> None:
    async def main() -> None:
        body = AsyncBody(b"x", b"y")
        response = Response(200, content=body)
        with pytest.raises(RuntimeError, match=r"response\.aread\(\)"):
            _ = response.content
        assert await response.aread() == b"xy"
        assert await response.aread() == b"xy"
        assert response.content == b"xy"
        await response.aclose()
        assert body.closed == 1

        streamed = Response(200, content=AsyncBody(b"1", b"2"))
        assert [chunk async for chunk in streamed.aiter_stream()] == [b"1", b"2"]
        with pytest.raises(RuntimeError, match="already been streamed"):
            streamed.aiter_stream()
        with pytest.raises(RuntimeError, match="already been streamed"):
            await streamed.aread()

        both = Response(200, content=b"both")
        assert await both.aread() == b"both"
        await both.aclose()

    asyncio.run(main())


def test_response_wrong_kind_of_stream() -> None:
    sync_response = Response(200, content=SyncBody(b"a"))
    async_response = Response(200, content=AsyncBody(b"a"))

    async def misuse_sync() -> None:
        for misuse in (sync_response.aread, sync_response.aclose):
            with pytest.raises(TypeError, match="a sync body; use read, iter_stream, close"):
                await misuse()
        with pytest.raises(TypeError, match="a sync body"):
            sync_response.aiter_stream()

    asyncio.run(misuse_sync())
    for misuse in (async_response.read, async_response.iter_stream, async_response.close):
        with pytest.raises(TypeError, match="an async body; use aread, aiter_stream, aclose"):
            misuse()
    # The misuse did not consume either body.
    assert sync_response.read() == b"a"
    assert asyncio.run(async_response.aread()) == b"a"
