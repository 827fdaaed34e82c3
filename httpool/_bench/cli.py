"""The ``httpool`` command line: ``httpool bench`` drives load through one pool,
``httpool get`` prints one response.

Theory of operation: this module only parses arguments, checks up front what
would make the whole run pointless (a bad URL or method, a missing optional
library, an unreadable CA file), starts the embedded server when no URL is
given, and prints the result. The argument checks live in ``options.py``, the
runners in ``loadgen.py``, the statistics and report in ``results.py``, one
request in ``get.py``, the server in ``server.py``.

Exit status: 0 when every request succeeded, 1 when any failed (also a run
that stopped early because none could succeed), 2 for a usage error (bad
arguments, bad URL, missing trio or h2), 130 after Ctrl-C (``bench`` prints
the partial results first). The embedded server process never outlives the
command.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import ssl
import sys
from collections.abc import Sequence

from .._exceptions import HttpoolError
from .._version import __version__
from . import options
from .config import RUNTIMES, BenchConfig, check_url
from .get import run_get
from .loadgen import RUNNERS
from .server import MAX_H2C_BODY, BenchServer

_PROG = "httpool"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="The httpool connection pool's command line: a load generator and a "
        "one-request client. Run 'httpool COMMAND --help' for a command's options.",
        epilog="examples:\n"
        "  httpool bench -n 20000 -c 64          20,000 requests to the embedded server\n"
        "  httpool bench --runtime trio --http2  the same on trio, over h2c\n"
        "  httpool get -v https://example.test/  one response and its connection",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print httpool's version and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_bench(commands)
    _add_get(commands)
    return parser


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench",
        help="send many requests through one pool and report throughput and latency",
        description="Send REQUESTS requests through one connection pool with CONCURRENCY "
        "workers, then print throughput, latency percentiles and histogram, errors, statuses, "
        "the protocols the responses came in and the pool's counters. On a terminal a "
        "progress bar shows the percentage done, the rate, the time left and the failures. "
        "Without URL, an embedded server (HTTP/1.1, or h2c with --http2) is started in a "
        "subprocess on 127.0.0.1 and used as the target. A run in which the first "
        "requests all fail stops early and says why. Ctrl-C prints the results so far. "
        "Exit status: 0 if every request succeeded, 1 if any failed, 2 for a usage error, "
        "130 after Ctrl-C.",
    )
    bench.add_argument(
        "url", nargs="?", metavar="URL", help="target (default: the embedded server)"
    )
    bench.add_argument(
        "-n",
        "--requests",
        type=options.positive_int,
        default=1000,
        metavar="REQUESTS",
        help="number of requests to send in total (default: %(default)s)",
    )
    bench.add_argument(
        "-c",
        "--concurrency",
        type=options.positive_int,
        default=10,
        metavar="CONCURRENCY",
        help="requests in flight at once: worker threads (sync) or tasks (asyncio, trio); "
        "never more than REQUESTS (default: %(default)s)",
    )
    bench.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="asyncio",
        help="run the workers on threads with the blocking pool (sync), or as tasks with "
        "the async pool on asyncio or trio (trio needs: pip install 'httpool[trio]') "
        "(default: %(default)s)",
    )
    options.add_request_options(
        bench,
        data_help="the body of every request: the text itself, or @FILE for a file's bytes "
        "(default: none; see --body-size)",
    )
    bench.add_argument(
        "--body-size",
        type=options.size,
        default=0,
        metavar="N",
        help="upload N bytes per request instead of --data (default: %(default)s)",
    )
    bench.add_argument(
        "--response-size",
        type=options.size,
        default=2,
        metavar="N",
        help="response body bytes of the embedded server (default: %(default)s)",
    )
    bench.add_argument(
        "--max-connections",
        type=options.positive_int,
        metavar="N",
        help="pool size (default: the concurrency)",
    )
    bench.add_argument(
        "--json", action="store_true", help="print the result as JSON (default: a report)"
    )


def _add_get(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    get = commands.add_parser(
        "get",
        help="send one request and print the response, like a tiny curl",
        description="Send one request through httpool's blocking pool and print the "
        "response's status line, header fields and body to stdout. With -v, also print to "
        "stderr the connection (remote and local address, protocol, TLS version, cipher and "
        "ALPN), the request as sent and how long each step took. Without URL, the request "
        "goes to an embedded server started for it (h2c with --http2). Exit status: 0 once "
        "a response arrived (whatever its status), 1 if the request failed, 2 for a usage "
        "error.",
    )
    get.add_argument(
        "url", nargs="?", metavar="URL", help="where to (default: the embedded server)"
    )
    options.add_request_options(
        get,
        data_help="the request body: the text itself, or @FILE for a file's bytes (default: none)",
    )
    get.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the connection, the request and timings to stderr (default: off)",
    )


def _fail(command: str, message: str) -> int:
    print(f"{_PROG} {command}: error: {message}", file=sys.stderr)
    return 2


def _check(args: argparse.Namespace) -> str | None:
    """What makes the command pointless before it starts; None if nothing does."""
    if getattr(args, "runtime", None) == "trio" and importlib.util.find_spec("trio") is None:
        return (
            "the trio runtime needs trio installed: pip install 'httpool[trio]' "
            "(in a checkout: pip install -e '.[trio]')"
        )
    if args.http2 and importlib.util.find_spec("h2") is None:
        return (
            "--http2 needs h2 installed: pip install 'httpool[http2]' "
            "(in a checkout: pip install -e '.[http2]')"
        )
    if args.url is not None:
        try:
            check_url(args.url)
        except HttpoolError as exc:
            return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    problem = _check(args)
    if problem is not None:
        return _fail(args.command, problem)
    try:
        context = options.ssl_context(args.cacert, args.insecure)
    except (OSError, ssl.SSLError) as exc:
        return _fail(args.command, f"--cacert {args.cacert}: {exc}")
    try:
        if args.command == "get":
            return _get(args, context)
        return _bench(args, context)
    except KeyboardInterrupt:
        print(f"\n{_PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): no traceback for that, and
        # none either when the interpreter flushes stdout on its way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _embedded_server(
    stack: contextlib.ExitStack, command: str, http2: bool, body_size: int
) -> BenchServer:
    server = stack.enter_context(BenchServer(body_size=body_size, h2c=http2))
    print(f"{_PROG} {command}: embedded server on {server.url} (pid {server.pid})", file=sys.stderr)
    return server


def _pool_options(url: str, http2: bool, context: ssl.SSLContext | None) -> dict[str, object]:
    return BenchConfig(
        url=url, requests=1, concurrency=1, http2=http2, ssl_context=context
    ).pool_options


def _get(args: argparse.Namespace, context: ssl.SSLContext | None) -> int:
    with contextlib.ExitStack() as stack:
        url = args.url
        if url is None:
            url = _embedded_server(stack, "get", args.http2, 2).url
        return run_get(
            url,
            method=args.method or ("POST" if args.data is not None else "GET"),
            headers=args.headers or [],
            content=args.data,
            pool_options=_pool_options(url, args.http2, context),
            extensions=options.timeout_extension(args.timeout),
            verbose=args.verbose,
        )


def _bench(args: argparse.Namespace, context: ssl.SSLContext | None) -> int:
    if args.data is not None and args.body_size:
        return _fail("bench", "--data and --body-size exclude each other")
    if args.url is None and args.http2 and args.response_size > MAX_H2C_BODY:
        return _fail("bench", f"--http2: the embedded server serves at most {MAX_H2C_BODY} bytes")
    if args.concurrency > args.requests:
        print(
            f"{_PROG} bench: -c {args.concurrency} capped at -n {args.requests}: "
            f"no more workers than requests",
            file=sys.stderr,
        )
    with contextlib.ExitStack() as stack:
        server_pid = None
        url = args.url
        if url is None:
            server = _embedded_server(stack, "bench", args.http2, args.response_size)
            url, server_pid = server.url, server.pid
        has_body = args.data is not None or args.body_size
        config = BenchConfig(
            url=url,
            requests=args.requests,
            concurrency=min(args.concurrency, args.requests),
            method=args.method or ("POST" if has_body else "GET"),
            body_size=args.body_size,
            max_connections=args.max_connections,
            http2=args.http2,
            timeout=args.timeout,
            progress=sys.stderr.isatty(),
            ssl_context=context,
            headers=tuple(args.headers or ()),
            data=args.data,
        )
        try:
            result = RUNNERS[args.runtime](config)
        except HttpoolError as exc:
            return _fail("bench", f"{type(exc).__name__}: {exc}")

    if args.json:
        summary = result.summary()
        summary["server_pid"] = server_pid
        print(json.dumps(summary, indent=2))
        if result.verdict() is not None:
            print(f"{_PROG} bench: {result.verdict()}", file=sys.stderr)
    else:
        if server_pid is not None:
            print(f"server:      embedded, pid {server_pid} (stopped)")
        print(result.report())
    if result.interrupted:
        return 130
    return 1 if result.failed else 0
