"""What one ``httpool bench`` run sends, how hard, and through what kind of pool.

Theory of operation: ``BenchConfig`` is a frozen record built once by the
command line and read by the runners (``loadgen.py``) and the report
(``results.py``). Everything a worker passes to ``pool.request`` for every
request (method, URL, headers, body, extensions) is computed from it once per
run, never per request. ``check_url`` rejects, before any worker starts, a
URL the pool could never send.
"""

from __future__ import annotations

import dataclasses
import ssl
import typing

from .._exceptions import UnsupportedProtocol
from .._urls import URL

RUNTIMES = ("sync", "asyncio", "trio")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to send, how hard, and through what kind of pool."""

    url: str
    requests: int
    concurrency: int
    method: str = "GET"
    body_size: int = 0  # an upload of that many bytes, unless ``data`` is given
    max_connections: int | None = None  # None: as many as workers
    http2: bool = False  # https: offered by ALPN; http: with prior knowledge (h2c)
    timeout: float | None = None
    progress: bool = False  # refresh a progress line on stderr
    ssl_context: ssl.SSLContext | None = None  # None: the pool's default (verifying)
    headers: tuple[tuple[bytes, bytes], ...] = ()
    data: bytes | None = None  # the body of every request (--data)

    @property
    def workers(self) -> int:
        """Threads or tasks: never more than there are requests to send."""
        return min(self.concurrency, self.requests)

    @property
    def pool_size(self) -> int:
        return self.max_connections or self.workers

    @property
    def pool_options(self) -> dict[str, typing.Any]:
        """Keyword arguments for the run's pool."""
        options: dict[str, typing.Any] = {"max_connections": self.pool_size, "http2": self.http2}
        if self.http2 and URL(self.url).scheme == b"http":
            # Cleartext has no ALPN: HTTP/2 there means prior knowledge.
            options["http1"] = False
        if self.ssl_context is not None:
            options["ssl_context"] = self.ssl_context
        return options

    @property
    def content(self) -> bytes | None:
        if self.data is not None:
            return self.data
        return b"x" * self.body_size if self.body_size else None

    @property
    def extensions(self) -> dict[str, typing.Any]:
        if self.timeout is None:
            return {}
        limits = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout)
        return {"timeout": limits}


def check_url(url: str) -> None:
    """Reject a URL the pool could never send, before any worker starts.

    Raises the error sending to it would raise (``UnsupportedProtocol``,
    ``LocalProtocolError``), and ``UnsupportedProtocol`` for a scheme other
    than http or https.
    """
    scheme = URL(url).origin.scheme
    if scheme not in (b"http", b"https"):
        raise UnsupportedProtocol(
            f"URL {url!r}: the load generator speaks http and https, not {scheme.decode()!r}"
        )
