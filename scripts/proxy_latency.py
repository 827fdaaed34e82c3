"""Wall-clock time per keep-alive HTTPS request, direct and through real proxies.

Sequential GETs (HTTP/1.1 over TLS to the project's test origin) on one pool,
after one warm-up request, on threads, asyncio and trio: direct, through
tinyproxy (CONNECT), through nginx's stream module terminating TLS in front of
tinyproxy (an https:// proxy: TLS in TLS), through dante (SOCKS5), and the TLS
in TLS route again with the in-memory TLS that asyncio before 3.11 uses forced.
Needs what the proxy interop tests need (tests/interop/proxies.py). A
wall-clock figure on a shared machine is only as good as its load; compare
runs made side by side.

    PYTHONPATH=. python scripts/proxy_latency.py [requests]
"""

from __future__ import annotations

import asyncio
import sys
import time
import typing
from pathlib import Path

import trio
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpool
import httpool._async.http_proxy as async_http_proxy
from tests.interop.proxies import Dante, NginxTLSFront, TinyProxy, client_context
from tests.support.http_server import HTTPServer, make_tls_contexts


def sync_run(n: int, url: str, **kwargs: typing.Any) -> float:
    with httpool.ConnectionPool(**kwargs) as pool:
        pool.request("GET", url)
        start = time.perf_counter()
        for _ in range(n):
            pool.request("GET", url)
        return (time.perf_counter() - start) / n * 1e6


async def async_run(n: int, url: str, **kwargs: typing.Any) -> float:
    async with httpool.AsyncConnectionPool(**kwargs) as pool:
        await pool.request("GET", url)
        start = time.perf_counter()
        for _ in range(n):
            await pool.request("GET", url)
        return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    ca, front_ca = trustme.CA(), trustme.CA()
    contexts = make_tls_contexts(ca)
    with (
        HTTPServer(ssl_context=contexts.server) as origin,
        TinyProxy() as tiny,
        Dante() as dante,
        NginxTLSFront(backend_port=tiny.port, ca=front_ca) as front,
    ):
        url = origin.url + "/"
        routes: dict[str, dict[str, typing.Any]] = {
            "direct": {},
            "tinyproxy CONNECT": {"proxy": httpool.Proxy(tiny.url)},
            "nginx TLS + tinyproxy (TLS in TLS)": {
                "proxy": httpool.Proxy(front.url, ssl_context=client_context(front_ca))
            },
            "dante socks5": {"proxy": httpool.Proxy(dante.url())},
        }
        for name, kwargs in routes.items():
            kwargs["ssl_context"] = contexts.client
            row = (
                sync_run(n, url, **kwargs),
                asyncio.run(async_run(n, url, **kwargs)),
                trio.run(lambda: async_run(n, url, **kwargs)),  # noqa: B023
            )
            print(
                f"{name:38} threads {row[0]:6.0f} us  asyncio {row[1]:6.0f} us"
                f"  trio {row[2]:6.0f} us"
            )
        async_http_proxy.needs_tls_in_tls_fallback = lambda stream: True  # type: ignore[assignment]
        kwargs = routes["nginx TLS + tinyproxy (TLS in TLS)"]
        memory = (
            asyncio.run(async_run(n, url, **kwargs)),
            trio.run(lambda: async_run(n, url, **kwargs)),
        )
        print(
            f"{'  the same, TLS in memory':38} {'':17} asyncio {memory[0]:6.0f} us"
            f"  trio {memory[1]:6.0f} us"
        )


if __name__ == "__main__":
    main()
