"""Soak: mixed HTTP/1.1 and HTTP/2 traffic through two pools per runtime for a bounded time.

    python scripts/soak.py --duration 20        # a quick try
    nox -s soak                                 # five minutes

Theory of operation: the parent process starts three HTTP/1.1 loopback
servers (``tests/support/http_server.HTTPServer``): a plain one; a "stale" one
that drops keep-alive connections idle for 50 ms, so that reused connections
go stale under the pool; and a "drop" one that, every 50 ms, reads one request
and hangs up without answering. It also starts four HTTP/2 servers
(``tests/support/h2_server.H2Server``, described with their scenarios in
``tests/support/soak_scenarios.py``): plain h2c, which gets a GOAWAY on every
connection every 250 ms; one allowing 2 streams per connection; one closing
idle connections after a GOAWAY; one over TLS (ALPN). It then runs this script
again as one child process per runtime (sync threads, asyncio, trio), so that
the runtimes do not share an interpreter lock with each other or with the
servers.

Each child builds an HTTP/1.1 pool (``max_connections=8``) and an HTTP/2 pool
(``http1=False, http2=True, max_connections=4``) and runs workers (threads or
tasks) until the deadline. Each worker draws scenarios from ``SCENARIOS``
with its own seeded RNG, each on its protocol's pool: keep-alive,
``Connection: close``, slow, drip, chunked and uploaded bodies, downloads of
up to 2 MB, bodies closed after the first chunk, ``/hang`` under a read
timeout, ``/early`` (a 413 before the upload is read), HTTP/2 stream resets,
tiny pool timeouts, cancellations, and the stale, drop, GOAWAY and idle
servers. Every outcome is classified: ok, an expected failure (the exception
the scenario provokes, such as ``ReadTimeout`` on ``/hang``), or unexpected
(any other exception, a wrong status or body, or a success where a failure
was due). A checker runs ``check_invariants()`` on both pools every 20 ms. At
the end the child checks that nothing is active or queued, closes the pools
and compares its open file descriptors with the count before the pools
existed; it prints one JSON line.

The parent prints the figures and exits 1 on any invariant violation,
unexpected failure, leaked descriptor or child that did not report.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import gc
import json
import os
import random
import re
import ssl
import subprocess
import sys
import threading
import time
import traceback
import typing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import httpool  # noqa: E402
from tests.support.soak_scenarios import SCENARIOS, Scenario, prepare  # noqa: E402

RUNTIMES = ("sync", "asyncio", "trio")
MAX_CONNECTIONS = 8
H2_MAX_CONNECTIONS = 4
GOAWAY_INTERVAL = 0.25
WORKERS = {"sync": 16, "asyncio": 32, "trio": 32}
CHECK_INTERVAL = 0.02
# Every request is bounded: nothing in the mix should come near these.
TIMEOUTS = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 30.0}


# The scenarios in play: all of them unless --only names some.
MIX = list(SCENARIOS)
# Each child's two pools, by protocol, and their limits.
Pools = typing.Mapping[str, httpool.ConnectionPool | httpool.AsyncConnectionPool]
LIMITS = {"http1": MAX_CONNECTIONS, "http2": H2_MAX_CONNECTIONS}


def pool_options(urls: dict[str, str]) -> dict[str, dict[str, typing.Any]]:
    """Keyword arguments of the two pools; the HTTP/2 one trusts the TLS server's CA."""
    context = ssl.create_default_context(cadata=urls["ca"])
    return {
        "http1": {"max_connections": MAX_CONNECTIONS},
        "http2": {
            "max_connections": H2_MAX_CONNECTIONS,
            "http1": False,
            "http2": True,
            "ssl_context": context,
        },
    }


def protocol(scenario: Scenario) -> str:
    return "http2" if scenario.http2 else "http1"


class Tally:
    """Outcomes by (scenario, outcome), the first tracebacks of unexpected
    ones, and invariant checks. Shared by threads, hence the lock."""

    def __init__(self) -> None:
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.samples: list[str] = []
        self.checks = 0
        self.violations: list[str] = []
        self._lock = threading.Lock()

    def record(self, scenario: Scenario, outcome: str, detail: str = "") -> None:
        with self._lock:
            key = f"{scenario.name} {outcome}"
            self.outcomes[key] += 1
            # The first two of each kind of unexpected outcome, with details.
            if outcome.startswith("unexpected") and self.outcomes[key] <= 2:
                self.samples.append(f"{scenario.name}: {outcome}\n{detail}")

    def check(self, pools: Pools) -> None:
        try:
            for name, pool in pools.items():
                pool.check_invariants()
                stats = pool.stats()
                assert stats.connections <= LIMITS[name], (name, stats)
        except AssertionError:
            with self._lock:
                self.violations.append(traceback.format_exc())
        with self._lock:
            self.checks += 1


def classify(
    scenario: Scenario, tally: Tally, status: int, body: bytes | None, expected: bytes | None
) -> None:
    """Record a request that returned; ``expected`` is its body, None if unchecked."""
    if scenario.must_fail:
        tally.record(scenario, "unexpected:NoError")
    elif status != scenario.expect_status:
        tally.record(scenario, "unexpected:WrongStatus", f"status {status}")
    elif body is not None and expected is not None and body != expected:
        tally.record(scenario, "unexpected:WrongBody", f"{len(body)} bytes: {body[:60]!r}")
    else:
        tally.record(scenario, "ok")


def classify_error(scenario: Scenario, tally: Tally, exc: BaseException, steps: list[str]) -> None:
    """Record a request that raised; an unexpected error keeps its traced steps."""
    name = type(exc).__name__
    if isinstance(exc, scenario.expected_errors):
        tally.record(scenario, f"expected:{name}")
    elif isinstance(exc, scenario.fresh_errors) and on_new_connection(steps):
        tally.record(scenario, f"expected:{name} (new connection)")
    else:
        if isinstance(exc, httpool.HttpoolError):
            detail = "".join(traceback.format_exception_only(type(exc), exc))
        else:  # not a documented exception: where it came from matters
            detail = "".join(traceback.format_exception(exc))
        sends = sum(step.endswith("send_request_headers") for step in steps)
        if sends > 1 and scenario.http2:
            name += " (after a retry)"  # ConnectionNotAvailable: a GOAWAY or refused stream
        elif sends > 1 and not on_new_connection(steps):
            name += " (retried on a reused connection)"
        # The message too (numbers as N): one exception type has several causes.
        message = re.sub(r"\d+", "N", str(exc))[:60]
        tally.record(
            scenario, f"unexpected:{name} [{message}]", detail + "steps: " + " ".join(steps)
        )


def on_new_connection(steps: list[str]) -> bool:
    """Whether the request's last attempt went out on a connection it opened."""
    sends = [i for i, step in enumerate(steps) if step.endswith("send_request_headers")]
    return bool(sends) and sends[-1] > 0 and steps[sends[-1] - 1] == "connection.connect_tcp"


def request_args(
    scenario: Scenario, urls: dict[str, str], rng: random.Random, steps: list[str]
) -> tuple[str, dict[str, typing.Any], bytes | None]:
    """The URL, keyword arguments and expected body; ``steps`` collects the
    traced steps, so that an unexpected failure says what the request went through."""

    def trace(name: str, info: dict[str, typing.Any]) -> None:
        if not name.endswith(".complete"):
            steps.append(name.replace(".started", "").replace(".failed", "!"))

    timeout = {**TIMEOUTS, **scenario.timeout}
    kwargs: dict[str, typing.Any] = {"extensions": {"timeout": timeout, "trace": trace}}
    path, content, expected = prepare(scenario, rng)
    if content:
        kwargs["content"] = content
    return urls[scenario.server] + path, kwargs, expected


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir used


def settled_fds(target: int) -> int:
    """The fd count, once closed sockets had a moment to go (bounded)."""
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        count = open_fds()
        if count <= target or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def final_checks(pools: Pools, tally: Tally) -> dict[str, dict[str, int]]:
    """After the workers stopped: nothing active or queued, and the books agree."""
    tally.check(pools)
    figures = {}
    for name, pool in pools.items():
        stats = pool.stats()
        if stats.queued or stats.streams_in_use or stats.active:
            tally.violations.append(f"{name} pool: left over after the run: {stats}")
        figures[name] = dataclasses.asdict(stats)
    return figures


def left_open(pools: Pools) -> int:
    return sum(pool.stats().connections for pool in pools.values())


# The sync runtime: threads.


def run_sync(urls: dict[str, str], duration: float, seed: int) -> dict[str, typing.Any]:
    tally = Tally()
    deadline = time.monotonic() + duration
    stop = threading.Event()
    options = pool_options(urls)
    with (
        httpool.ConnectionPool(**options["http1"]) as pool1,
        httpool.ConnectionPool(**options["http2"]) as pool2,
    ):
        pools = {"http1": pool1, "http2": pool2}

        def worker(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            weights = [s.weight for s in MIX]
            while time.monotonic() < deadline:
                scenario = rng.choices(MIX, weights)[0]
                if scenario.pause:
                    time.sleep(rng.uniform(0, scenario.pause))
                sync_one(pools[protocol(scenario)], scenario, urls, rng, tally)

        def checker() -> None:
            while not stop.wait(CHECK_INTERVAL):
                tally.check(pools)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS["sync"])]
        watcher = threading.Thread(target=checker)
        for thread in [*threads, watcher]:
            thread.start()
        for thread in threads:
            thread.join(duration + 60)
        stop.set()
        watcher.join(10)
        if any(thread.is_alive() for thread in [*threads, watcher]):
            tally.violations.append("a worker thread hung")
        stats = final_checks(pools, tally)
    return report("sync", tally, stats, left_open(pools))


def sync_one(
    pool: httpool.ConnectionPool,
    scenario: Scenario,
    urls: dict[str, str],
    rng: random.Random,
    tally: Tally,
) -> None:
    steps: list[str] = []
    url, kwargs, expected = request_args(scenario, urls, rng, steps)
    if scenario.mode == "cancel":
        # Threads cannot be cancelled: a read timeout gives the request up instead.
        kwargs["extensions"]["timeout"]["read"] = rng.uniform(0.001, scenario.cancel_after)
    try:
        with pool.stream(scenario.method, url, **kwargs) as response:
            if scenario.mode == "first_chunk":
                next(iter(response.iter_stream()))
                body = None
            else:
                body = response.read()
        classify(scenario, tally, response.status, body, expected)
    except Exception as exc:
        classify_error(scenario, tally, exc, steps)


# The async runtimes: asyncio and trio, one body.


async def run_async(
    library: str, urls: dict[str, str], duration: float, seed: int
) -> dict[str, typing.Any]:
    from tests.support.concurrency import AsyncTaskGroup

    backend = httpool_sleep(library)
    tally = Tally()
    deadline = time.monotonic() + duration
    running = WORKERS[library]
    options = pool_options(urls)
    async with (
        httpool.AsyncConnectionPool(**options["http1"]) as pool1,
        httpool.AsyncConnectionPool(**options["http2"]) as pool2,
    ):
        pools = {"http1": pool1, "http2": pool2}

        async def worker(n: int) -> None:
            nonlocal running
            rng = random.Random(seed * 1000 + n)
            weights = [s.weight for s in MIX]
            try:
                while time.monotonic() < deadline:
                    scenario = rng.choices(MIX, weights)[0]
                    if scenario.pause:
                        await backend(rng.uniform(0, scenario.pause))
                    await async_one(pools[protocol(scenario)], scenario, urls, rng, tally)
            finally:
                running -= 1

        async def checker() -> None:
            while running:
                await backend(CHECK_INTERVAL)
                tally.check(pools)

        async with AsyncTaskGroup() as group:
            for n in range(WORKERS[library]):
                group.start_soon(worker, n)
            group.start_soon(checker)
        stats = final_checks(pools, tally)
    return report(library, tally, stats, left_open(pools))


def httpool_sleep(library: str) -> typing.Callable[[float], typing.Awaitable[None]]:
    if library == "trio":
        import trio

        return trio.sleep
    return asyncio.sleep


async def async_one(
    pool: httpool.AsyncConnectionPool,
    scenario: Scenario,
    urls: dict[str, str],
    rng: random.Random,
    tally: Tally,
) -> None:
    steps: list[str] = []
    url, kwargs, expected = request_args(scenario, urls, rng, steps)
    result: list[tuple[int, bytes | None]] = []

    async def go() -> None:
        async with pool.stream(scenario.method, url, **kwargs) as response:
            if scenario.mode == "first_chunk":
                async for _ in response.aiter_stream():
                    break
                result.append((response.status, None))
            else:
                result.append((response.status, await response.aread()))

    try:
        if scenario.mode == "cancel":
            from tests.support.concurrency import cancel_after

            if await cancel_after(rng.uniform(0.0, scenario.cancel_after), go):
                tally.record(scenario, "expected:Cancelled")
                return
        else:
            await go()
        status, body = result[0]
        classify(scenario, tally, status, body, expected)
    except Exception as exc:
        classify_error(scenario, tally, exc, steps)


def report(
    runtime: str, tally: Tally, stats: dict[str, dict[str, int]], after_close: int
) -> dict[str, typing.Any]:
    if after_close:
        tally.violations.append(f"{after_close} connection(s) left after the pools closed")
    return {
        "runtime": runtime,
        "outcomes": dict(tally.outcomes),
        "samples": tally.samples,
        "checks": tally.checks,
        "violations": tally.violations,
        "stats": stats,
    }


def child(runtime: str, urls: dict[str, str], duration: float, seed: int) -> None:
    # Counted outside the event loop: the loop's own descriptors come and go
    # with it, and asyncio closes a transport's socket only when the loop runs.
    fds_before = open_fds()
    if runtime == "sync":
        result = run_sync(urls, duration, seed)
    elif runtime == "trio":
        import trio

        result = trio.run(run_async, "trio", urls, duration, seed)
    else:
        result = asyncio.run(run_async("asyncio", urls, duration, seed))
    result["fds_before"], result["fds_after"] = fds_before, settled_fds(fds_before)
    print(json.dumps(result))


# The parent: servers, children, the report.


def parent(duration: float, seed: int, runtimes: list[str], only: str) -> int:
    import trustme

    from tests.support.h2_server import H2Server
    from tests.support.http_server import HTTPServer
    from tests.support.tls import CERT_HOSTNAMES, make_server_context

    ca = trustme.CA()
    tls = make_server_context(ca.issue_cert(*CERT_HOSTNAMES), alpn=["h2"])
    fds_before = open_fds()
    servers: dict[str, HTTPServer | H2Server] = {
        "plain": HTTPServer(),
        "stale": HTTPServer(idle_timeout=0.05),
        "drop": HTTPServer(),
        "h2": H2Server(),
        "h2_few": H2Server(max_concurrent_streams=2),
        "h2_idle": H2Server(idle_timeout=0.05),
        "h2_tls": H2Server(ssl_context=tls),
    }
    drop, h2 = servers["drop"], servers["h2"]
    assert isinstance(drop, HTTPServer) and isinstance(h2, H2Server)
    for srv in servers.values():
        srv.start()
    stop = threading.Event()

    peak = dict.fromkeys(servers, 0)

    def dropper() -> None:
        # Also samples the servers' open connections: a pile-up means some
        # connection outlives its request (one side never hangs up).
        next_goaway = time.monotonic()
        while not stop.wait(0.05):
            drop.drop_requests = 1
            if time.monotonic() >= next_goaway:
                # Every connection, busy or idle, is told to go away.
                h2.goaway()
                next_goaway = time.monotonic() + GOAWAY_INTERVAL
            for name, srv in servers.items():
                peak[name] = max(peak[name], srv.open_connections)

    ticker = threading.Thread(target=dropper)
    ticker.start()
    addresses = {name: srv.url for name, srv in servers.items()}
    urls = json.dumps({**addresses, "ca": ca.cert_pem.bytes().decode()})
    started = time.monotonic()
    children = {
        runtime: subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                runtime,
                "--urls",
                urls,
                "--duration",
                str(duration),
                "--seed",
                str(seed),
                "--only",
                only,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for runtime in runtimes
    }
    results: list[dict[str, typing.Any]] = []
    failed = False
    for runtime, proc in children.items():
        try:
            out, _ = proc.communicate(timeout=duration + 120)
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            proc.kill()
            proc.communicate()
            print(f"{runtime}: the child did not report (exit {proc.returncode})")
            failed = True
    elapsed = time.monotonic() - started
    stop.set()
    ticker.join()
    # The children are gone, so every server connection must end soon: one
    # still open would be a connection the client never closed.
    deadline = time.monotonic() + 5.0
    while any(srv.open_connections for srv in servers.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    server_figures = {
        name: (
            srv.connections_accepted,
            srv.requests_handled if isinstance(srv, HTTPServer) else srv.streams_completed,
            peak[name],
            srv.open_connections,
        )
        for name, srv in servers.items()
    }
    for srv in servers.values():
        srv.stop()
    fds_after = settled_fds(fds_before)
    failed |= print_report(results, elapsed, server_figures)
    print(f"parent fds before/after: {fds_before}/{fds_after}")
    failed |= fds_after > fds_before
    print("RESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


def print_report(
    results: list[dict[str, typing.Any]],
    elapsed: float,
    servers: dict[str, tuple[int, int, int, int]],
) -> bool:
    """Print the figures; return True if anything failed."""
    failed = False
    print(
        f"soak ran {elapsed:.0f} s; per runtime an HTTP/1.1 pool (max_connections="
        f"{MAX_CONNECTIONS}) and an HTTP/2 pool (max_connections={H2_MAX_CONNECTIONS})"
    )
    print(
        "runtime  protocol  requests      ok  expected  unexpected  checks  violations"
        "  fds before/after"
    )
    protocols = {s.name: protocol(s) for s in SCENARIOS}
    for r in results:
        for row in ("http1", "http2", "all"):
            outcomes = {
                key: n
                for key, n in r["outcomes"].items()
                if row == "all" or protocols[key.split(" ")[0]] == row
            }
            total = sum(outcomes.values())
            ok = sum(n for key, n in outcomes.items() if key.endswith(" ok"))
            expected = sum(n for key, n in outcomes.items() if " expected:" in key)
            unexpected = total - ok - expected
            line = f"{r['runtime']:<8} {row:<8} {total:>9} {ok:>7} {expected:>9} {unexpected:>11}"
            if row == "all":
                line += f" {r['checks']:>7} {len(r['violations']):>11}"
                line += f"   {r['fds_before']}/{r['fds_after']}"
                failed |= bool(unexpected or r["violations"]) or r["fds_after"] > r["fds_before"]
            print(line)
    print("outcomes other than ok, by runtime, scenario and exception:")
    for r in results:
        for key, n in sorted(r["outcomes"].items()):
            if not key.endswith(" ok"):
                print(f"  {r['runtime']:<8} {key:<75} {n:>6}")
    print("invariant violations, by runtime and assertion (numbers as N):")
    for r in results:
        kinds = collections.Counter(
            re.sub(r"\d+", "N", text.strip().splitlines()[-1]) for text in r["violations"]
        )
        for kind, n in kinds.most_common():
            print(f"  {r['runtime']:<8} {kind:<70} {n:>7}")
    for r in results:
        for text in [*r["violations"][:2], *r["samples"]]:
            print(f"--- {r['runtime']}:\n{text}")
        print(f"{r['runtime']} final stats: {r['stats']}")
    for name, (accepted, handled, most, still_open) in servers.items():
        print(
            f"server {name}: {accepted} connections accepted, {handled} responses,"
            f" at most {most} open at once, {still_open} open after the clients exited"
        )
        failed |= still_open > 0
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of traffic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated")
    names = ",".join(s.name for s in SCENARIOS)
    parser.add_argument("--only", default="", help=f"comma-separated scenarios among {names}")
    parser.add_argument("--child", choices=RUNTIMES, help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        MIX[:] = [s for s in SCENARIOS if s.name in args.only.split(",")]
    if args.child:
        child(args.child, json.loads(args.urls), args.duration, args.seed)
        return 0
    return parent(args.duration, args.seed, args.runtimes.split(","), args.only)


if __name__ == "__main__":
    sys.exit(main())
