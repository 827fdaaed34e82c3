"""httpool against its peers, side by side, on the same loopback server.

Usage: python scripts/compare.py [--rounds 5] [--requests 2000] [--max-seconds 10]
       [--workloads a,b] [--peers a,b] [--url URL] [--url-h2 URL] [--nginx] [--json FILE]
(or ``nox -s compare -- ARGS``, which installs the peers in its own virtualenv).
Profile one pair: ``COMPARE_PROFILE=25 PYTHONPATH=scripts python -m compare_clients
httpool asyncio_64 URL 20000 60`` (see ``compare_clients/__main__.py``).

Theory of operation: one server for every client (the embedded bench server
in its own process by default; ``--url`` for another, which must answer
``GET {url}``, ``{url}size/65536`` and ``{url}size/1048576`` with bodies of
those sizes; ``--nginx`` starts ``tests/interop/servers/nginx.py`` and uses its HTTP/1.1
and h2c ports and static files instead). Each (client, workload) pair runs in
a fresh process (``scripts/compare_clients``), so no client inherits another's
warm caches, threads or sockets. Runs are interleaved, round by round, with
the clients in a new random order each time, so that a slow phase of the
machine hurts every client alike; the table shows medians over the rounds.

Per row: throughput (requests/s, or MB/s for large streamed bodies), wall and
client CPU microseconds per request (``time.process_time`` of the timed part
in the child), and "httpool/this", httpool's throughput divided by this
client's (above 1: httpool is faster). The raw-socket client is the floor.
A client that cannot run a workload (urllib3 on asyncio) shows "-", one not
installed says so. The HTTP/2 row needs an h2c server: ``--url-h2``, else the
bench server's h2c mode when the h2 library is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
sys.path.insert(1, str(SCRIPTS.parent))

from compare_clients import CLIENTS, WORKLOADS, Workload  # noqa: E402

from httpool._bench.server import BenchServer  # noqa: E402

BASE_REQUESTS = 2000
# Workload path -> what to append to the server URL: the bench server serves
# any size at /size/N; tests/interop/servers/nginx.py serves these static files.
BENCH_PATHS = {"": "", "size/65536": "size/65536", "size/1048576": "size/1048576"}
NGINX_PATHS = {"": "small.txt", "size/65536": "64k.bin", "size/1048576": "1m.bin"}
Run = dict[str, typing.Any]


def _scaled(workload: Workload, requests: int) -> int:
    count = max(1, round(workload.requests * requests / BASE_REQUESTS))
    if workload.batch:
        count = max(workload.batch, count // workload.batch * workload.batch)
    return count


def _status(client: str, workload: Workload, url_h2: str | None) -> str | None:
    """Why ``client`` does not run ``workload`` (a table cell), or None if it does."""
    if workload.http2 and url_h2 is None:
        return "needs --url-h2"
    module_name, library = CLIENTS[client]
    if library is not None and importlib.util.find_spec(library) is None:
        return "not installed"
    family: typing.Any = importlib.import_module(f"compare_clients.{module_name}")
    if not family.supports(library or client, workload):
        return "-"
    return None


def start_servers(
    stack: contextlib.ExitStack, args: argparse.Namespace, workloads: list[Workload]
) -> tuple[str, str | None, dict[str, str]]:
    """The HTTP/1.1 and h2c root URLs to use and the workload path -> URL suffix map:
    nginx with ``--nginx`` (``args.url`` then names it, for the header line), else
    ``--url``/``--url-h2``, else bench servers (h2c only if a workload needs it)."""
    paths = dict(BENCH_PATHS)
    if args.nginx:
        from tests.interop.servers import Nginx

        nginx = stack.enter_context(Nginx())
        args.url, args.url_h2, paths = nginx.http_url, nginx.h2c_url, dict(NGINX_PATHS)
    url = args.url or stack.enter_context(BenchServer()).url
    url_h2 = args.url_h2
    wants_h2 = any(w.http2 for w in workloads)
    if url_h2 is None and wants_h2 and importlib.util.find_spec("h2") is not None:
        url_h2 = stack.enter_context(BenchServer(h2c=True)).url
    return url, url_h2, paths


def run_one(
    client: str, workload: Workload, url: str, count: int, seconds: float, timeout: float
) -> Run:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SCRIPTS), str(SCRIPTS.parent), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    argv = [sys.executable, "-m", "compare_clients", client, workload.name, url, str(count)]
    argv.append(str(seconds))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"failed": f"timeout (> {timeout:.0f} s)"}
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        return {"failed": lines[-1][:100]}
    result: Run = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median_row(runs: list[Run], workload: Workload) -> dict[str, typing.Any]:
    good = [run for run in runs if "failed" not in run]
    if not good:
        return {"failed": runs[-1]["failed"] if runs else "no run"}
    rates = [
        (run["bytes"] / 1e6 if workload.streams else run["requests"]) / run["seconds"]
        for run in good
    ]
    median = statistics.median(rates)
    return {
        "rate": median,
        "spread": (max(rates) - min(rates)) / median if median else 0.0,
        "wall_us": statistics.median(run["seconds"] / run["requests"] * 1e6 for run in good),
        "cpu_us": statistics.median(run["cpu_seconds"] / run["requests"] * 1e6 for run in good),
        "errors": sum(run["errors"] for run in good),
        "error_sample": next((run["error_sample"] for run in good if run["errors"]), ""),
        "runs": len(good),
        "failed_runs": len(runs) - len(good),
    }


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def format_table(
    workloads: list[Workload],
    clients: list[str],
    medians: dict[str, dict[str, dict[str, typing.Any]]],
    notes: dict[tuple[str, str], str],
) -> str:
    lines = []
    header = f"  {'client':<14}{'rate':>12}  {'wall us/req':>11}  {'CPU us/req':>10}"
    header += f"  {'httpool/this':>12}  {'spread':>6}  errors"
    for workload in workloads:
        unit = "MB/s" if workload.streams else "req/s"
        lines.append(f"{workload.title} [{workload.name}] ({unit})")
        lines.append(header)
        row = medians.get(workload.name, {})
        base = row.get("httpool", {}).get("rate")
        for client in clients:
            name = f"{client} (floor)" if client == "raw" else client
            note = notes.get((workload.name, client))
            cell = row.get(client)
            if cell is None or (note is not None and "failed" not in note):
                lines.append(f"  {name:<14}{note or 'no data':>12}")
                continue
            if "failed" in cell:
                lines.append(f"  {name:<14}{'failed':>12}  {cell['failed']}")
                continue
            ratio = f"{base / cell['rate']:.2f}x" if base and cell["rate"] else "n/a"
            errors = str(cell["errors"]) if cell["errors"] else ""
            if cell["failed_runs"]:
                errors += f" ({cell['failed_runs']} runs failed)"
            if cell["error_sample"]:
                errors += f" e.g. {cell['error_sample'][:60]}"
            lines.append(
                f"  {name:<14}{_rate(cell['rate']):>12}  {cell['wall_us']:>11.1f}"
                f"  {cell['cpu_us']:>10.1f}  {ratio:>12}  {cell['spread']:>6.0%}  {errors}"
            )
        lines.append("")
    lines.extend(_queue_ratios(clients, medians))
    return "\n".join(lines)


def _queue_ratios(
    clients: list[str], medians: dict[str, dict[str, dict[str, typing.Any]]]
) -> list[str]:
    small, large = medians.get("queued100", {}), medians.get("queued10000", {})
    out = []
    for client in clients:
        a, b = small.get(client, {}), large.get(client, {})
        if "wall_us" in a and "wall_us" in b:
            out.append(
                f"  {client:<14}{a['wall_us']:>8.1f} -> {b['wall_us']:>8.1f} us/request:"
                f" {b['wall_us'] / a['wall_us']:.2f}x"
            )
    if out:
        out.insert(0, "10,000 queued vs 100 queued on 10 connections (wall us/request, ratio):")
    return out


def _versions(clients: list[str]) -> str:
    parts = []
    for client in clients:
        library = CLIENTS[client][1]
        if library is None:
            continue
        try:
            parts.append(f"{library} {importlib.metadata.version(library)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{library} not installed")
    return ", ".join(parts)


def _split_list(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="HTTP/1.1 server root URL (default: embedded server)")
    parser.add_argument("--url-h2", help="h2c server root URL (default: embedded, in h2c mode)")
    parser.add_argument("--rounds", type=int, default=5, help="runs per pair (default 5)")
    parser.add_argument(
        "--requests",
        type=int,
        default=BASE_REQUESTS,
        help=f"small-body requests per run (default {BASE_REQUESTS}); others scale with it",
    )
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument("--peers", default=",".join(CLIENTS), help="comma-separated clients")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=10.0,
        help="a run starts no request after this many seconds (default 10)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="a run still going after this is killed and its pair skipped from then on",
    )
    parser.add_argument(
        "--nginx",
        action="store_true",
        help="serve from nginx (tests/interop/servers/nginx.py) instead of the bench server",
    )
    parser.add_argument("--seed", type=int, default=None, help="of the client order shuffle")
    parser.add_argument("--json", metavar="FILE", help="write every run and the medians here")
    args = parser.parse_args(argv)
    workloads = [WORKLOADS[n] for n in _split_list(args.workloads, list(WORKLOADS), "workload")]
    clients = _split_list(args.peers, list(CLIENTS), "client")
    if "httpool" not in clients:
        clients.insert(0, "httpool")
    shuffle = random.Random(args.seed).shuffle

    with contextlib.ExitStack() as stack:
        url, url_h2, paths = start_servers(stack, args, workloads)
        notes: dict[tuple[str, str], str] = {}
        for workload in workloads:
            for client in clients:
                status = _status(client, workload, url_h2)
                if status is not None:
                    notes[(workload.name, client)] = status
        runs: dict[str, dict[str, list[Run]]] = {
            w.name: {c: [] for c in clients} for w in workloads
        }
        started = time.monotonic()
        for round_number in range(1, args.rounds + 1):
            for workload in workloads:
                order = list(clients)
                shuffle(order)
                target = (url_h2 if workload.http2 else url) or ""
                target += paths[workload.path]
                for client in order:
                    if (workload.name, client) in notes:
                        continue
                    count = _scaled(workload, args.requests)
                    result = run_one(
                        client, workload, target, count, args.max_seconds, args.timeout
                    )
                    runs[workload.name][client].append(result)
                    if "failed" in result:
                        # A pair that failed (or timed out) once is not run again:
                        # it would cost every round the whole timeout.
                        notes[(workload.name, client)] = (
                            f"failed in round {round_number}: {result['failed']}"
                        )
                    print(
                        f"[{time.monotonic() - started:6.0f}s] round {round_number}/{args.rounds}"
                        f" {workload.name} {client}: "
                        + (
                            result.get("failed")
                            or f"{result['requests'] / result['seconds']:,.0f} req/s"
                        ),
                        file=sys.stderr,
                        flush=True,
                    )

    medians = {
        w.name: {c: _median_row(runs[w.name][c], w) for c in clients if runs[w.name][c]}
        for w in workloads
    }
    print(
        f"# {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()};"
        f" {args.rounds} rounds, medians; server: {args.url or 'embedded bench server'}"
    )
    print(f"# {_versions(clients)}")
    print()
    print(format_table(workloads, clients, medians, notes))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"runs": runs, "medians": medians, "argv": sys.argv}, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
