"""httpool through real proxies: tinyproxy (HTTP, CONNECT), dante (SOCKS5), nginx (TLS front).

The origins are the project's own test servers (HTTP/1.1 in clear and over
TLS, HTTP/2 over TLS via ALPN); the proxies are real software started by
``tests/interop/proxies.py``. Each scenario runs on threads, asyncio and trio
(the ``variant`` parameter), through one pool per scenario: a failure must
leave the pool serving the next request, with nothing leaked
(``check_invariants`` and a zero connection count after failures). Every
request carries timeouts, so a proxy that stops talking fails the test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import trustme

import httpool
from tests.support.h2_server import H2Server, make_tls_server, pattern, pattern_sha256
from tests.support.http_server import HTTPServer, make_tls_contexts

from .proxies import Dante, NginxTLSFront, ProxyUnavailable, TinyProxy, client_context, free_port

TIMEOUTS = {"connect": 10.0, "read": 20.0, "write": 20.0, "pool": 20.0}
VARIANTS = ("sync", "asyncio", "trio")
ROUNDS = 20  # requests per scenario on one pool (keep-alive) and fresh pools


@dataclass
class Origins:
    plain: HTTPServer
    tls: HTTPServer
    h2: H2Server
    tls_client: typing.Any  # ssl.SSLContext trusting tls (HTTP/1.1 ALPN only)
    h2_client: typing.Any  # ssl.SSLContext trusting h2
    closed_port: int = field(default_factory=free_port)


@pytest.fixture(scope="module")
def origins() -> Iterator[Origins]:
    ca = trustme.CA()
    contexts = make_tls_contexts(ca)
    h2 = make_tls_server()
    with HTTPServer() as plain, HTTPServer(ssl_context=contexts.server) as tls, h2:
        assert h2.client_ssl_context is not None
        yield Origins(plain, tls, h2, contexts.client, h2.client_ssl_context)


def _start(factory: typing.Callable[[], typing.Any]) -> typing.Any:
    try:
        return factory().start()
    except ProxyUnavailable as exc:
        pytest.skip(f"proxy interop: {exc} (apt-get install tinyproxy dante-server nginx)")


@pytest.fixture(scope="module")
def tinyproxy(origins: Origins) -> Iterator[TinyProxy]:
    """tinyproxy requiring user:secret, CONNECT allowed to the two TLS origins only."""
    ports = (origins.tls.port, origins.h2.port)
    proxy = _start(lambda: TinyProxy(auth=("user", "secret"), connect_ports=ports))
    yield proxy
    proxy.remove()


@pytest.fixture(scope="module")
def open_tinyproxy(origins: Origins) -> Iterator[TinyProxy]:
    ports = (origins.tls.port, origins.h2.port)
    proxy = _start(lambda: TinyProxy(connect_ports=ports))
    yield proxy
    proxy.remove()


@pytest.fixture(scope="module")
def tls_front(open_tinyproxy: TinyProxy) -> Iterator[tuple[NginxTLSFront, typing.Any]]:
    """An https:// proxy: nginx terminating TLS in front of tinyproxy."""
    ca = trustme.CA()
    front = _start(lambda: NginxTLSFront(backend_port=open_tinyproxy.port, ca=ca))
    yield front, client_context(ca)
    front.remove()


@pytest.fixture(scope="module")
def dante(origins: Origins) -> Iterator[Dante]:
    proxy = _start(lambda: Dante(blocked_port=origins.closed_port))
    yield proxy
    proxy.remove()


@pytest.fixture(scope="module")
def dante_auth() -> Iterator[Dante]:
    proxy = _start(lambda: Dante(username=True))
    yield proxy
    proxy.remove()


# -- one runner for the three variants ----------------------------------------


@dataclass
class Outcome:
    results: list[httpool.Response | httpool.HttpoolError]
    stats: httpool.PoolStats


def run(variant: str, urls: list[str], **pool_kwargs: typing.Any) -> Outcome:
    """GET each URL in turn on one pool; collect responses (body read) or errors."""
    extensions = {"timeout": TIMEOUTS}
    results: list[httpool.Response | httpool.HttpoolError] = []
    if variant == "sync":
        with httpool.ConnectionPool(**pool_kwargs) as pool:
            for url in urls:
                try:
                    results.append(pool.request("GET", url, extensions=extensions))
                except httpool.HttpoolError as exc:
                    results.append(exc)
            pool.check_invariants()
            stats = pool.stats()
        return Outcome(results, stats)

    async def main() -> httpool.PoolStats:
        async with httpool.AsyncConnectionPool(**pool_kwargs) as pool:
            for url in urls:
                try:
                    results.append(await pool.request("GET", url, extensions=extensions))
                except httpool.HttpoolError as exc:
                    results.append(exc)
            pool.check_invariants()
            return pool.stats()

    if variant == "trio":
        import trio

        stats = trio.run(main)
    else:
        stats = asyncio.run(main())
    return Outcome(results, stats)


def ok(result: httpool.Response | httpool.HttpoolError, version: bytes = b"HTTP/1.1") -> None:
    assert isinstance(result, httpool.Response), result
    assert result.status == 200 and result.content == b"Hello, world!"
    assert result.extensions["http_version"] == version


# -- tinyproxy ------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_tinyproxy_forwarding_with_auth(
    variant: str, tinyproxy: TinyProxy, origins: Origins
) -> None:
    accepted = origins.plain.connections_accepted
    proxy = httpool.Proxy(tinyproxy.url, auth=("user", "secret"))
    outcome = run(variant, [origins.plain.url + "/"] * ROUNDS, proxy=proxy)
    for result in outcome.results:
        ok(result)
    # tinyproxy hangs up after every forwarded response without saying so (no
    # "Connection: close"): the liveness probe or the stale-connection retry
    # must notice, and no request may fail or leave a connection behind.
    # (stats().requests counts a retried request twice, so it may exceed ROUNDS.)
    assert outcome.stats.requests >= ROUNDS and outcome.stats.connections == 1
    assert origins.plain.connections_accepted > accepted


@pytest.mark.parametrize("variant", VARIANTS)
def test_tinyproxy_connect_http11(variant: str, tinyproxy: TinyProxy, origins: Origins) -> None:
    before, accepted = tinyproxy.connect_count(), origins.tls.connections_accepted
    outcome = run(
        variant,
        [origins.tls.url + "/"] * ROUNDS,
        proxy=httpool.Proxy(tinyproxy.url.replace("://", "://user:secret@")),
        ssl_context=origins.tls_client,
    )
    for result in outcome.results:
        ok(result)
    assert outcome.stats.opened == 1
    assert origins.tls.connections_accepted == accepted + 1
    assert tinyproxy.connect_count() == before + 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_tinyproxy_connect_http2(variant: str, tinyproxy: TinyProxy, origins: Origins) -> None:
    outcome = run(
        variant,
        [origins.h2.url + "/"] * ROUNDS,
        proxy=httpool.Proxy(tinyproxy.url, auth=("user", "secret")),
        ssl_context=origins.h2_client,
        http2=True,
    )
    for result in outcome.results:
        ok(result, b"HTTP/2")
    assert outcome.stats.opened == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_tinyproxy_refusals(variant: str, tinyproxy: TinyProxy, origins: Origins) -> None:
    wrong = httpool.Proxy(tinyproxy.url, auth=("user", "wrong"))
    outcome = run(
        variant,
        [origins.tls.url + "/", origins.plain.url + "/"],
        proxy=wrong,
        ssl_context=origins.tls_client,
    )
    refused, forwarded = outcome.results
    # tinyproxy 1.11 answers bad credentials with 401 (RFC 9110 says 407).
    assert isinstance(refused, httpool.ProxyError), refused
    assert "401 Unauthorized" in str(refused) or "407" in str(refused)
    assert isinstance(forwarded, httpool.Response) and forwarded.status in (401, 407)
    # CONNECT to a port tinyproxy does not allow: 403; the pool serves on.
    right = httpool.Proxy(tinyproxy.url, auth=("user", "secret"))
    outcome = run(
        variant,
        [f"https://127.0.0.1:{origins.plain.port}/", origins.tls.url + "/"],
        proxy=right,
        ssl_context=origins.tls_client,
    )
    refused, served = outcome.results
    assert isinstance(refused, httpool.ProxyError) and "403" in str(refused), refused
    ok(served)
    assert outcome.stats.connections == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_unreachable_proxy(variant: str, origins: Origins) -> None:
    proxy = httpool.Proxy(f"http://127.0.0.1:{origins.closed_port}")
    outcome = run(variant, [origins.tls.url + "/"], proxy=proxy, ssl_context=origins.tls_client)
    assert isinstance(outcome.results[0], httpool.ConnectError)
    assert outcome.stats.connections == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_https_proxy_tls_in_tls(
    variant: str,
    tls_front: tuple[NginxTLSFront, typing.Any],
    open_tinyproxy: TinyProxy,
    origins: Origins,
) -> None:
    front, proxy_context = tls_front
    proxy = httpool.Proxy(front.url, ssl_context=proxy_context)
    outcome = run(
        variant,
        [origins.h2.url + "/"] * ROUNDS,
        proxy=proxy,
        ssl_context=origins.h2_client,
        http2=True,
    )
    for result in outcome.results:
        ok(result, b"HTTP/2")
    connects = open_tinyproxy.connect_count()
    outcome = run(
        variant,
        [origins.tls.url + "/", origins.plain.url + "/"] * (ROUNDS // 2),
        proxy=proxy,
        ssl_context=origins.tls_client,
    )
    for result in outcome.results:
        ok(result)
    # One tunnel for every https request; tinyproxy hangs up after each
    # forwarded response, so those took new connections.
    assert open_tinyproxy.connect_count() == connects + 1
    assert outcome.stats.connections == 2


# -- dante ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_dante_http11_tls_and_http2(
    variant: str, scheme: str, dante: Dante, origins: Origins
) -> None:
    proxy = httpool.Proxy(dante.url(scheme))
    local = [u.replace("127.0.0.1", "localhost") for u in (origins.plain.url, origins.tls.url)]
    outcome = run(
        variant,
        [local[0] + "/", local[1] + "/"] * (ROUNDS // 2),
        proxy=proxy,
        ssl_context=origins.tls_client,
    )
    for result in outcome.results:
        ok(result)
    assert outcome.stats.opened == 2
    outcome = run(
        variant,
        [origins.h2.url + "/"] * ROUNDS,
        proxy=proxy,
        ssl_context=origins.h2_client,
        http2=True,
    )
    for result in outcome.results:
        ok(result, b"HTTP/2")
    assert outcome.stats.opened == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_dante_failures(variant: str, dante: Dante, dante_auth: Dante, origins: Origins) -> None:
    # Blocked by a rule, then the same pool reaches an allowed origin.
    blocked = f"http://127.0.0.1:{origins.closed_port}/"
    outcome = run(variant, [blocked, origins.plain.url + "/"], proxy=httpool.Proxy(dante.url()))
    refused, served = outcome.results
    assert isinstance(refused, httpool.ProxyError), refused
    assert "Connection not allowed by ruleset" in str(refused)
    ok(served)
    assert outcome.stats.connections == 1
    # Authentication required: none offered, then unknown credentials.
    for auth, message in (
        (None, "Requested NO AUTHENTICATION REQUIRED"),
        (("nobody-here", "wrong"), "Invalid username/password"),
    ):
        outcome = run(
            variant, [origins.plain.url + "/"], proxy=httpool.Proxy(dante_auth.url(), auth=auth)
        )
        (error,) = outcome.results
        assert isinstance(error, httpool.ProxyError) and message in str(error), error
        assert outcome.stats.connections == 0


# -- a fresh connection per request: handshake races only show there ---------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("route", ["tinyproxy-h2", "nginx-tls-in-tls-h2", "dante-tls"])
def test_fresh_connection_per_request(
    variant: str,
    route: str,
    tinyproxy: TinyProxy,
    tls_front: tuple[NginxTLSFront, typing.Any],
    dante: Dante,
    origins: Origins,
) -> None:
    if route == "tinyproxy-h2":
        proxy = httpool.Proxy(tinyproxy.url, auth=("user", "secret"))
    elif route == "nginx-tls-in-tls-h2":
        proxy = httpool.Proxy(tls_front[0].url, ssl_context=tls_front[1])
    else:
        proxy = httpool.Proxy(dante.url("socks5h"))
    h2 = route.endswith("h2")
    url = (origins.h2.url if h2 else origins.tls.url) + "/"
    client = origins.h2_client if h2 else origins.tls_client
    for _ in range(ROUNDS):
        outcome = run(variant, [url], proxy=proxy, ssl_context=client, http2=h2)
        ok(outcome.results[0], b"HTTP/2" if h2 else b"HTTP/1.1")


def _parallel_uploads(
    variant: str, url: str, count: int, body: bytes, **kw: typing.Any
) -> list[bytes]:
    """POST ``body`` to ``url`` ``count`` times at once on one pool; the responses' bodies."""
    extensions = {"timeout": TIMEOUTS}
    if variant == "sync":
        with (
            httpool.ConnectionPool(**kw) as pool,
            concurrent.futures.ThreadPoolExecutor(count) as executor,
        ):
            futures = [
                executor.submit(pool.request, "POST", url, content=body, extensions=extensions)
                for _ in range(count)
            ]
            return [future.result().content for future in futures]

    results: list[bytes] = []

    async def upload(pool: httpool.AsyncConnectionPool) -> None:
        response = await pool.request("POST", url, content=body, extensions=extensions)
        results.append(response.content)

    async def main() -> None:
        async with httpool.AsyncConnectionPool(**kw) as pool:
            if variant == "trio":
                import trio

                async with trio.open_nursery() as nursery:
                    for _ in range(count):
                        nursery.start_soon(upload, pool)
            else:
                await asyncio.gather(*(upload(pool) for _ in range(count)))

    if variant == "trio":
        import trio

        trio.run(main)
    else:
        asyncio.run(main())
    return results


@pytest.mark.parametrize("variant", VARIANTS)
def test_parallel_http2_uploads_tls_in_tls(
    variant: str, tls_front: tuple[NginxTLSFront, typing.Any], origins: Origins
) -> None:
    # One HTTP/2 connection inside TLS inside TLS, many writers and a reader at once.
    body = pattern(512 * 1024)
    expected = f"{len(body)} {pattern_sha256(len(body))}".encode()
    results = _parallel_uploads(
        variant,
        origins.h2.url + "/upload",
        16,
        body,
        proxy=httpool.Proxy(tls_front[0].url, ssl_context=tls_front[1]),
        ssl_context=origins.h2_client,
        http2=True,
    )
    assert results == [expected] * 16
