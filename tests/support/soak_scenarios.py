"""The soak's traffic mix (``scripts/soak.py``): what each request does and may raise.

Theory of operation: a ``Scenario`` names a server, a request and the
outcomes it allows. ``HTTP1`` runs against the HTTP/1.1 servers of
``tests/support/http_server.py`` through a pool with ``http1=True``;
``HTTP2`` runs against the h2c/TLS servers of ``tests/support/h2_server.py``
through a second pool with ``http1=False, http2=True``, so every h2 request
is HTTP/2 (prior knowledge on plain TCP, ALPN ``h2`` on TLS). A scenario's
``server`` picks its pool: names starting with ``h2`` are HTTP/2.

The HTTP/2 servers: ``h2`` is plain h2c and gets a GOAWAY on every open
connection every 250 ms while requests are in flight (streams at or below
the last id must finish, later ones be retried on another connection, so no
failure is expected from it); ``h2_few`` advertises
``max_concurrent_streams=2`` (the pool must open more connections, never
more streams); ``h2_idle`` sends GOAWAY and closes a connection idle for 50 ms
(idle connections die under the pool); ``h2_tls`` is HTTP/2 over TLS.

Bodies are checked, not only statuses: ``expected_body`` computes the answer
of ``/bytes`` (the h2 server's pattern), ``/upload`` (its length and SHA-256)
and ``/echo`` from what was sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random

import httpool
from tests.support.h2_server import pattern


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One kind of request: where it goes, how, and what it may raise.

    ``mode``: "read" reads the whole body; "first_chunk" closes the response
    after its first chunk; "cancel" gives the request up after a random
    delay of up to ``cancel_after`` seconds (on threads, where nothing can be
    cancelled, the same delay is the read timeout instead).
    """

    name: str
    weight: int
    server: str  # a key of the URLs the parent hands to the children
    path: str  # "{size}" in it is replaced by a size drawn from size_range
    method: str = "GET"
    body_size: int = 0
    size_range: tuple[int, int] = (0, 0)
    timeout: dict[str, float] = dataclasses.field(default_factory=dict)
    expect_status: int = 200
    expect_body: bytes | None = None
    expected_errors: tuple[type[BaseException], ...] = ()
    must_fail: bool = False
    mode: str = "read"
    cancel_after: float = 0.0
    pause: float = 0.0  # up to this long idle before the request (lets connections go stale)
    # Errors expected only when the last attempt was on a new connection: a
    # reused one that died must have been retried on a new one instead.
    fresh_errors: tuple[type[BaseException], ...] = ()

    @property
    def http2(self) -> bool:
        return self.server.startswith("h2")


def prepare(scenario: Scenario, rng: random.Random) -> tuple[str, bytes, bytes | None]:
    """The path, the request body and the expected response body (None: unchecked)."""
    path = scenario.path
    expected = scenario.expect_body
    if "{size}" in path:
        size = rng.randint(*scenario.size_range)
        path = path.format(size=size)
        expected = pattern(size)
    content = rng.randbytes(rng.randrange(1, scenario.body_size)) if scenario.body_size else b""
    if path == "/upload":
        expected = b"%d %s" % (len(content), hashlib.sha256(content).hexdigest().encode())
    elif path == "/echo":
        expected = content
    return path, content, expected


HTTP1 = (
    Scenario("keepalive", 30, "plain", "/", expect_body=b"Hello, world!"),
    Scenario("close", 5, "plain", "/close", expect_body=b"Closing."),
    Scenario("slow", 5, "plain", "/slow?delay=0.05", expect_body=b"Slow."),
    Scenario(
        "drip",
        4,
        "plain",
        "/drip?chunks=5&delay=0.01",
        expect_body=b"".join(b"chunk %d;" % i for i in range(5)),
    ),
    Scenario("chunked", 4, "plain", "/chunked?size=100000&chunk=7000", expect_body=b"x" * 100000),
    Scenario("upload", 6, "plain", "/echo", method="POST", body_size=200000),
    Scenario("first_chunk", 5, "plain", "/bytes?size=500000", mode="first_chunk"),
    Scenario(
        "hang",
        2,
        "plain",
        "/hang",
        timeout={"read": 0.1},
        expected_errors=(httpool.ReadTimeout,),
        must_fail=True,
    ),
    Scenario("early", 2, "plain", "/early", method="POST", body_size=1000000, expect_status=413),
    Scenario(
        "pool_timeout",
        5,
        "plain",
        "/slow?delay=0.02",
        timeout={"pool": 0.001},
        expected_errors=(httpool.PoolTimeout,),
    ),
    Scenario(
        "cancel",
        5,
        "plain",
        "/slow?delay=0.1",
        mode="cancel",
        cancel_after=0.15,
        expected_errors=(httpool.ReadTimeout,),
    ),
    # The stale server closes connections idle for 50 ms, a new one too: on a
    # loaded machine a client can take that long between connect and send
    # (and a close with the request unread is a reset: ReadError).
    Scenario(
        "stale",
        10,
        "stale",
        "/",
        expect_body=b"Hello, world!",
        pause=0.1,
        fresh_errors=(httpool.RemoteProtocolError, httpool.ReadError),
    ),
    # A drop on a reused connection is retried transparently; on a new one
    # it is the server's answer.
    Scenario(
        "drop",
        10,
        "drop",
        "/",
        expect_body=b"Hello, world!",
        fresh_errors=(httpool.RemoteProtocolError,),
    ),
)

HELLO = b"Hello, world!"
MB = 1000 * 1000

# About as much weight as HTTP1: half the requests are HTTP/2.
HTTP2 = (
    Scenario("h2_get", 25, "h2", "/", expect_body=HELLO),
    Scenario("h2_bytes", 6, "h2", "/bytes?size={size}", size_range=(100_000, 2 * MB)),
    Scenario(
        "h2_first_chunk",
        5,
        "h2",
        "/bytes?size={size}",
        size_range=(100_000, 2 * MB),
        mode="first_chunk",
    ),
    Scenario("h2_upload", 6, "h2", "/upload", method="POST", body_size=MB),
    Scenario("h2_slow", 5, "h2", "/slow?delay=0.05", expect_body=b"slow"),
    Scenario(
        "h2_hang",
        2,
        "h2",
        "/hang",
        timeout={"read": 0.1},
        expected_errors=(httpool.ReadTimeout,),
        must_fail=True,
    ),
    # RST_STREAM(INTERNAL_ERROR) as soon as the headers arrive: that stream
    # fails alone, the connection goes on.
    Scenario(
        "h2_reset",
        3,
        "h2",
        "/reset",
        expected_errors=(httpool.RemoteProtocolError,),
        must_fail=True,
    ),
    Scenario(
        "h2_cancel",
        5,
        "h2",
        "/slow?delay=0.1",
        mode="cancel",
        cancel_after=0.15,
        expected_errors=(httpool.ReadTimeout,),
    ),
    Scenario(
        "h2_pool_timeout",
        3,
        "h2_few",
        "/slow?delay=0.05",
        timeout={"pool": 0.001},
        expected_errors=(httpool.PoolTimeout,),
    ),
    # Two streams per connection: slow requests pile up and need more connections.
    Scenario("h2_few", 8, "h2_few", "/slow?delay=0.02", expect_body=b"slow"),
    Scenario("h2_few_upload", 3, "h2_few", "/upload", method="POST", body_size=300_000),
    # Connections idle for 50 ms get GOAWAY and a close: the pause makes that
    # happen under the pool, between requests and sometimes as one starts.
    Scenario("h2_idle", 8, "h2_idle", "/", expect_body=HELLO, pause=0.1),
    Scenario("h2_tls", 6, "h2_tls", "/", expect_body=HELLO),
    Scenario("h2_tls_bytes", 3, "h2_tls", "/bytes?size={size}", size_range=(100_000, MB)),
    Scenario("h2_tls_upload", 3, "h2_tls", "/echo", method="POST", body_size=500_000),
)

SCENARIOS = HTTP1 + HTTP2
