"""URLs and origins: parsing, default ports, host normalisation and IDNA.

Theory of operation: a ``URL`` is parsed once, with precompiled regexes and
bytes methods, and trusted from then on; treat it as immutable. Its ``Origin``
(scheme, host, port: what a connection is bound to and the pool keys its
tables by) is built on first use, hash computed once, and kept, so the copies
``enforce_url`` hands out for a cached URL string share it. What httpcore
accepts when a URL is built is accepted here too; what it refuses only when
sending (no origin) raises from ``URL.origin``, which sending asks for first.

Hosts are normalised once per distinct spelling (cached, bounded): lowercased,
IPv6 without brackets (zone kept, case-sensitive), a Unicode name encoded by
IDNA 2008 with UTS 46 mapping, which is the ``idna`` package's job: without
it (extra ``idna``) such a host raises ``ImportError`` naming the extra, never
a silent fallback to the standard library's IDNA 2003 codec, whose answers
differ (``faß.de``). ASCII hosts never need it.

This module knows nothing of headers, bodies, requests, connections or I/O;
``_models`` builds on it, never the reverse (so ``enforce_bytes``, which both
use, lives here).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ._exceptions import ConnectError, LocalProtocolError, UnsupportedProtocol

_WEB_PORTS = {b"http": 80, b"https": 443, b"ws": 80, b"wss": 443}
# SOCKS schemes are here so that proxy URLs parse; a Request takes only REQUEST_SCHEMES.
DEFAULT_PORTS: Mapping[bytes, int] = {**_WEB_PORTS, b"socks5": 1080, b"socks5h": 1080}
REQUEST_SCHEMES = frozenset(_WEB_PORTS)

_MISSING_SCHEME = "Request URL is missing an 'http://' or 'https://' protocol."
_URL_FORBIDDEN = re.compile(rb"[\x00\t\n\r ]")
# scheme ":" ["//" authority] path-and-query; whatever follows is the fragment.
_URL_PARTS = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*):(?://([^/?#]*))?([^#]*)", re.DOTALL)
_TARGET_UNSAFE = re.compile(rb"[^\x21-\x7e]")  # h11 sends only visible ASCII
_PERCENT = [b"%%%02X" % i for i in range(256)]
_REG_NAME = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=%]+")  # RFC 3986 reg-name

# Hosts as given -> as normalised, and URL strings -> parsed (the same few recur
# on every request); bounded, or endless distinct ones would grow them.
_CACHE_LIMIT = 1024
_valid_hosts: dict[bytes, bytes] = {}
_parsed_urls: dict[bytes | str, URL] = {}
_URL_CACHE_LENGTH = 512  # longer URLs are rarely repeated; keep the cache small
_new_object = object.__new__


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
        # The copy, slot by slot: some 1,500 instructions fewer than URL(parsed),
        # whose keyword defaults and checks are for other callers (callgrind).
        copy: URL = _new_object(URL)
        copy.scheme = parsed.scheme
        copy.host = parsed.host
        copy.port = parsed.port
        copy.target = parsed.target
        copy._origin = parsed._origin
        return copy
    raise TypeError(f"{name} must be a URL, bytes, or str, but got {type(value).__name__}.")


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


def _idna_encode(text: str) -> bytes:
    """``text``, a non-ASCII host name, by IDNA 2008 with UTS 46 mapping (the ``idna`` extra).

    Raises ImportError naming the extra when ``idna`` is not installed, and
    LocalProtocolError for a name IDNA refuses.
    """
    try:
        import idna
    except ImportError as exc:
        raise ImportError(
            f"The non-ASCII host {text!r} needs the 'idna' extra to be IDNA-encoded:"
            " pip install httpool[idna]"
        ) from exc
    try:
        return idna.encode(text, uts46=True)
    except UnicodeError as exc:  # idna.IDNAError is one
        raise LocalProtocolError(f"Invalid URL: cannot IDNA-encode host {text!r}.") from exc


def normalize_host(raw: bytes) -> bytes:
    """A URL's host as the pool keys it: lowercased, IPv6 without brackets, IDNA-encoded.

    Raises LocalProtocolError for an empty or invalid host, a bad IPv6 address,
    or a Unicode name IDNA refuses; ImportError for a Unicode name without the
    ``idna`` extra.
    """
    if not raw:
        raise LocalProtocolError("Invalid URL: the host is empty.")
    if raw[:1] == b"[" or b":" in raw:
        if raw[:1] == b"[":
            if raw[-1:] != b"]":
                raise LocalProtocolError(f"Invalid URL: unterminated IPv6 address {raw!r}.")
            raw = raw[1:-1]
        # A zone is "%25zone" in a URL (RFC 6874), "%zone" elsewhere, and
        # case-sensitive; the address is not.
        address, _, zone = raw.replace(b"%25", b"%", 1).partition(b"%")
        try:
            ipaddress.IPv6Address(address.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise LocalProtocolError(f"Invalid URL: {raw!r} is not an IPv6 address.") from None
        return address.lower() + b"%" + zone if zone else address.lower()
    if not raw.isascii():
        raw = _idna_encode(raw.decode("utf-8", "backslashreplace"))
    if _REG_NAME.fullmatch(raw) is None:
        raise LocalProtocolError(f"Invalid URL: {raw!r} is not a valid host.")
    return raw.lower()


class URL:
    """Where a request goes: ``scheme``, ``host``, ``port`` and ``target``.

    Give a whole URL, ``URL("https://a.example/b?c")``, or its parts, which
    can say what a URL string cannot: ``URL(scheme="https", host="a", target="*")``.
    Scheme and host are lowercased, a Unicode host IDNA-encoded, IPv6 kept
    without brackets; ``port`` is ``None`` for the default; ``target`` is the
    path and query, percent-encoded, ``b"/"`` if empty. Fragment and userinfo
    are dropped. Raises LocalProtocolError for CR, LF, NUL, space or tab, an
    invalid host, or a port in a URL string that is not a number in 0-65535;
    ImportError for a Unicode host without the ``idna`` extra.

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
