"""Requests, responses, their headers and body streams, and the timeout extension.

Theory of operation: these objects are built on the hot path of every request,
so each is validated once, when constructed, with precompiled regexes and bytes
methods, and trusted from then on; ``Response`` only converts header types, as
the protocol parser has validated them. A request that httpcore would build
but refuse to send is built here too, its URL replaced by an ``UnsendableURL``
that raises the error found when sending asks for the origin. Bodies are sync
or async iterables of bytes; ``ByteStream`` is both and replayable, so a bytes
body is sent (and retried) from either world.

URLs and origins live in ``_urls``, which this module builds on and which
knows nothing of it. This module knows nothing of connections, pools or I/O.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import Any, TypeAlias, cast

from ._exceptions import LocalProtocolError
from ._urls import DEFAULT_PORTS, URL, Origin, UnsendableURL, enforce_bytes, enforce_url

HeaderTypes: TypeAlias = (
    Sequence[tuple[bytes | str, bytes | str]] | Mapping[bytes | str, bytes | str] | None
)
Extensions: TypeAlias = MutableMapping[str, Any]
Headers: TypeAlias = list[tuple[bytes, bytes]]
Content: TypeAlias = bytes | Iterable[bytes] | AsyncIterable[bytes] | None
Stream: TypeAlias = Iterable[bytes] | AsyncIterable[bytes]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2
# CR, LF and NUL split or cut a header; other controls (not HTAB) are no field content.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_NOT_BODY = (str, bytearray, memoryview)  # iterable, but not of bytes chunks

_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_KNOWN_METHODS = {m: m.encode("ascii") for m in _METHODS}
_KNOWN_METHOD_BYTES = frozenset(_KNOWN_METHODS.values())
# Methods whose empty body is still announced as "Content-Length: 0" (RFC 9110 8.6).
_BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH"))

# Header names proven to be tokens (the same few recur on every request);
# bounded, or endless distinct names would grow it.
_CACHE_LIMIT = 1024
_valid_names: set[bytes] = set()
# Origins -> their Host header value (the port shown only if not the default).
_host_headers: dict[Origin, bytes] = {}
_NO_NAMES: frozenset[bytes] = frozenset()

TIMEOUT_KEYS = ("connect", "read", "write", "pool", "total")
# The longest timeout every runtime can wait for: beyond it the blocking
# socket and threading calls raise OverflowError (their deadlines are 64-bit
# nanoseconds; Windows' lock waits stop at ~49 days). None means no timeout.
MAX_TIMEOUT = min(1e9, threading.TIMEOUT_MAX)


def _header_name(key: bytes | str) -> bytes:
    raw = key if type(key) is bytes else enforce_bytes(key, name="header name")
    if raw not in _valid_names:
        if _TOKEN.fullmatch(raw) is None:
            raise LocalProtocolError(f"Invalid header name {raw!r}: not an RFC 9110 token.")
        if len(_valid_names) < _CACHE_LIMIT:
            _valid_names.add(raw)
    return raw


def proven_header_name(name: bytes) -> bool:
    """Whether ``name`` is an RFC 9110 token (those seen before are remembered)."""
    return name in _valid_names or _TOKEN.fullmatch(name) is not None


def enforce_headers(value: HeaderTypes, *, name: str, validate: bool = True) -> Headers:
    """Return ``value`` as a new list of ``(name, value)`` bytes pairs.

    LocalProtocolError naming the header for a non-ASCII str and, if
    ``validate``, a name that is not an RFC 9110 token or a value with a control
    character (CR, LF, NUL, ...; HTAB is allowed); TypeError for anything but a
    mapping or sequence of bytes/str pairs."""
    items: Iterable[Any]
    if value is None:
        return []
    if type(value) is list or isinstance(value, tuple):
        items = value
    elif isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        items = value
    else:
        raise TypeError(
            f"{name} must be a mapping or sequence of two-tuples, but got {type(value).__name__}."
        )
    headers: Headers = []
    append = headers.append
    for item in items:
        if (type(item) is not tuple or len(item) != 2) and (
            isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 2
        ):
            raise TypeError(f"{name} must hold (name, value) pairs, but got {item!r}.")
        key, val = item
        if validate:
            raw_key = _header_name(key)
            raw_val = val if type(val) is bytes else enforce_bytes(val, name="header value")
            if _BAD_VALUE.search(raw_val) is not None:
                raise LocalProtocolError(
                    f"Invalid value for header {raw_key!r}: CR, LF or NUL, or another control."
                )
        else:
            raw_key = key if type(key) is bytes else enforce_bytes(key, name="header name")
            raw_val = val if type(val) is bytes else enforce_bytes(val, name="header value")
        append((raw_key, raw_val))
    return headers


def enforce_stream(content: Content, *, name: str) -> Stream:
    """``content`` as a body stream: ``None`` and bytes as a ``ByteStream``, a sync
    or async iterable of bytes as is; TypeError for str and other non-bodies."""
    if content is None:
        return _EMPTY
    if isinstance(content, bytes):
        return ByteStream(content)
    if isinstance(content, (Iterable, AsyncIterable)) and not isinstance(content, _NOT_BODY):
        return cast(Stream, content)
    raise TypeError(f"{name} must be bytes or an iterable of bytes, not {type(content).__name__}.")


def check_timeout(timeout: object) -> None:
    """Raise LocalProtocolError unless ``timeout`` maps known keys to ``None`` or
    a number of seconds from 0 to ``MAX_TIMEOUT`` (NaN, infinity and bools are refused)."""
    if not isinstance(timeout, Mapping):
        raise LocalProtocolError(f"The timeout extension must be a dict, not {timeout!r}.")
    for key, value in timeout.items():
        if key not in TIMEOUT_KEYS:
            raise LocalProtocolError(
                f"Unknown timeout {key!r}: not connect, read, write, pool, total."
            )
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and not (number and 0 <= value <= MAX_TIMEOUT):
            raise LocalProtocolError(
                f"Invalid timeout {key!r}: {value!r}; use None (no timeout) or seconds"
                f" from 0 to {MAX_TIMEOUT:g}."
            )


class _AsyncOnce:
    # Not an async generator, whose finalisation would need the event loop.
    __slots__ = ("_chunk",)

    def __init__(self, chunk: bytes | None) -> None:
        self._chunk = chunk

    def __aiter__(self) -> _AsyncOnce:
        return self

    async def __anext__(self) -> bytes:
        chunk, self._chunk = self._chunk, None
        if chunk is None:
            raise StopAsyncIteration
        return chunk


class ByteStream:
    """A body in memory: each sync or async iteration yields ``content`` once
    (nothing if empty). Replayable, so the pool can retry a request elsewhere."""

    __slots__ = ("content",)

    def __init__(self, content: bytes) -> None:
        self.content = content

    def __iter__(self) -> Iterator[bytes]:
        return iter((self.content,) if self.content else ())

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _AsyncOnce(self.content or None)

    def __repr__(self) -> str:
        return f"<ByteStream [{len(self.content)} bytes]>"


_EMPTY = ByteStream(b"")


class Request:
    """An HTTP request, validated once here and trusted by every layer below.

    ``extensions`` is kept as given, e.g. ``{"timeout": {"read": 5.0}}``;
    ``"target"`` in it overrides the URL's. Raises TypeError for arguments of
    the wrong type. Values httpcore accepts when building a request but
    refuses when sending it are refused when it is sent here too, with the
    error found now: an invalid method, header, timeout or URL is a
    LocalProtocolError, a URL without an origin or with a scheme other than
    http, https, ws and wss an UnsupportedProtocol (httpx builds requests
    outside its exception mapping, and maps what sending raises).
    """

    __slots__ = ("extensions", "headers", "method", "stream", "url")

    def __init__(
        self,
        method: bytes | str,
        url: URL | bytes | str,
        *,
        headers: HeaderTypes = None,
        content: Content = None,
        extensions: Extensions | None = None,
    ) -> None:
        # One pass of checks; what fails them makes a request that fails when
        # sent (``_unsendable``). A try block costs nothing until it catches.
        try:
            known = _KNOWN_METHODS.get(method) if type(method) is str else None
            if known is None:
                known = enforce_bytes(method, name="method")
                if known not in _KNOWN_METHOD_BYTES and _TOKEN.fullmatch(known) is None:
                    raise LocalProtocolError(f"Invalid method {known!r}: not an RFC 9110 token.")
            self.method: bytes = known
            url = url if type(url) is URL else enforce_url(url, name="url")
            self.headers: Headers = (
                [] if headers is None else enforce_headers(headers, name="headers")
            )
            self.stream: Stream = (
                _EMPTY if content is None else enforce_stream(content, name="content")
            )
            if extensions is None:
                extensions = {}
            elif extensions:
                if "timeout" in extensions:
                    check_timeout(extensions["timeout"])
                target = extensions.get("target")
                if target is not None:
                    url = URL(scheme=url.scheme, host=url.host, port=url.port, target=target)
            self.url: URL = url
            self.extensions: Extensions = extensions
        except LocalProtocolError as exc:
            self._unsendable(method, url, headers, content, extensions, exc)

    def _unsendable(
        self,
        method: bytes | str,
        url: URL | bytes | str,
        headers: HeaderTypes,
        content: Content,
        extensions: Extensions | None,
        error: LocalProtocolError,
    ) -> None:
        """Build what can be built, and a URL whose origin raises ``error``."""
        self.method = method if isinstance(method, bytes) else method.encode("utf-8", "replace")
        try:
            base = url if isinstance(url, URL) else URL(url)
        except LocalProtocolError:
            base = URL()
        self.url = UnsendableURL(base, error)
        self.headers = []
        with contextlib.suppress(LocalProtocolError):  # a non-ASCII str: kept out
            self.headers = enforce_headers(headers, name="headers", validate=False)
        self.stream = enforce_stream(content, name="content")
        self.extensions = {} if extensions is None else extensions

    def __repr__(self) -> str:
        return f"<Request [{self.method!r}]>"


def include_request_headers(request: Request) -> None:
    """Add the headers HTTP/1.1 requires to ``request.headers``, in place.

    ``Host`` first, if absent (port only if not the default). Unless either is
    present, ``Content-Length`` for a bytes body that is non-empty or sent by
    POST, PUT or PATCH; ``Transfer-Encoding: chunked`` for an iterable body.
    LocalProtocolError if the caller gave both (a request smuggling vector).
    """
    headers = request.headers
    names = {key.lower() for key, _ in headers} if headers else _NO_NAMES
    if b"host" not in names:
        url = request.url
        host = _host_headers.get(url.origin)
        if host is None:
            host = url.host
            if b":" in host:  # RFC 6874: the zone means nothing to the server
                host = b"[" + host.partition(b"%")[0] + b"]"
            if url.port is not None and url.port != DEFAULT_PORTS.get(url.scheme):
                host = b"%b:%d" % (host, url.port)
            if len(_host_headers) < _CACHE_LIMIT:
                _host_headers[url.origin] = host
        headers.insert(0, (b"Host", host))
    if b"content-length" in names and b"transfer-encoding" in names:
        # Servers and proxies that disagree on which one frames the body is
        # how requests are smuggled (RFC 9112 6.1 forbids sending both).
        raise LocalProtocolError("A request cannot have both Content-Length and Transfer-Encoding.")
    if b"content-length" not in names and b"transfer-encoding" not in names:
        stream = request.stream
        if not isinstance(stream, ByteStream):
            headers.append((b"Transfer-Encoding", b"chunked"))
        elif stream.content or request.method in _BODY_METHODS:
            headers.append((b"Content-Length", b"%d" % len(stream.content)))


# Body types seen to be sync or async iterables. ``isinstance`` against the
# ABCs runs ``ABCMeta.__instancecheck__``, some 1,800 instructions (callgrind),
# twice per response; like ABCMeta's own cache, this one keeps only answers
# that stay true. Bounded, as the caches above.
_sync_bodies: set[type] = set()
_async_bodies: set[type] = set()


def _is_body(stream: object, kind: type, seen: set[type]) -> bool:
    """``isinstance(stream, kind)`` (``Iterable`` or ``AsyncIterable``), remembered
    in ``seen``; callers look there first, without this call."""
    if not isinstance(stream, kind):
        return False
    if len(seen) < _CACHE_LIMIT:
        seen.add(type(stream))
    return True


def _wrong_kind(stream: object) -> TypeError:
    a, kind = ("a", "an async") if isinstance(stream, AsyncIterable) else ("", "a sync")
    return TypeError(f"This response has {kind} body; use {a}read, {a}iter_stream, {a}close.")


class Response:
    """An HTTP response. The body streams once (``iter_stream``/``aiter_stream``);
    ``content`` is there after ``read()``/``aread()``; ``close()``/``aclose()``
    release the connection. Headers are converted, not validated (see above)."""

    __slots__ = ("_consumed", "_content", "extensions", "headers", "status", "stream")

    def __init__(
        self,
        status: int,
        *,
        headers: HeaderTypes = None,
        content: Content = None,
        extensions: Extensions | None = None,
    ) -> None:
        self.status: int = status
        self.headers: Headers = enforce_headers(headers, name="headers", validate=False)
        self.stream: Stream = enforce_stream(content, name="content")
        self.extensions: Extensions = {} if extensions is None else extensions
        self._content: bytes | None = None
        self._consumed = False

    @classmethod
    def from_parser(
        cls, status: int, headers: Headers, stream: Stream, extensions: Extensions
    ) -> Response:
        """For protocol layers: ``headers`` a new list of bytes pairs from a parser
        that checked them, ``stream`` the body; taken as they are, not converted."""
        response = cls.__new__(cls)
        response.status = status
        response.headers = headers
        response.stream = stream
        response.extensions = extensions
        response._content = None
        response._consumed = False
        return response

    @property
    def content(self) -> bytes:
        """The whole body. Raises RuntimeError until it has been read."""
        if self._content is None:
            call = "response.read()" if isinstance(self.stream, Iterable) else "response.aread()"
            raise RuntimeError(f"The response body has not been read yet; call '{call}' first.")
        return self._content

    def _claim(self) -> None:
        if self._consumed:
            raise RuntimeError("The response body has already been streamed; it streams once.")
        self._consumed = True

    def read(self) -> bytes:
        """Read and keep the whole body; later calls return it again."""
        if self._content is None:
            self._content = b"".join(self.iter_stream())
        return self._content

    def iter_stream(self) -> Iterator[bytes]:
        """The body's chunks; RuntimeError the second time, TypeError if async."""
        stream = self.stream
        if type(stream) not in _sync_bodies and not _is_body(stream, Iterable, _sync_bodies):
            raise _wrong_kind(stream)
        self._claim()
        return iter(cast(Iterable[bytes], stream))

    def close(self) -> None:
        """Close the body stream, which releases its connection."""
        stream = self.stream
        if type(stream) not in _sync_bodies and not _is_body(stream, Iterable, _sync_bodies):
            raise _wrong_kind(stream)
        if hasattr(stream, "close"):
            stream.close()

    async def aread(self) -> bytes:
        """Read and keep the whole body; later calls return it again."""
        if self._content is None:
            # A loop, not a comprehension: that was one coroutine more per response.
            chunks = []
            async for chunk in self.aiter_stream():
                chunks.append(chunk)
            self._content = b"".join(chunks)
        return self._content

    def aiter_stream(self) -> AsyncIterator[bytes]:
        """The body's chunks; RuntimeError the second time, TypeError if sync."""
        stream = self.stream
        if type(stream) not in _async_bodies and not _is_body(stream, AsyncIterable, _async_bodies):
            raise _wrong_kind(stream)
        self._claim()
        return aiter(cast(AsyncIterable[bytes], stream))

    async def aclose(self) -> None:
        """Close the body stream, which releases its connection."""
        stream = self.stream
        if type(stream) not in _async_bodies and not _is_body(stream, AsyncIterable, _async_bodies):
            raise _wrong_kind(stream)
        if hasattr(stream, "aclose"):
            await stream.aclose()

    def __repr__(self) -> str:
        return f"<Response [{self.status}]>"


def get_timeout(extensions: Mapping[str, Any], key: str) -> float | None:
    """The ``key`` ("connect", "read", "write", "pool") timeout, or ``None``."""
    return cast("float | None", (extensions.get("timeout") or {}).get(key))
