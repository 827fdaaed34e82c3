"""The pool's assignment rules, driven event by event without any I/O.

``AsyncPoolState`` never awaits, so it is exercised here directly with fake
connections: the rules (reservation, arrival order with bounded bypass,
keep-alive expiry, eviction, per-origin limits, multiplexing) and, with
hypothesis, the invariants under random event sequences.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import httpool
from httpool._async.assignment import MAX_SHARED_FAILURES, AsyncPoolState
from httpool._async.pool_records import OriginState, PoolEntry, Waiter
from httpool._exceptions import PoolInvariantError
from httpool._urls import Origin

ROOT = str(Path(httpool.__file__).resolve().parents[1])  # the httpool under test
ORIGINS = [Origin(b"http", f"host{i}.test".encode(), 80) for i in range(4)]


class FakeConnection:
    """Stands in for a connection: the state only asks these questions."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.cap = 1
        self.closed = False
        self.alive = True
        self.retired = False  # handed back by the state to be closed

    def capacity(self) -> int:
        return 0 if self.closed else self.cap

    def is_closed(self) -> bool:
        return self.closed

    def is_alive(self) -> bool:
        return self.alive


class Harness:
    def __init__(self, multiplex: bool = False, **limits: object) -> None:
        self.made: list[FakeConnection] = []
        options: dict[str, object] = {
            "max_connections": 2,
            "max_keepalive_connections": None,
            "keepalive_expiry": None,
            "max_connections_per_origin": None,
        }
        options.update(limits)
        self.state = AsyncPoolState(
            create_connection=self._create,
            may_multiplex=lambda origin: multiplex,
            **options,  # type: ignore[arg-type]  # the limits, each of its own type
        )
        self.now = 0.0

    def _create(self, origin: Origin) -> typing.Any:
        # A FakeConnection, where the state expects an AsyncConnectionInterface.
        conn = FakeConnection(origin)
        self.made.append(conn)
        return conn

    def retire(self, closed: Sequence[object]) -> None:
        for conn in closed:
            assert isinstance(conn, FakeConnection)
            conn.retired = True
            conn.closed = True

    def arrive(self, origin: Origin = ORIGINS[0]) -> Waiter:
        waiter = Waiter(origin)
        self.retire(self.state.arrive(waiter, self.now))
        return waiter

    def connected(self, entry: PoolEntry, capacity: int = 1) -> None:
        entry.connection.cap = capacity  # type: ignore[attr-defined]
        self.retire(self.state.connected(entry, self.now))

    def release(self, entry: PoolEntry) -> None:
        self.retire(self.state.release(entry, self.now))

    def cancel(self, waiter: Waiter) -> None:
        self.retire(self.state.cancel(waiter, self.now))

    def run(self, origin: Origin = ORIGINS[0]) -> PoolEntry:
        """A request that gets a connection at once, connecting it if new."""
        waiter = self.arrive(origin)
        assert waiter.entry is not None
        if waiter.connect:
            self.connected(waiter.entry)
        return waiter.entry


def test_idle_connection_is_reused_most_recent_first() -> None:
    h = Harness(max_connections=3)
    a, b = h.run(), h.run()
    h.release(a)
    h.release(b)
    assert h.run() is b
    assert h.state.stats().opened == 2


def test_idle_connection_goes_to_exactly_one_waiter() -> None:
    h = Harness(max_connections=1)
    entry = h.run()
    w1, w2 = h.arrive(), h.arrive()
    assert w1.entry is w2.entry is None
    h.release(entry)
    assert w1.entry is entry and w2.entry is None
    assert w1.event is not None and w1.event.is_set()
    h.state.check_invariants()


def test_reserved_connection_survives_expiry_and_eviction() -> None:
    h = Harness(max_connections=1, keepalive_expiry=5.0)
    entry = h.run()
    waiter = h.arrive()
    h.release(entry)  # handed to the waiter, not idle
    h.now = 100.0
    other = h.arrive(ORIGINS[1])  # a pass that would expire or evict idle connections
    assert waiter.entry is entry and not entry.connection.retired  # type: ignore[attr-defined]
    assert other.entry is None
    h.state.check_invariants()


def test_keepalive_expiry_closes_only_expired_connections() -> None:
    h = Harness(max_connections=3, keepalive_expiry=5.0)
    old, young = h.run(ORIGINS[0]), h.run(ORIGINS[1])
    h.release(old)
    h.now = 3.0
    h.release(young)
    h.now = 6.0
    h.arrive(ORIGINS[2])
    assert old.connection.retired and not young.connection.retired  # type: ignore[attr-defined]


def test_dead_idle_connection_is_replaced_on_reuse() -> None:
    h = Harness(max_connections=2)
    entry = h.run()
    h.release(entry)
    entry.connection.alive = False  # type: ignore[attr-defined]
    waiter = h.arrive()
    assert waiter.entry is not entry and waiter.connect
    assert entry.connection.retired  # type: ignore[attr-defined]


def test_full_pool_closes_idle_connection_of_other_origin() -> None:
    h = Harness(max_connections=1)
    entry = h.run(ORIGINS[0])
    h.release(entry)
    waiter = h.arrive(ORIGINS[1])
    assert waiter.connect and entry.connection.retired  # type: ignore[attr-defined]


def test_max_keepalive_closes_oldest_idle() -> None:
    h = Harness(max_connections=3, max_keepalive_connections=1)
    a, b = h.run(), h.run()
    h.release(a)
    h.release(b)
    assert a.connection.retired and not b.connection.retired  # type: ignore[attr-defined]


def test_bypass_is_bounded() -> None:
    # Two connections busy on origin A; B waits first, then many A requests.
    h = Harness(max_connections=2, max_bypass=3)
    a1, a2 = h.run(ORIGINS[0]), h.run(ORIGINS[0])
    b = h.arrive(ORIGINS[1])
    a_waiters = [h.arrive(ORIGINS[0]) for _ in range(10)]
    served = 0
    entry = a1
    while b.entry is None:
        h.release(entry)
        nxt = next((w for w in a_waiters if w.entry is not None and w.entry is entry), None)
        if nxt is None:
            break
        served += 1
        a_waiters.remove(nxt)
    assert served == 3  # overtaken exactly max_bypass times, then served
    assert b.entry is not None and b.connect
    assert a1.connection.retired  # type: ignore[attr-defined]
    assert a2.in_use == 1
    h.state.check_invariants()


def test_per_origin_limit_blocks_waiters() -> None:
    h = Harness(max_connections=4, max_connections_per_origin=1)
    a = h.run(ORIGINS[0])
    blocked = h.arrive(ORIGINS[0])
    other = h.arrive(ORIGINS[1])
    assert blocked.entry is None and other.entry is not None
    h.state.check_invariants()
    h.release(a)
    assert blocked.entry is a


def test_multiplexed_connection_takes_waiters_up_to_capacity() -> None:
    h = Harness(multiplex=True, max_connections=3)
    first = h.arrive()
    others = [h.arrive() for _ in range(5)]
    assert first.connect and all(w.entry is None for w in others)
    assert h.state.stats().connections == 1  # the rest wait for the first connection
    assert first.entry is not None
    h.connected(first.entry, capacity=4)
    assert [w.entry is first.entry for w in others] == [True, True, True, False, False]
    # Every slot taken: one more connection for the rest, which they then share.
    assert others[3].connect and others[4].entry is None
    assert others[3].entry is not None
    h.connected(others[3].entry, capacity=4)
    assert others[4].entry is others[3].entry
    h.state.check_invariants()
    h.release(first.entry)
    assert h.state.stats().streams_in_use == 5
    assert h.run() in (first.entry, others[3].entry)  # free slots are used...
    assert h.state.stats().opened == 2  # ...before any new connection


def test_waiters_for_possible_multiplex_get_own_connections_when_http11() -> None:
    h = Harness(multiplex=True, max_connections=3)
    first = h.arrive()
    others = [h.arrive() for _ in range(3)]
    assert first.entry is not None
    h.connected(first.entry, capacity=1)
    assert [w.connect for w in others] == [True, True, False]
    h.state.check_invariants()


def test_cancel_at_assignment_returns_the_connection() -> None:
    h = Harness(max_connections=1)
    entry = h.run()
    w1, w2 = h.arrive(), h.arrive()
    h.release(entry)
    assert w1.entry is entry
    h.cancel(w1)  # cancelled at the instant it was handed the connection
    assert w2.entry is entry
    h.state.check_invariants()


def test_cancel_of_new_connection_frees_its_slot() -> None:
    h = Harness(max_connections=1)
    entry = h.run()
    w1, w2 = h.arrive(ORIGINS[1]), h.arrive(ORIGINS[1])
    h.release(entry)  # closes A's idle connection to open one for B
    assert w1.connect
    h.cancel(w1)
    assert w2.connect and h.state.stats().connections == 1
    h.state.check_invariants()


def test_failed_connect_passes_slot_on() -> None:
    h = Harness(max_connections=1)
    w1 = h.arrive()
    w2 = h.arrive()
    assert w1.entry is not None
    h.retire(h.state.failed(w1.entry))
    assert w2.connect
    h.state.check_invariants()


def test_a_failed_connection_is_shared_not_multiplied() -> None:
    # Issue 15: waiters blocked behind an origin's first connection (it may
    # multiplex) used to get, when it failed, one connection each in turn.
    h = Harness(multiplex=True, max_connections=4)
    owner = h.arrive()
    blocked = [h.arrive() for _ in range(5)]
    assert owner.connect and all(w.entry is None and w.blocked_by_origin for w in blocked)
    error = ConnectionError("handshake failed")
    for attempt in range(1, MAX_SHARED_FAILURES + 1):
        assert owner.entry is not None
        h.retire(h.state.failed(owner.entry, error))
        h.state.check_invariants()
        if attempt < MAX_SHARED_FAILURES:
            # One new connection, for the oldest; the others wait for it.
            owner = blocked.pop(0)
            assert owner.connect and all(w.entry is None and w.error is None for w in blocked)
    assert all(w.error is error and w.entry is None for w in blocked)
    assert all(w.event is not None and w.event.is_set() for w in blocked)
    stats = h.state.stats()
    assert (stats.connections, stats.queued) == (0, 0)
    assert len(h.made) == MAX_SHARED_FAILURES


def test_a_cancelled_connect_is_not_a_shared_failure() -> None:
    h = Harness(multiplex=True, max_connections=4)
    owner = h.arrive()
    waiter = h.arrive()
    for _ in range(MAX_SHARED_FAILURES + 1):
        assert owner.entry is not None
        h.retire(h.state.failed(owner.entry, None))
        assert waiter.error is None
        owner, waiter = waiter, h.arrive()
    h.state.check_invariants()


def test_cancel_after_the_pool_closed_its_new_connection() -> None:
    # A request given a new connection is cancelled after aclose() closed it.
    h = Harness(max_connections=1)
    waiter = h.arrive()
    assert waiter.connect
    h.retire(h.state.close_all())
    h.cancel(waiter)  # was: KeyError, removing the connection a second time
    assert h.state.stats().connections == 0
    h.state.check_invariants()


def test_unused_origins_are_forgotten() -> None:
    h = Harness(max_connections=1)
    for origin in ORIGINS:
        h.release(h.run(origin))
    assert len(h.state._origins) == 1


def _two_requests_on_one_connection(h: Harness) -> None:
    h.run().in_use += 1  # an HTTP/1.1 connection handed to a second request


def _waits_beside_idle(h: Harness) -> None:
    h.state._max_connections = 1
    h.release(h.run())
    waiter = Waiter(ORIGINS[1])
    h.state._origins[ORIGINS[1]] = OriginState(ORIGINS[1])
    h.state._origins[ORIGINS[1]].waiters[waiter] = None
    h.state._queue[waiter] = None
    h.state._waiting += 1


def _over_max_connections(h: Harness) -> None:
    h.run()
    h.state._max_connections = 0


def _counter_drifts(h: Harness) -> None:
    h.run()
    h.state._in_use += 1


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_two_requests_on_one_connection, "held by two requests"),
        (_waits_beside_idle, "a request waits while a connection is idle"),
        (_over_max_connections, "over max_connections"),
        (_counter_drifts, "in_use/active/connecting"),
    ],
)
def test_check_invariants_raises_when_one_is_broken(
    break_it: Callable[[Harness], None], message: str
) -> None:
    h = Harness(max_connections=2)
    h.state.check_invariants()
    break_it(h)
    with pytest.raises(PoolInvariantError, match=message):
        h.state.check_invariants()


def test_pool_check_invariants_raises_pool_invariant_error() -> None:
    pool = httpool.ConnectionPool()
    pool.check_invariants()
    pool._state._waiting = 1  # a queued request that is nowhere
    with pytest.raises(httpool.PoolInvariantError, match="queued count"):
        pool.check_invariants()
    assert issubclass(httpool.PoolInvariantError, (RuntimeError, httpool.HttpoolError))


def test_check_invariants_works_under_python_dash_o() -> None:
    # assert statements vanish under -O; check_invariants must not.
    code = (
        "import httpool\n"
        "assert False, 'asserts run: not -O'\n"
        "pool = httpool.ConnectionPool()\n"
        "pool._state._in_use = 1\n"
        "try:\n"
        "    pool.check_invariants()\n"
        "except httpool.PoolInvariantError as exc:\n"
        "    print('raised:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-O", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("raised: pool invariant broken: in_use/active/connecting")


class PoolMachine(RuleBasedStateMachine):
    """Random arrive / connect / finish / fail / cancel / expire sequences."""

    multiplex = False

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(
            multiplex=self.multiplex,
            max_connections=3,
            max_keepalive_connections=2,
            keepalive_expiry=10.0,
            max_connections_per_origin=2,
        )
        self.waiting: list[Waiter] = []
        self.connecting: list[Waiter] = []
        self.active: list[tuple[Waiter, PoolEntry]] = []
        self.holders: dict[int, int] = {}

    def _sort(self, waiter: Waiter) -> None:
        if waiter.entry is None:
            self.waiting.append(waiter)
        elif waiter.connect:
            self.connecting.append(waiter)
        else:
            self._activate(waiter)

    def _activate(self, waiter: Waiter) -> None:
        assert waiter.entry is not None
        conn = waiter.entry.connection
        assert not conn.retired, "a closed connection was handed out"  # type: ignore[attr-defined]
        self.active.append((waiter, waiter.entry))
        key = id(waiter.entry)
        self.holders[key] = self.holders.get(key, 0) + 1
        assert self.holders[key] <= waiter.entry.capacity, "connection held twice"

    def _resort(self) -> None:
        still = []
        for waiter in self.waiting:
            if waiter.error is not None:
                assert waiter.entry is None
                continue  # failed with the connection it waited for
            if waiter.entry is None:
                still.append(waiter)
            elif waiter.connect:
                self.connecting.append(waiter)
            else:
                self._activate(waiter)
        self.waiting = still

    @rule(origin=st.sampled_from(ORIGINS))
    def arrive(self, origin: Origin) -> None:
        self._sort(self.h.arrive(origin))
        self._resort()

    @precondition(lambda self: self.connecting)
    @rule(
        i=st.integers(0, 100),
        ok=st.booleans(),
        capacity=st.integers(1, 4),
        cancelled=st.booleans(),
    )
    def connect(self, i: int, ok: bool, capacity: int, cancelled: bool) -> None:
        waiter = self.connecting.pop(i % len(self.connecting))
        assert waiter.entry is not None
        if waiter.entry.connection.retired:  # type: ignore[attr-defined]
            # The pool closed it while it was connecting: connecting fails.
            self.h.retire(self.h.state.failed(waiter.entry, ConnectionError("closed")))
        elif ok:
            self.h.connected(waiter.entry, capacity if self.multiplex else 1)
            self._activate(waiter)
        else:
            error = None if cancelled else ConnectionError("failed")
            self.h.retire(self.h.state.failed(waiter.entry, error))
        self._resort()

    @precondition(lambda self: self.active)
    @rule(i=st.integers(0, 100), server_closes=st.booleans())
    def finish(self, i: int, server_closes: bool) -> None:
        _waiter, entry = self.active.pop(i % len(self.active))
        self.holders[id(entry)] -= 1
        if server_closes:
            entry.connection.closed = True  # type: ignore[attr-defined]
        self.h.release(entry)
        self._resort()

    @precondition(lambda self: self.waiting)
    @rule(i=st.integers(0, 100))
    def cancel_waiting(self, i: int) -> None:
        self.h.cancel(self.waiting.pop(i % len(self.waiting)))
        self._resort()

    @precondition(lambda self: self.connecting)
    @rule(i=st.integers(0, 100))
    def cancel_assigned(self, i: int) -> None:
        self.h.cancel(self.connecting.pop(i % len(self.connecting)))
        self._resort()

    @rule(seconds=st.floats(0, 20))
    def advance_clock(self, seconds: float) -> None:
        self.h.now += seconds

    @rule()
    def close_pool(self) -> None:
        # Many removals in one event; the waiters queued get new connections.
        self.h.retire(self.h.state.close_all())
        self._resort()

    @rule()
    def idle_peer_closes(self) -> None:
        for entry in self.h.state.entries:
            if entry.in_use == 0:
                entry.connection.alive = False  # type: ignore[attr-defined]
                return

    @invariant()
    def consistent(self) -> None:
        self.h.state.check_invariants()
        stats = self.h.state.stats()
        assert stats.connections <= 3
        assert stats.queued == len(self.waiting)
        # Requests on a connection that is already gone no longer count.
        live = [entry for _, entry in self.active if entry in self.h.state.entries]
        live += [w.entry for w in self.connecting if w.entry in self.h.state.entries]
        assert stats.streams_in_use == len(live)


class MultiplexPoolMachine(PoolMachine):
    """The same with connections that may turn out to carry 1 to 4 requests."""

    multiplex = True


PoolMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
MultiplexPoolMachine.TestCase.settings = PoolMachine.TestCase.settings
test_pool_machine = PoolMachine.TestCase
test_multiplex_pool_machine = MultiplexPoolMachine.TestCase


@pytest.mark.parametrize("capacity", [2, 5])
def test_multiplex_machine_smoke(capacity: int) -> None:
    h = Harness(multiplex=True, max_connections=2)
    waiters = [h.arrive(ORIGINS[i % 2]) for i in range(12)]
    for w in waiters:
        if w.entry is not None and w.connect:
            h.connected(w.entry, capacity=capacity)
        h.state.check_invariants()
    assert h.state.stats().connections <= 2
