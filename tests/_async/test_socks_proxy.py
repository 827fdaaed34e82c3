"""SOCKS5 proxies: socks5 / socks5h, authentication, failures, TLS and HTTP/2 through them.

Against the test SOCKS5 server of ``tests/support/proxy_server.py`` and the
project's test origins. Written once; runs on asyncio, trio and threads.
"""

from __future__ import annotations

import socket

import pytest

import httpool
from httpool import AsyncConnectionPool, AsyncSOCKSProxy, Proxy
from tests.support.h2_server import H2Server
from tests.support.http_server import HTTPServer
from tests.support.proxy_server import SOCKS5Server


def _localhost_ipv4() -> bool:
    infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    return bool(infos) and infos[0][0] == socket.AF_INET


async def test_socks5h_sends_the_name_socks5_the_address(tls_server: HTTPServer) -> None:
    if not _localhost_ipv4():
        pytest.skip("localhost does not resolve to 127.0.0.1 first here")
    url = tls_server.url.replace("127.0.0.1", "localhost") + "/"
    with SOCKS5Server() as socks:
        for scheme, expected in (("socks5h", "domain"), ("socks5", "ipv4")):
            async with AsyncConnectionPool(
                proxy=Proxy(socks.url(scheme)), ssl_context=tls_server.client_ssl_context
            ) as pool:
                for _ in range(3):
                    assert (await pool.request("GET", url)).content == b"Hello, world!"
                pool.check_invariants()
            host = "localhost" if expected == "domain" else "127.0.0.1"
            assert socks.requests[-1] == (expected, host, tls_server.port)
        # One SOCKS connection per pool: the keep-alive connection was reused.
        assert len(socks.requests) == 2
        # TLS to the origin: its certificate was checked for "localhost", and SNI sent.
        assert tls_server.sni_names == ["localhost", "localhost"]


async def test_socks_with_http2_via_alpn(h2_tls_server: H2Server) -> None:
    with SOCKS5Server(auth=("user", "secret")) as socks:
        async with AsyncConnectionPool(
            proxy=Proxy(socks.url("socks5h"), auth=("user", "secret")),
            ssl_context=h2_tls_server.client_ssl_context,
            http2=True,
        ) as pool:
            for _ in range(3):
                response = await pool.request("GET", h2_tls_server.url + "/")
                assert response.extensions["http_version"] == b"HTTP/2"
            assert h2_tls_server.connections_accepted == 1 and len(socks.requests) == 1


async def test_plain_http_through_socks_with_credentials_in_the_url(server: HTTPServer) -> None:
    with SOCKS5Server(auth=("us:er", "pass word")) as socks:
        url = socks.url().replace("socks5://", "socks5://us%3Aer:pass%20word@")
        async with AsyncConnectionPool(proxy=Proxy(url)) as pool:
            response = await pool.request("POST", server.url + "/echo", content=b"ping")
            assert response.content == b"ping"
        assert socks.requests == [("ipv4", "127.0.0.1", server.port)]


@pytest.mark.parametrize(
    ("fail", "auth", "message"),
    [
        ("no_methods", None, "Requested NO AUTHENTICATION REQUIRED"),
        (None, ("user", "wrong"), "Invalid username/password"),
        ("close_after_greeting", None, "closed the connection during the handshake"),
        ("bad_reply", None, "malformed reply"),
        ("unknown_code", None, "(?i)malformed reply"),
        ("host_unreachable", None, "Host unreachable"),
    ],
)
async def test_socks_failures_are_proxy_errors(
    fail: str | None, auth: tuple[str, str] | None, message: str, server: HTTPServer
) -> None:
    with SOCKS5Server(fail=fail, auth=None if fail else ("user", "secret")) as socks:
        async with AsyncConnectionPool(proxy=Proxy(socks.url(), auth=auth)) as pool:
            for _ in range(2):
                with pytest.raises(httpool.ProxyError, match=message):
                    await pool.request("GET", server.url + "/")
            assert pool.stats().connections == 0
            pool.check_invariants()
        assert server.connections_accepted == 0


async def test_socks_proxy_that_never_answers_times_out(server: HTTPServer) -> None:
    with SOCKS5Server(fail="hang_after_greeting") as socks:
        async with AsyncConnectionPool(proxy=Proxy(socks.url())) as pool:
            # The connect timeout covers the TCP connect to the proxy too: 1 s
            # leaves a loaded machine time for that part (0.2 s did not, on trio).
            with pytest.raises(httpool.ConnectTimeout, match="SOCKS5 handshake timed out"):
                await pool.request(
                    "GET", server.url + "/", extensions={"timeout": {"connect": 1.0}}
                )
            assert pool.stats().connections == 0
            pool.check_invariants()


async def test_auth_required_but_not_given(server: HTTPServer) -> None:
    with SOCKS5Server(auth=("user", "secret")) as socks:
        async with AsyncConnectionPool(proxy=Proxy(socks.url())) as pool:
            with pytest.raises(httpool.ProxyError, match="Requested NO AUTHENTICATION REQUIRED"):
                await pool.request("GET", server.url + "/")
        async with AsyncConnectionPool(proxy=Proxy(socks.url(), auth=("user", "secret"))) as pool:
            assert (await pool.request("GET", server.url + "/")).status == 200


async def test_origin_refusing_through_socks(server: HTTPServer) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with SOCKS5Server() as socks:
        async with AsyncConnectionPool(proxy=Proxy(socks.url())) as pool:
            with pytest.raises(httpool.ProxyError, match="Connection refused"):
                await pool.request("GET", f"http://127.0.0.1:{port}/")
            # The same pool serves on.
            assert (await pool.request("GET", server.url + "/")).status == 200
            pool.check_invariants()


async def test_unreachable_socks_proxy_is_a_connect_error() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    async with AsyncSOCKSProxy(f"socks5://127.0.0.1:{port}") as pool:
        with pytest.raises(httpool.ConnectError):
            await pool.request("GET", "http://127.0.0.1:9/")
        assert pool.stats().connections == 0


async def test_stale_socks_connection_is_replaced(server: HTTPServer) -> None:
    with SOCKS5Server() as socks:
        async with AsyncConnectionPool(proxy=Proxy(socks.url())) as pool:
            for round_ in range(3):
                assert (await pool.request("GET", server.url + "/")).status == 200
                assert socks.hang_up() == 1
                assert len(socks.requests) == round_ + 1
            pool.check_invariants()


async def test_socks_proxy_class_matches_httpcore(server: HTTPServer) -> None:
    with SOCKS5Server(auth=("user", "secret")) as socks:
        proxied = AsyncSOCKSProxy(proxy_url=socks.url("socks5h"), proxy_auth=(b"user", b"secret"))
        async with proxied as pool:
            assert proxied._proxy_url == httpool.URL(socks.url("socks5h"))
            assert (await pool.request("GET", server.url + "/")).status == 200
        with pytest.raises(ValueError):
            AsyncSOCKSProxy("http://127.0.0.1:8080")


async def test_trace_names_the_socks_steps(tls_server: HTTPServer) -> None:
    names: list[str] = []

    def trace(name: str, info: dict[str, object]) -> None:
        names.append(name)

    with SOCKS5Server() as socks:
        async with AsyncConnectionPool(
            proxy=Proxy(socks.url()), ssl_context=tls_server.client_ssl_context
        ) as pool:
            await pool.request("GET", tls_server.url + "/", extensions={"trace": trace})
    steps = [name for name in names if name.endswith(".complete")]
    assert steps[:3] == [
        "connection.connect_tcp.complete",
        "socks.setup_socks5_connection.complete",
        "connection.start_tls.complete",
    ]
