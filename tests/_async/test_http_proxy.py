"""HTTP proxies: forwarding, CONNECT tunnels, https:// proxies (TLS in TLS), refusals.

Against the test proxy of ``tests/support/proxy_server.py`` and the project's
test origins, on 127.0.0.1. Written once; runs on asyncio, trio and threads.
"""

from __future__ import annotations

import socket

import pytest
import trustme

import httpool
import httpool._async.http_proxy as http_proxy_module
from httpool import AsyncConnectionPool, AsyncHTTPProxy, Proxy
from httpool._async.tls_in_tls import AsyncTLSInTLSStream
from tests.support.concurrency import AsyncTaskGroup
from tests.support.h2_server import H2Server, pattern, pattern_sha256
from tests.support.http_server import HTTPServer, make_tls_contexts
from tests.support.proxy_server import HTTPProxyServer


def _with_userinfo(url: str, userinfo: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{userinfo}@{rest}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_forwarding_sends_absolute_form_with_auth_and_headers(server: HTTPServer) -> None:
    with HTTPProxyServer(auth=("user", "p@ss")) as proxy:
        url = _with_userinfo(proxy.url, "user:p%40ss")
        async with AsyncConnectionPool(proxy=Proxy(url, headers={"X-Proxy": "yes"})) as pool:
            for _ in range(3):
                response = await pool.request("GET", server.url + "/headers?a=1")
                assert response.status == 200
            method, target, headers = proxy.forwarded[0]
            assert method == b"GET" and target == server.url.encode() + b"/headers?a=1"
            assert (b"X-Proxy", b"yes") in headers
            # One connection to the proxy, reused for every forwarded request.
            assert proxy.connections_accepted == 1 and len(proxy.forwarded) == 3
            assert len(pool.connections) == 1
            pool.check_invariants()


async def test_forwarding_serves_many_origins_on_one_connection(server: HTTPServer) -> None:
    with HTTPServer() as other, HTTPProxyServer() as proxy:
        async with AsyncConnectionPool(proxy=Proxy(proxy.url)) as pool:
            for url in (server.url, other.url, server.url.replace("127.0.0.1", "localhost")):
                assert (await pool.request("GET", url + "/")).content == b"Hello, world!"
            assert proxy.connections_accepted == 1
            assert server.requests_handled == 2 and other.requests_handled == 1


async def test_forwarding_with_wrong_credentials_returns_the_407(server: HTTPServer) -> None:
    with HTTPProxyServer(auth=("user", "secret")) as proxy:
        async with AsyncConnectionPool(proxy=Proxy(proxy.url, auth=("user", "wrong"))) as pool:
            response = await pool.request("GET", server.url + "/")
            assert response.status == 407
            assert server.requests_handled == 0
            pool.check_invariants()


async def test_connect_tunnel_http11_reused_for_its_origin(tls_server: HTTPServer) -> None:
    with HTTPProxyServer(auth=("user", "secret")) as proxy:
        proxy_config = Proxy(proxy.url, auth=("user", "secret"))
        ssl_context = tls_server.client_ssl_context
        async with AsyncConnectionPool(proxy=proxy_config, ssl_context=ssl_context) as pool:
            for _ in range(5):
                response = await pool.request("GET", tls_server.url + "/")
                assert response.content == b"Hello, world!"
                assert response.extensions["http_version"] == b"HTTP/1.1"
            # One CONNECT, one TLS session to the origin (SNI is the origin's host).
            assert proxy.connects == [f"127.0.0.1:{tls_server.port}".encode()]
            assert tls_server.connections_accepted == 1
            assert proxy.proxy_authorizations[0] is not None
            pool.check_invariants()


async def test_a_tunnel_is_never_reused_for_another_origin(tls_server: HTTPServer) -> None:
    with HTTPProxyServer() as proxy:
        ssl_context = tls_server.client_ssl_context
        other = tls_server.url.replace("127.0.0.1", "localhost")
        async with AsyncConnectionPool(proxy=Proxy(proxy.url), ssl_context=ssl_context) as pool:
            for url in (tls_server.url, other, tls_server.url, other):
                assert (await pool.request("GET", url + "/")).status == 200
            assert sorted(proxy.connects) == sorted(
                [f"127.0.0.1:{tls_server.port}".encode(), f"localhost:{tls_server.port}".encode()]
            )
            # SNI is the origin's host (none is sent for an IP address), never the proxy's.
            assert tls_server.sni_names == [None, "localhost"]
            assert len(pool.connections) == 2
            pool.check_invariants()


async def test_connect_tunnel_negotiates_http2(h2_tls_server: H2Server) -> None:
    with HTTPProxyServer() as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url), ssl_context=h2_tls_server.client_ssl_context, http2=True
        ) as pool:

            async def fetch() -> None:
                response = await pool.request("GET", h2_tls_server.url + "/")
                assert response.extensions["http_version"] == b"HTTP/2"
                assert response.content == b"Hello, world!"

            async with AsyncTaskGroup() as group:
                for _ in range(10):
                    group.start_soon(fetch)
            # Ten streams multiplexed on one tunnel.
            assert len(proxy.connects) == 1 and h2_tls_server.connections_accepted == 1
            pool.check_invariants()


async def test_https_proxy_tls_in_tls(
    tls_server: HTTPServer, h2_tls_server: H2Server, http_server_ca: trustme.CA
) -> None:
    contexts = make_tls_contexts(http_server_ca)
    with HTTPProxyServer(ssl_context=contexts.server) as proxy, HTTPServer() as plain:
        config = Proxy(proxy.url, ssl_context=contexts.client)
        async with AsyncConnectionPool(
            proxy=config, ssl_context=h2_tls_server.client_ssl_context, http2=True
        ) as pool:
            response = await pool.request("GET", h2_tls_server.url + "/")
            assert response.extensions["http_version"] == b"HTTP/2"
            assert response.content == b"Hello, world!"
            # Forwarding over TLS to the proxy, too.
            assert (await pool.request("GET", plain.url + "/")).content == b"Hello, world!"
            assert proxy.forwarded[0][1] == plain.url.encode() + b"/"
        async with AsyncConnectionPool(
            proxy=config, ssl_context=tls_server.client_ssl_context
        ) as pool:
            for _ in range(3):
                response = await pool.request("GET", tls_server.url + "/bytes?size=200000")
                assert response.content == b"x" * 200000 or len(response.content) == 200000
            assert tls_server.connections_accepted == 1


async def test_http2_uploads_in_parallel_through_an_https_proxy(
    h2_tls_server: H2Server, http_server_ca: trustme.CA
) -> None:
    # One HTTP/2 connection, TLS inside TLS, written and read by many tasks (on
    # threads: one reading while others write, which the sync backend's
    # TLS-over-TLS stream must serialise).
    contexts = make_tls_contexts(http_server_ca)
    size = 256 * 1024
    expected = f"{size} {pattern_sha256(size)}".encode()
    results: list[bytes] = []
    with HTTPProxyServer(ssl_context=contexts.server) as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url, ssl_context=contexts.client),
            ssl_context=h2_tls_server.client_ssl_context,
            http2=True,
        ) as pool:

            async def upload() -> None:
                response = await pool.request(
                    "POST", h2_tls_server.url + "/upload", content=pattern(size)
                )
                results.append(response.content)

            async with AsyncTaskGroup() as group:
                for _ in range(24):
                    group.start_soon(upload)
            assert results == [expected] * 24
            assert len(proxy.connects) == 1
            pool.check_invariants()


async def test_tls_in_tls_in_memory_fallback(
    tls_server: HTTPServer, http_server_ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What asyncio before 3.11 runs (it cannot start TLS over TLS), forced here.
    calls: list[object] = []

    def fallback(stream: object) -> bool:
        calls.append(stream)
        return True

    monkeypatch.setattr(http_proxy_module, "needs_tls_in_tls_fallback", fallback)
    contexts = make_tls_contexts(http_server_ca)
    with HTTPProxyServer(ssl_context=contexts.server) as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url, ssl_context=contexts.client),
            ssl_context=tls_server.client_ssl_context,
        ) as pool:
            for size in (10, 300000):
                response = await pool.request("GET", f"{tls_server.url}/bytes?size={size}")
                assert len(response.content) == size
                assert isinstance(response.extensions["network_stream"], AsyncTLSInTLSStream)
            assert len(calls) == 1 and len(proxy.connects) == 1


async def test_tls_in_tls_fallback_refuses_an_untrusted_origin(
    tls_server: HTTPServer, http_server_ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_proxy_module, "needs_tls_in_tls_fallback", lambda stream: True)
    contexts = make_tls_contexts(http_server_ca)
    untrusting = make_tls_contexts(trustme.CA()).client
    with HTTPProxyServer(ssl_context=contexts.server) as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url, ssl_context=contexts.client), ssl_context=untrusting
        ) as pool:
            with pytest.raises(httpool.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await pool.request("GET", tls_server.url + "/")
            assert pool.stats().connections == 0
            pool.check_invariants()
            # The tunnel was made; the origin's TLS failed inside it.
            assert len(proxy.connects) == 1


@pytest.mark.parametrize("status", [403, 407, 502])
async def test_refused_tunnel_is_a_proxy_error_and_the_pool_serves_on(
    status: int, tls_server: HTTPServer, server: HTTPServer
) -> None:
    with HTTPProxyServer(refuse=status) as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url), ssl_context=tls_server.client_ssl_context
        ) as pool:
            for _ in range(2):
                with pytest.raises(httpool.ProxyError, match=f"{status}"):
                    await pool.request("GET", tls_server.url + "/")
            assert (await pool.request("GET", server.url + "/")).status == 200
            assert tls_server.connections_accepted == 0
            assert pool.stats().connections == 1  # the forwarding one
            pool.check_invariants()


async def test_wrong_credentials_on_connect(tls_server: HTTPServer) -> None:
    with HTTPProxyServer(auth=("user", "secret")) as proxy:
        async with AsyncHTTPProxy(
            proxy.url, proxy_auth=("user", "nope"), ssl_context=tls_server.client_ssl_context
        ) as pool:
            with pytest.raises(httpool.ProxyError, match="407 Proxy Authentication Required"):
                await pool.request("GET", tls_server.url + "/")
            assert pool.stats().connections == 0
            pool.check_invariants()


async def test_bytes_after_the_connect_head_are_not_silently_dropped(
    tls_server: HTTPServer,
) -> None:
    with HTTPProxyServer(after_connect=b"junk") as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url), ssl_context=tls_server.client_ssl_context
        ) as pool:
            with pytest.raises(httpool.ProxyError, match="4 bytes"):
                await pool.request("GET", tls_server.url + "/")
            pool.check_invariants()


async def test_proxy_that_never_answers_the_connect_times_out(tls_server: HTTPServer) -> None:
    with HTTPProxyServer(hang=True) as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url), ssl_context=tls_server.client_ssl_context
        ) as pool:
            with pytest.raises(httpool.ReadTimeout):
                await pool.request(
                    "GET", tls_server.url + "/", extensions={"timeout": {"read": 0.2}}
                )
            assert pool.stats().connections == 0
            pool.check_invariants()


async def test_unreachable_proxy_is_a_connect_error(tls_server: HTTPServer) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    async with AsyncConnectionPool(proxy=Proxy(url)) as pool:
        with pytest.raises(httpool.ConnectError):
            await pool.request("GET", tls_server.url + "/")
        with pytest.raises(httpool.ConnectError):
            await pool.request("GET", "http://127.0.0.1:9/")
        assert pool.stats().connections == 0
        pool.check_invariants()


async def test_stale_tunnel_and_forwarding_connection_are_replaced(
    tls_server: HTTPServer, server: HTTPServer
) -> None:
    with HTTPProxyServer() as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url), ssl_context=tls_server.client_ssl_context
        ) as pool:
            for round_ in range(3):
                assert (await pool.request("GET", tls_server.url + "/")).status == 200
                assert (await pool.request("GET", server.url + "/")).status == 200
                assert proxy.hang_up() == 2  # both idle connections die under the pool
                assert len(proxy.connects) == round_ + 1
            # Whatever noticed it (the liveness probe or the retry), no request failed.
            assert (await pool.request("GET", tls_server.url + "/")).status == 200
            assert len(proxy.connects) == 4
            pool.check_invariants()


async def test_request_dying_on_a_reused_tunnel_is_retried_on_a_new_one(
    tls_server: HTTPServer, server: HTTPServer
) -> None:
    with HTTPProxyServer() as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url), ssl_context=tls_server.client_ssl_context
        ) as pool:
            for origin in (tls_server, server):
                assert (await pool.request("GET", origin.url + "/")).status == 200
                # The origin reads the next request and hangs up: through the
                # tunnel (or the forwarding proxy) the reused connection dies
                # before any response byte, so the GET goes again on a new one.
                origin.drop_requests = 1
                assert (await pool.request("GET", origin.url + "/")).status == 200
                assert origin.drop_requests == 0
            assert len(proxy.connects) == 2
            assert proxy.connections_accepted == 4
            pool.check_invariants()


async def test_target_extension_is_forwarded_once(server: HTTPServer) -> None:
    with HTTPProxyServer() as proxy:
        async with AsyncConnectionPool(proxy=Proxy(proxy.url)) as pool:
            response = await pool.request(
                "GET", server.url + "/", extensions={"target": b"/headers?x=1"}
            )
            assert response.status == 200
            assert proxy.forwarded[0][1] == server.url.encode() + b"/headers?x=1"


async def test_tunnels_obey_the_pool_limits(tls_server: HTTPServer) -> None:
    with HTTPProxyServer() as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url),
            ssl_context=tls_server.client_ssl_context,
            max_connections=3,
            max_connections_per_origin=2,
        ) as pool:

            async def fetch(i: int) -> None:
                response = await pool.request("GET", f"{tls_server.url}/bytes?size={i}")
                assert len(response.content) == i

            async with AsyncTaskGroup() as group:
                for i in range(30):
                    group.start_soon(fetch, i)
            assert 1 <= len(proxy.connects) <= 2
            assert tls_server.connections_accepted == len(proxy.connects)
            pool.check_invariants()


async def test_http_proxy_class_matches_httpcore(tls_server: HTTPServer) -> None:
    with HTTPProxyServer() as proxy:
        proxied = AsyncHTTPProxy(
            proxy_url=proxy.url.encode(),
            proxy_headers=[(b"X-Via", b"test")],
            ssl_context=tls_server.client_ssl_context,
        )
        async with proxied as pool:
            assert proxied._proxy_url == httpool.URL(proxy.url)
            assert (await pool.request("GET", tls_server.url + "/")).status == 200
            assert len(proxy.connects) == 1
        with pytest.raises(ValueError):
            AsyncHTTPProxy("socks5://127.0.0.1:1080")


async def test_ws_goes_through_a_plain_tunnel(server: HTTPServer) -> None:
    with HTTPProxyServer(after_connect=b"") as proxy:
        async with AsyncConnectionPool(proxy=Proxy(proxy.url)) as pool:
            ws_url = server.url.replace("http://", "ws://")
            for _ in range(2):
                assert (await pool.request("GET", ws_url + "/")).content == b"Hello, world!"
            assert proxy.connects == [f"127.0.0.1:{server.port}".encode()]
            assert proxy.forwarded == []
            assert server.requests[0].target == b"/"  # origin-form inside the tunnel


async def test_trace_shows_the_connect_exchange(tls_server: HTTPServer) -> None:
    names: list[str] = []

    def trace(name: str, info: dict[str, object]) -> None:
        names.append(name)

    with HTTPProxyServer() as proxy:
        async with AsyncConnectionPool(
            proxy=Proxy(proxy.url), ssl_context=tls_server.client_ssl_context
        ) as pool:
            await pool.request("GET", tls_server.url + "/", extensions={"trace": trace})
    steps = [name for name in names if name.endswith(".complete")]
    # TCP to the proxy, the CONNECT exchange, TLS to the origin, then the request.
    assert steps[:4] == [
        "connection.connect_tcp.complete",
        "http11.send_request_headers.complete",
        "http11.send_request_body.complete",
        "http11.receive_response_headers.complete",
    ]
    assert steps[4] == "connection.start_tls.complete"
    assert steps.count("http11.receive_response_headers.complete") == 2
