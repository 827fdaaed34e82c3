"""Instructions per request, httpool against its peers: compare.py without the noise.

Usage: python scripts/instructions_compare.py [--nginx | --url URL --url-h2 URL]
       [--workloads sync_seq,asyncio_64,trio_64,h2_64] [--peers a,b] [--requests 1000]
(``nox -s instructions -- ARGS`` runs it with the peers installed; it needs
``valgrind``.)

Theory of operation: on a shared 2-core machine the rates of ``compare.py``
move by 30 to 50 % from run to run, more than many of the differences it is
meant to show. The number of instructions a client executes per request moves
by well under 1 %. Each (client, workload) child of ``compare.py`` runs twice
under ``valgrind --tool=callgrind``: once with N requests and once with none
(imports, set-up and warm-up are the same in both); the difference divided by
N is what the client itself executes per request, in user space.

What it leaves out is what ``compare.py`` measures besides: the kernel (system
calls, the loopback), the server and the waiting. So it answers "how much work
does this client do per request", not "how fast is it": a sequential client
that does half the work of another is not twice as fast when a round trip
through the server costs as much as the client's work. Under valgrind the
client runs some 50 times slower while the server does not, so the
concurrent workloads see fewer requests in flight per loop iteration than
they would natively.

Two children run at a time. The table shows instructions per request and
"this/httpool", the peer's count divided by httpool's (above 1: httpool does
less work).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import typing
from collections.abc import Sequence

from callgrind import count_instructions
from compare import (  # also puts scripts/ and the project root on sys.path
    SCRIPTS,
    _split_list,
    _status,
    _versions,
    start_servers,
)
from compare_clients import CLIENTS, WORKLOADS, Workload

DEFAULT_WORKLOADS = "sync_seq,asyncio_64,trio_64,h2_64"
NO_LIMIT = "1e9"  # seconds: under valgrind every run is slow, none is cut short


def _instructions(argv: list[str], workdir: str, label: str, timeout: float) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPTS), str(SCRIPTS.parent)])
    out = os.path.join(workdir, f"callgrind.{label}")
    return count_instructions(argv, out, env=env, timeout=timeout)


def per_request(
    client: str, workload: Workload, url: str, requests: int, workdir: str, timeout: float
) -> float:
    """The instructions ``client`` executes per request of ``workload``."""
    base = [sys.executable, "-m", "compare_clients", client, workload.name, url]
    label = f"{client}.{workload.name}"
    idle = _instructions([*base, "0", NO_LIMIT], workdir, label + ".0", timeout)
    busy = _instructions([*base, str(requests), NO_LIMIT], workdir, label, timeout)
    return (busy - idle) / requests


def _count(workload: Workload, requests: int) -> int:
    # A queued workload starts whole batches: a multiple of its batch size.
    if not workload.batch:
        return requests
    return max(workload.batch, requests // workload.batch * workload.batch)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="HTTP/1.1 server root URL (default: embedded server)")
    parser.add_argument("--url-h2", help="h2c server root URL (default: embedded, in h2c mode)")
    parser.add_argument(
        "--nginx", action="store_true", help="serve from tests/interop/servers/nginx.py"
    )
    parser.add_argument("--workloads", default=DEFAULT_WORKLOADS, help="comma-separated")
    parser.add_argument("--peers", default=",".join(CLIENTS), help="comma-separated clients")
    parser.add_argument("--requests", type=int, default=1000, help="per run (default 1000)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="per valgrind run")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    workloads = [WORKLOADS[n] for n in _split_list(args.workloads, list(WORKLOADS), "workload")]
    clients = _split_list(args.peers, list(CLIENTS), "client")
    if "httpool" not in clients:
        clients.insert(0, "httpool")

    results: dict[tuple[str, str], str | float] = {}
    with contextlib.ExitStack() as stack:
        url, url_h2, paths = start_servers(stack, args, workloads)
        workdir = stack.enter_context(tempfile.TemporaryDirectory())
        pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(2))
        jobs: dict[tuple[str, str], concurrent.futures.Future[float]] = {}
        for workload in workloads:
            for client in clients:
                status = _status(client, workload, url_h2)
                if status is not None:
                    results[(workload.name, client)] = status
                    continue
                target = (url_h2 if workload.http2 else url) or ""
                jobs[(workload.name, client)] = pool.submit(
                    per_request,
                    client,
                    workload,
                    target + paths[workload.path],
                    _count(workload, args.requests),
                    workdir,
                    args.timeout,
                )
        for key, job in jobs.items():
            try:
                results[key] = job.result()
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                results[key] = f"failed: {exc}"[:60]
            print(f"{key[0]} {key[1]}: {results[key]}", file=sys.stderr, flush=True)

    print(
        f"# {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()};"
        f" instructions per request (callgrind, user space), {args.requests} requests per run;"
        f" server: {args.url or 'embedded bench server'}"
    )
    print(f"# {_versions(clients)}")
    print(format_table(workloads, clients, results))
    return 0


def format_table(
    workloads: list[Workload], clients: list[str], results: dict[tuple[str, str], typing.Any]
) -> str:
    lines = []
    for workload in workloads:
        lines.append("")
        lines.append(f"{workload.title} [{workload.name}]")
        lines.append(f"  {'client':<14}{'instr/request':>14}  {'this/httpool':>12}")
        base = results.get((workload.name, "httpool"))
        for client in clients:
            value = results.get((workload.name, client), "no data")
            name = f"{client} (floor)" if client == "raw" else client
            if not isinstance(value, float):
                lines.append(f"  {name:<14}{value:>14}")
                continue
            ratio = f"{value / base:.2f}x" if isinstance(base, float) and base > 0 else "n/a"
            lines.append(f"  {name:<14}{value:>14,.0f}  {ratio:>12}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
