"""``Proxy``: where a pool sends its requests instead of to their origins.

Theory of operation: a ``Proxy`` is plain configuration, made once and read by
the pool when it builds connections. It holds the proxy's URL (userinfo
removed), the credentials (from ``auth`` or else from the URL's userinfo),
the headers every request to an HTTP proxy carries (``Proxy-Authorization``
first when there are credentials) and the TLS context for an ``https://``
proxy. It makes no I/O and knows nothing of connections.
"""

from __future__ import annotations

import base64
import ssl
import urllib.parse

from ._exceptions import UnsupportedProtocol
from ._models import Headers, HeaderTypes, enforce_headers
from ._urls import URL, enforce_bytes, enforce_url

HTTP_PROXY_SCHEMES = frozenset((b"http", b"https"))
SOCKS_PROXY_SCHEMES = frozenset((b"socks5", b"socks5h"))


class Proxy:
    """A proxy for ``ConnectionPool(proxy=...)`` / ``AsyncConnectionPool(proxy=...)``.

    Args:
        url: ``http://``, ``https://`` (TLS to the proxy itself), ``socks5://``
            (names resolved here) or ``socks5h://`` (names resolved by the
            proxy). A ``user:password@`` in a string or bytes URL is taken as
            the credentials when ``auth`` is not given (percent-decoded).
        auth: ``(username, password)``: Basic ``Proxy-Authorization`` for an
            HTTP proxy, username/password authentication for SOCKS5.
        headers: sent to an HTTP proxy with every forwarded request and with
            every ``CONNECT``.
        ssl_context: for the TLS connection to an ``https://`` proxy (the
            origin's TLS uses the pool's ``ssl_context``).

    Raises ``UnsupportedProtocol`` for any other scheme, and the URL's errors.
    """

    def __init__(
        self,
        url: URL | bytes | str,
        auth: tuple[bytes | str, bytes | str] | None = None,
        headers: HeaderTypes = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if auth is None and not isinstance(url, URL):
            auth = _userinfo(url)
        self.url = enforce_url(url, name="url")
        if self.url.scheme not in HTTP_PROXY_SCHEMES | SOCKS_PROXY_SCHEMES:
            scheme = self.url.scheme.decode("ascii")
            raise UnsupportedProtocol(f"Unsupported proxy scheme '{scheme}://'.")
        self.headers: Headers = enforce_headers(headers, name="headers")
        self.ssl_context = ssl_context
        self.auth: tuple[bytes, bytes] | None = None
        if auth is not None:
            username = enforce_bytes(auth[0], name="auth")
            password = enforce_bytes(auth[1], name="auth")
            self.auth = (username, password)
            credentials = base64.b64encode(username + b":" + password)
            self.headers = [(b"Proxy-Authorization", b"Basic " + credentials), *self.headers]

    @property
    def is_socks(self) -> bool:
        return self.url.scheme in SOCKS_PROXY_SCHEMES

    def __repr__(self) -> str:
        # Never the credentials.
        return f"Proxy({bytes(self.url).decode('ascii')!r})"


def _userinfo(url: bytes | str) -> tuple[bytes, bytes] | None:
    """The percent-decoded ``(user, password)`` of ``scheme://user:password@host``."""
    text = url.decode("ascii", "surrogateescape") if isinstance(url, bytes) else url
    authority = text.partition("://")[2].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" not in authority:
        return None
    userinfo = authority.rpartition("@")[0]
    username, _, password = userinfo.partition(":")
    return (
        urllib.parse.unquote_to_bytes(username),
        urllib.parse.unquote_to_bytes(password),
    )
