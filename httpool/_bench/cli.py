"""The ``httpool`` command line: ``httpool bench`` drives load through one pool.

Theory of operation: this module only parses arguments, checks up front what
would make the whole run pointless (a bad URL, a missing optional library),
starts the embedded server when no URL is given, and prints the result. The
runners and statistics live in ``httpool._bench.loadgen``, the server in
``httpool._bench.server``.

Exit status: 0 when every request succeeded, 1 when any failed, 2 for a usage
error (bad arguments, bad URL, missing trio or h2), 130 after Ctrl-C. The
embedded server process never outlives the command.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import ssl
import sys
from collections.abc import Sequence

from .._exceptions import HttpoolError
from .loadgen import RUNNERS, RUNTIMES, BenchConfig, check_url
from .server import MAX_H2C_BODY, BenchServer

_PROG = "httpool"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _size(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def _timeout(text: str) -> float | None:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="The httpool connection pool.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = commands.add_parser(
        "bench",
        help="send many requests through one pool and report throughput and latency",
        description="Send REQUESTS requests through one connection pool with CONCURRENCY "
        "workers, then print throughput, latency percentiles, errors, statuses and the "
        "pool's counters and the protocols the responses came in. Without URL, an embedded "
        "server (HTTP/1.1, or h2c with --http2) is started in a subprocess and used as the "
        "target. Exits 1 if any request failed.",
    )
    bench.add_argument("url", nargs="?", metavar="URL", help="target (default: embedded server)")
    bench.add_argument("-n", "--requests", type=_positive_int, default=1000, metavar="REQUESTS")
    bench.add_argument("-c", "--concurrency", type=_positive_int, default=10, metavar="CONCURRENCY")
    bench.add_argument("--runtime", choices=RUNTIMES, default="asyncio")
    bench.add_argument("--method", help="request method (default GET, or POST with a body)")
    bench.add_argument(
        "--body-size", type=_size, default=0, metavar="N", help="upload N bytes per request"
    )
    bench.add_argument(
        "--response-size",
        type=_size,
        default=2,
        metavar="N",
        help="response body bytes of the embedded server (default 2)",
    )
    bench.add_argument(
        "--max-connections",
        type=_positive_int,
        metavar="N",
        help="pool size (default: the concurrency)",
    )
    bench.add_argument(
        "--http2",
        action="store_true",
        help="speak HTTP/2 (needs h2): offered by ALPN on https URLs (HTTP/1.1 if the server "
        "does not pick it), with prior knowledge (h2c) on http URLs, so such a server must "
        "speak HTTP/2; the embedded server then speaks h2c",
    )
    verify = bench.add_mutually_exclusive_group()
    verify.add_argument(
        "--cacert",
        metavar="PATH",
        help="verify https servers against the CA certificates in this PEM file "
        "instead of the system's",
    )
    verify.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify https servers' certificates or host names",
    )
    bench.add_argument(
        "--timeout",
        type=_timeout,
        default=30.0,
        metavar="S",
        help="connect/read/write/pool timeout in seconds, 0 for none (default 30)",
    )
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _fail(message: str) -> int:
    print(f"{_PROG} bench: error: {message}", file=sys.stderr)
    return 2


def _ssl_context(cacert: str | None, insecure: bool) -> ssl.SSLContext | None:
    """The client context ``--cacert``/``--insecure`` ask for; None for the pool's default.

    Raises ``OSError`` or ``ssl.SSLError`` for a CA file that cannot be loaded."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if cacert is not None:
        return ssl.create_default_context(cafile=cacert)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    if args.runtime == "trio" and importlib.util.find_spec("trio") is None:
        return _fail("the trio runtime needs trio installed (pip install 'httpool[trio]')")
    if args.http2 and importlib.util.find_spec("h2") is None:
        return _fail("--http2 needs h2 installed (pip install 'httpool[http2]')")
    if args.url is not None:
        try:
            check_url(args.url)
        except HttpoolError as exc:
            return _fail(f"{type(exc).__name__}: {exc}")
    try:
        ssl_context = _ssl_context(args.cacert, args.insecure)
    except (OSError, ssl.SSLError) as exc:
        return _fail(f"--cacert {args.cacert}: {exc}")

    with contextlib.ExitStack() as stack:
        server_pid = None
        url = args.url
        if url is None:
            if args.http2 and args.response_size > MAX_H2C_BODY:
                return _fail(f"--http2: the embedded server serves at most {MAX_H2C_BODY} bytes")
            server = stack.enter_context(BenchServer(body_size=args.response_size, h2c=args.http2))
            url, server_pid = server.url, server.pid
            print(f"{_PROG} bench: embedded server on {url} (pid {server_pid})", file=sys.stderr)
        config = BenchConfig(
            url=url,
            requests=args.requests,
            concurrency=args.concurrency,
            method=args.method or ("POST" if args.body_size else "GET"),
            body_size=args.body_size,
            max_connections=args.max_connections,
            http2=args.http2,
            timeout=args.timeout,
            progress=sys.stderr.isatty(),
            ssl_context=ssl_context,
        )
        try:
            result = RUNNERS[args.runtime](config)
        except KeyboardInterrupt:
            print(f"\n{_PROG} bench: interrupted", file=sys.stderr)
            return 130
        except HttpoolError as exc:
            return _fail(f"{type(exc).__name__}: {exc}")

    if args.json:
        summary = result.summary()
        summary["server_pid"] = server_pid
        print(json.dumps(summary, indent=2))
    else:
        if server_pid is not None:
            print(f"server:      embedded, pid {server_pid} (stopped)")
        print(result.report())
    return 1 if result.failed else 0
