"""URLs, origins, requests, responses and their headers, all as bytes.

Theory of operation: these objects are built on the hot path of every request,
so each is validated once, when constructed, with precompiled regexes and bytes
methods, and trusted from then on; ``Response`` only converts header types, as
the protocol parser has validated them. The pool keys its tables by ``Origin``
(immutable, hash computed once); a ``URL`` builds its origin once and keeps it,
so treat a ``URL`` as immutable. Bodies are sync or async iterables of bytes;
``ByteStream`` is both and replayable, so a bytes body is sent (and retried)
from either world. This module knows nothing of connections, pools or I/O.
"""

from __future__ import annotations

import contextlib
import re
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

from ._exceptions import ConnectError, LocalProtocolError, UnsupportedProtocol
from ._validation import check_timeout, normalize_host

HeaderTypes: TypeAlias = (
    Sequence[tuple[bytes | str, bytes | str]] | Mapping[bytes | str, bytes | str] | None
)
Extensions: TypeAlias = MutableMapping[str, Any]
Headers: TypeAlias = list[tuple[bytes, bytes]]
Content: TypeAlias = bytes | Iterable[bytes] | AsyncIterable[bytes] | None
Stream: TypeAlias = Iterable[bytes] | AsyncIterable[bytes]

_WEB_PORTS = {b"http": 80, b"https": 443, b"ws": 80, b"wss": 443}
# SOCKS schemes are here so that proxy URLs parse; a Request takes only REQUEST_SCHEMES.
DEFAULT_PORTS: Mapping[bytes, int] = {**_WEB_PORTS, b"socks5": 1080, b"socks5h": 1080}
REQUEST_SCHEMES = frozenset(_WEB_PORTS)

_MISSING_SCHEME = "Request URL is missing an 'http://' or 'https://' protocol."
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2
# CR, LF and NUL split or cut a header; other controls (not HTAB) are no field content.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_URL_FORBIDDEN = re.compile(rb"[\x00\t\n\r ]")
# scheme ":" ["//" authority] path-and-query; whatever follows is the fragment.
_URL_PARTS = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*):(?://([^/?#]*))?([^#]*)", re.DOTALL)
_TARGET_UNSAFE = re.compile(rb"[^\x21-\x7e]")  # h11 sends only visible ASCII
_PERCENT = [b"%%%02X" % i for i in range(256)]
_NOT_BODY = (str, bytearray, memoryview)  # iterable, but not of bytes chunks

_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_KNOWN_METHODS = {m: m.encode("ascii") for m in _METHODS}
_KNOWN_METHOD_BYTES = frozenset(_KNOWN_METHODS.values())
# Methods whose empty body is still announced as "Content-Length: 0" (RFC 9110 8.6).
_BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH"))

# Header names proven to be tokens, and hosts as given -> as normalised (the same few
# recur on every request); bounded, or endless distinct names would grow them.
_CACHE_LIMIT = 1024
_valid_names: set[bytes] = set()
_valid_hosts: dict[bytes, bytes] = {}
_parsed_urls: dict[bytes | str, URL] = {}
# Origins -> their Host header value (the port shown only if not the default).
_host_headers: dict[Origin, bytes] = {}
_NO_NAMES: frozenset[bytes] = frozenset()
_URL_CACHE_LENGTH = 512  # longer URLs are rarely repeated; keep the cache small


def enforce_bytes(value: bytes | str, *, name: str) -> bytes:
    """``value`` as bytes: TypeError unless bytes or str, LocalProtocolError if non-ASCII."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("ascii")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"{name} must be ASCII; encode text as bytes.") from None
    raise TypeError(f"{name} must be bytes or str, but got {type(value).__name__}.")


def enforce_url(value: URL | bytes | str, *, name: str) -> URL:
    """``value`` as a ``URL``, parsed if bytes or str; TypeError for other types."""
    if isinstance(value, URL):
        return value
    if isinstance(value, (bytes, str)):
        # Most requests go to a few URLs: parse each once, then hand out
        # copies (a URL is mutable in principle), which share its origin.
        parsed = _parsed_urls.get(value)
        if parsed is None:
            parsed = URL(value)
            if (
                len(value) <= _URL_CACHE_LENGTH
                and len(_parsed_urls) < _CACHE_LIMIT
                and parsed.is_requestable()
            ):
                _ = parsed.origin  # built now, so that every copy shares it
                _parsed_urls[value] = parsed
        return URL(parsed)
    raise TypeError(f"{name} must be a URL, bytes, or str, but got {type(value).__name__}.")


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


class Origin:
    """The scheme, host and port a connection is bound to. Immutable, its hash
    computed once: the pool uses origins as dictionary keys on every event."""

    __slots__ = ("_hash", "host", "port", "scheme")
    scheme: bytes
    host: bytes
    port: int
    _hash: int

    def __init__(self, scheme: bytes, host: bytes, port: int) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "scheme", scheme)
        setattr_(self, "host", host)
        setattr_(self, "port", port)
        setattr_(self, "_hash", hash((scheme, host, port)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Origin is immutable; cannot set {name!r}.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Origin is immutable; cannot delete {name!r}.")

    def __reduce__(self) -> tuple[type[Origin], tuple[bytes, bytes, int]]:
        return (Origin, (self.scheme, self.host, self.port))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Origin):
            return NotImplemented
        return self.port == other.port and self.host == other.host and self.scheme == other.scheme

    def __str__(self) -> str:
        host = self.host.decode("ascii")
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme.decode('ascii')}://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Origin(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r})"


def _url_bytes(value: bytes | str, name: str) -> bytes:
    # Unlike other arguments, URL parts may be Unicode: the host is then
    # IDNA-encoded and the target percent-encoded, both from UTF-8.
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("ascii") if value.isascii() else value.encode("utf-8")
    raise TypeError(f"{name} must be bytes or str, but got {type(value).__name__}.")


def unsupported_protocol(scheme: bytes) -> UnsupportedProtocol:
    """The error for a request to ``scheme``, which httpool does not speak."""
    if not scheme:
        return UnsupportedProtocol(_MISSING_SCHEME)
    text = scheme.decode("ascii", "backslashreplace")
    return UnsupportedProtocol(f"Request URL has an unsupported protocol '{text}://'.")


def _host(raw: bytes) -> bytes:
    host = _valid_hosts.get(raw)
    if host is None:
        host = normalize_host(raw)
        if len(_valid_hosts) < _CACHE_LIMIT:
            _valid_hosts[raw] = host
    return host


def _escape(match: re.Match[bytes]) -> bytes:
    return _PERCENT[match.group()[0]]


def _check_forbidden(raw: bytes, what: str) -> None:
    m = _URL_FORBIDDEN.search(raw)
    if m is not None:
        raise LocalProtocolError(f"Invalid {what}: forbidden byte {m.group()!r} at {m.start()}.")


class URL:
    """Where a request goes: ``scheme``, ``host``, ``port`` and ``target``.

    Give a whole URL, ``URL("https://a.example/b?c")``, or its parts, which
    can say what a URL string cannot: ``URL(scheme="https", host="a", target="*")``.
    Scheme and host are lowercased, a Unicode host IDNA-encoded, IPv6 kept
    without brackets; ``port`` is ``None`` for the default; ``target`` is the
    path and query, percent-encoded, ``b"/"`` if empty. Fragment and userinfo
    are dropped. Raises LocalProtocolError for CR, LF, NUL, space or tab, an
    invalid host, or a port in a URL string that is not a number in 0-65535.

    What httpcore accepts when a URL is built, httpool accepts too: a missing
    or unknown scheme, an empty host, a port part out of range. Such a URL
    can be built and printed, but has no ``origin``: asking for it (as
    sending a request does) raises UnsupportedProtocol, LocalProtocolError
    or ConnectError.
    So the error surfaces where the request is sent, inside whatever
    exception mapping the caller has there (httpx builds its URLs outside it).
    """

    __slots__ = ("_origin", "host", "port", "scheme", "target")

    def __init__(
        self,
        url: URL | bytes | str = "",
        *,
        scheme: bytes | str = b"",
        host: bytes | str = b"",
        port: int | None = None,
        target: bytes | str = b"",
    ) -> None:
        self._origin: Origin | None = None
        if isinstance(url, URL):
            self.scheme: bytes = url.scheme
            self.host: bytes = url.host
            self.port: int | None = url.port
            self.target: bytes = url.target
            self._origin = url._origin
        elif url:
            self._parse(_url_bytes(url, "url"))
        else:
            self.scheme = enforce_bytes(scheme, name="scheme").lower()
            raw_host = _url_bytes(host, "host")
            self.host = _host(raw_host) if raw_host else b""
            if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
                raise TypeError(f"port must be an int or None, not {type(port).__name__}.")
            self.port = port
            raw = _url_bytes(target, "target") or b"/"
            if _TARGET_UNSAFE.search(raw) is not None:
                _check_forbidden(raw, "URL target")
                raw = _TARGET_UNSAFE.sub(_escape, raw)
            self.target = raw

    def _parse(self, raw: bytes) -> None:
        # Visible ASCII only, the usual case, means nothing to reject or encode.
        unsafe = _TARGET_UNSAFE.search(raw) is not None
        if unsafe:
            _check_forbidden(raw, "URL")
        match = _URL_PARTS.match(raw)
        scheme, authority, rest = (b"", None, b"") if match is None else match.groups()
        if authority is None:
            # No scheme ("example.com:8080/x" has none, not the scheme
            # "example.com"), or no host ("http:x"): a URL without an origin.
            known = scheme.lower() in DEFAULT_PORTS
            self.scheme = scheme.lower() if known else b""
            self.host = b""
            self.port = None
            self.target = b"/"
            return
        self.scheme = scheme.lower()
        hostport = authority.rpartition(b"@")[2]
        if hostport[:1] == b"[":
            end = hostport.find(b"]") + 1 or len(hostport)
            host, after = hostport[:end], hostport[end:]
            if after[:1] not in (b"", b":"):
                raise LocalProtocolError(f"Invalid URL: unexpected {after!r} after the host.")
            port = after[1:]
        else:
            host, _, port = hostport.partition(b":")
        # An empty port, "http://host:/", means the default (RFC 3986 3.2.3).
        if port and (not port.isdigit() or len(port) > 5 or int(port) > 65535):
            raise LocalProtocolError(f"Invalid URL: port {port!r} is not a number in 0-65535.")
        self.port = int(port) if port else None
        self.host = _host(host) if host else b""
        rest = b"/" + rest if rest[:1] == b"?" else rest or b"/"
        self.target = _TARGET_UNSAFE.sub(_escape, rest) if unsafe else rest

    @property
    def origin(self) -> Origin:
        """The ``Origin`` of this URL, built on first use and then kept.

        Raises UnsupportedProtocol for a missing or unknown scheme,
        LocalProtocolError for an empty host, and ConnectError for a port
        outside 0-65535 (as connecting to it does in httpcore).
        """
        origin = self._origin
        if origin is None:
            default = DEFAULT_PORTS.get(self.scheme)
            if default is None:
                raise unsupported_protocol(self.scheme)
            if not self.host:
                raise LocalProtocolError("Invalid URL: the host is empty.")
            port = self.port
            if port is None:
                port = default
            elif not 0 <= port <= 65535:
                # What connecting to it would raise (httpcore's error, and so httpx's).
                raise ConnectError(f"Invalid URL: port {port} is not in 0-65535.")
            origin = self._origin = Origin(self.scheme, self.host, port)
        return origin

    def is_requestable(self) -> bool:
        """Whether ``origin`` exists: a known scheme, a host, a port in range."""
        port = self.port
        return (
            self.scheme in DEFAULT_PORTS
            and bool(self.host)
            and (port is None or 0 <= port <= 65535)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, URL):
            return NotImplemented
        return (
            self.scheme == other.scheme
            and self.host == other.host
            and self.port == other.port
            and self.target == other.target
        )

    def __bytes__(self) -> bytes:
        host = self.host
        if b":" in host:
            host = b"[" + host.replace(b"%", b"%25") + b"]"
        if self.port is None:
            return b"%b://%b%b" % (self.scheme, host, self.target)
        return b"%b://%b:%d%b" % (self.scheme, host, self.port, self.target)

    def __repr__(self) -> str:
        return (
            f"URL(scheme={self.scheme!r}, host={self.host!r}, "
            f"port={self.port!r}, target={self.target!r})"
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
            self.stream: Stream = enforce_stream(content, name="content")
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


class UnsendableURL(URL):
    """The URL of a request that cannot be sent: asking for its origin (as
    sending does, first) raises the error found when the request was built."""

    __slots__ = ("error",)

    def __init__(self, url: URL, error: LocalProtocolError) -> None:
        super().__init__(url)
        self.error = error

    @property
    def origin(self) -> Origin:
        raise type(self.error)(str(self.error))

    def is_requestable(self) -> bool:
        return False


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
        if not isinstance(stream, Iterable):
            raise _wrong_kind(stream)
        self._claim()
        return iter(stream)

    def close(self) -> None:
        """Close the body stream, which releases its connection."""
        stream = self.stream
        if not isinstance(stream, Iterable):
            raise _wrong_kind(stream)
        if hasattr(stream, "close"):
            stream.close()

    async def aread(self) -> bytes:
        """Read and keep the whole body; later calls return it again."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.aiter_stream()])
        return self._content

    def aiter_stream(self) -> AsyncIterator[bytes]:
        """The body's chunks; RuntimeError the second time, TypeError if sync."""
        stream = self.stream
        if not isinstance(stream, AsyncIterable):
            raise _wrong_kind(stream)
        self._claim()
        return aiter(stream)

    async def aclose(self) -> None:
        """Close the body stream, which releases its connection."""
        stream = self.stream
        if not isinstance(stream, AsyncIterable):
            raise _wrong_kind(stream)
        if hasattr(stream, "aclose"):
            await stream.aclose()

    def __repr__(self) -> str:
        return f"<Response [{self.status}]>"


def get_timeout(extensions: Mapping[str, Any], key: str) -> float | None:
    """The ``key`` ("connect", "read", "write", "pool") timeout, or ``None``."""
    return cast("float | None", (extensions.get("timeout") or {}).get(key))
