"""Soak: mixed traffic through one pool per runtime for a bounded time.

    python scripts/soak.py --duration 20        # a quick try
    nox -s soak                                 # five minutes

Theory of operation: the parent process starts three loopback servers
(``tests/support/http_server.HTTPServer``): a plain one; a "stale" one that
drops keep-alive connections idle for 50 ms, so that reused connections go
stale under the pool; and a "drop" one that, every 50 ms, reads one request
and hangs up without answering. It then runs this script again as one child
process per runtime (sync threads, asyncio, trio), so that the runtimes do
not share an interpreter lock with each other or with the servers.

Each child builds one pool (``max_connections=8``) and runs workers (threads
or tasks) until the deadline. Each worker draws scenarios from ``SCENARIOS``
with its own seeded RNG: keep-alive, ``Connection: close``, slow, drip,
chunked and uploaded bodies, bodies closed after the first chunk, ``/hang``
under a read timeout, ``/early`` (a 413 before the upload is read), tiny pool
timeouts, cancellations, and the stale and drop servers. Every outcome is
classified: ok, an expected failure (the exception the scenario provokes, such
as ``ReadTimeout`` on ``/hang``), or unexpected (any other exception, a wrong
answer, or a success where a failure was due). A checker runs
``pool.check_invariants()`` every 20 ms. At the end the child checks that
nothing is active or queued, closes the pool and compares its open file
descriptors with the count before the pool existed; it prints one JSON line.

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
import subprocess
import sys
import threading
import time
import traceback
import typing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import httpool  # noqa: E402

RUNTIMES = ("sync", "asyncio", "trio")
MAX_CONNECTIONS = 8
WORKERS = {"sync": 16, "asyncio": 32, "trio": 32}
CHECK_INTERVAL = 0.02
# Every request is bounded: nothing in the mix should come near these.
TIMEOUTS = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 30.0}


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
    server: str  # "plain", "stale" or "drop"
    path: str
    method: str = "GET"
    body_size: int = 0
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


SCENARIOS = (
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
# The scenarios in play: all of them unless --only names some.
MIX = list(SCENARIOS)


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

    def check(self, pool: httpool.ConnectionPool | httpool.AsyncConnectionPool) -> None:
        try:
            pool.check_invariants()
            stats = pool.stats()
            assert stats.connections <= MAX_CONNECTIONS, stats
        except AssertionError:
            with self._lock:
                self.violations.append(traceback.format_exc())
        with self._lock:
            self.checks += 1


def classify(scenario: Scenario, tally: Tally, status: int, body: bytes | None) -> None:
    """Record a request that returned."""
    if scenario.must_fail:
        tally.record(scenario, "unexpected:NoError")
    elif status != scenario.expect_status:
        tally.record(scenario, "unexpected:WrongStatus", f"status {status}")
    elif body is not None and scenario.expect_body is not None and body != scenario.expect_body:
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
        detail = "".join(traceback.format_exception_only(type(exc), exc))
        sends = steps.count("http11.send_request_headers")
        if sends > 1 and not on_new_connection(steps):
            name += " (retried on a reused connection)"
        tally.record(scenario, f"unexpected:{name}", detail + "steps: " + " ".join(steps))


def on_new_connection(steps: list[str]) -> bool:
    """Whether the request's last attempt went out on a connection it opened."""
    sends = [i for i, step in enumerate(steps) if step == "http11.send_request_headers"]
    return bool(sends) and sends[-1] > 0 and steps[sends[-1] - 1] == "connection.connect_tcp"


def request_args(
    scenario: Scenario, urls: dict[str, str], rng: random.Random, steps: list[str]
) -> tuple[str, dict[str, typing.Any]]:
    """The URL and keyword arguments; ``steps`` collects the traced steps, so
    that an unexpected failure says what the request went through."""

    def trace(name: str, info: dict[str, typing.Any]) -> None:
        if not name.endswith(".complete"):
            steps.append(name.replace(".started", "").replace(".failed", "!"))

    timeout = {**TIMEOUTS, **scenario.timeout}
    kwargs: dict[str, typing.Any] = {"extensions": {"timeout": timeout, "trace": trace}}
    if scenario.body_size:
        kwargs["content"] = rng.randbytes(rng.randrange(1, scenario.body_size))
    return urls[scenario.server] + scenario.path, kwargs


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


def final_checks(
    pool: httpool.ConnectionPool | httpool.AsyncConnectionPool, tally: Tally
) -> dict[str, int]:
    """After the workers stopped: nothing active or queued, and the books agree."""
    tally.check(pool)
    stats = pool.stats()
    if stats.queued or stats.streams_in_use or stats.active:
        tally.violations.append(f"left over after the run: {stats}")
    return dataclasses.asdict(stats)


# The sync runtime: threads.


def run_sync(urls: dict[str, str], duration: float, seed: int) -> dict[str, typing.Any]:
    tally = Tally()
    deadline = time.monotonic() + duration
    stop = threading.Event()
    with httpool.ConnectionPool(max_connections=MAX_CONNECTIONS) as pool:

        def worker(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            weights = [s.weight for s in MIX]
            while time.monotonic() < deadline:
                scenario = rng.choices(MIX, weights)[0]
                if scenario.pause:
                    time.sleep(rng.uniform(0, scenario.pause))
                sync_one(pool, scenario, urls, rng, tally)

        def checker() -> None:
            while not stop.wait(CHECK_INTERVAL):
                tally.check(pool)

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
        stats = final_checks(pool, tally)
    return report("sync", tally, stats, pool.stats().connections)


def sync_one(
    pool: httpool.ConnectionPool,
    scenario: Scenario,
    urls: dict[str, str],
    rng: random.Random,
    tally: Tally,
) -> None:
    steps: list[str] = []
    url, kwargs = request_args(scenario, urls, rng, steps)
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
        classify(scenario, tally, response.status, body)
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
    async with httpool.AsyncConnectionPool(max_connections=MAX_CONNECTIONS) as pool:

        async def worker(n: int) -> None:
            nonlocal running
            rng = random.Random(seed * 1000 + n)
            weights = [s.weight for s in MIX]
            try:
                while time.monotonic() < deadline:
                    scenario = rng.choices(MIX, weights)[0]
                    if scenario.pause:
                        await backend(rng.uniform(0, scenario.pause))
                    await async_one(library, pool, scenario, urls, rng, tally)
            finally:
                running -= 1

        async def checker() -> None:
            while running:
                await backend(CHECK_INTERVAL)
                tally.check(pool)

        async with AsyncTaskGroup() as group:
            for n in range(WORKERS[library]):
                group.start_soon(worker, n)
            group.start_soon(checker)
        stats = final_checks(pool, tally)
    return report(library, tally, stats, pool.stats().connections)


def httpool_sleep(library: str) -> typing.Callable[[float], typing.Awaitable[None]]:
    if library == "trio":
        import trio

        return trio.sleep
    return asyncio.sleep


async def async_one(
    library: str,
    pool: httpool.AsyncConnectionPool,
    scenario: Scenario,
    urls: dict[str, str],
    rng: random.Random,
    tally: Tally,
) -> None:
    steps: list[str] = []
    url, kwargs = request_args(scenario, urls, rng, steps)
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
        classify(scenario, tally, status, body)
    except Exception as exc:
        classify_error(scenario, tally, exc, steps)


def report(
    runtime: str, tally: Tally, stats: dict[str, int], after_close: int
) -> dict[str, typing.Any]:
    if after_close:
        tally.violations.append(f"{after_close} connection(s) left after the pool closed")
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
    from tests.support.http_server import HTTPServer

    fds_before = open_fds()
    servers = {
        "plain": HTTPServer(),
        "stale": HTTPServer(idle_timeout=0.05),
        "drop": HTTPServer(),
    }
    for srv in servers.values():
        srv.start()
    stop = threading.Event()

    peak = dict.fromkeys(servers, 0)

    def dropper() -> None:
        # Also samples the servers' open connections: a pile-up means some
        # connection outlives its request (one side never hangs up).
        while not stop.wait(0.05):
            servers["drop"].drop_requests = 1
            for name, srv in servers.items():
                peak[name] = max(peak[name], srv.open_connections)

    ticker = threading.Thread(target=dropper)
    ticker.start()
    urls = json.dumps({name: srv.url for name, srv in servers.items()})
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
        name: (srv.connections_accepted, srv.requests_handled, peak[name], srv.open_connections)
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
    print(f"soak ran {elapsed:.0f} s; pool max_connections={MAX_CONNECTIONS} per runtime")
    header = "runtime  requests      ok  expected  unexpected  checks  violations  fds before/after"
    print(header)
    for r in results:
        outcomes: dict[str, int] = r["outcomes"]
        total = sum(outcomes.values())
        ok = sum(n for key, n in outcomes.items() if key.endswith(" ok"))
        expected = sum(n for key, n in outcomes.items() if " expected:" in key)
        unexpected = total - ok - expected
        print(
            f"{r['runtime']:<8} {total:>8} {ok:>7} {expected:>9} {unexpected:>11}"
            f" {r['checks']:>7} {len(r['violations']):>11}   {r['fds_before']}/{r['fds_after']}"
        )
        failed |= bool(unexpected or r["violations"]) or r["fds_after"] > r["fds_before"]
    print("outcomes other than ok, by runtime, scenario and exception:")
    for r in results:
        for key, n in sorted(r["outcomes"].items()):
            if not key.endswith(" ok"):
                print(f"  {r['runtime']:<8} {key:<45} {n:>7}")
    for r in results:
        for text in [*r["violations"][:3], *r["samples"]]:
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
