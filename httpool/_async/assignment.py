"""The pool's bookkeeping: which request gets which connection, in O(1) per event.

Theory of operation
-------------------
``AsyncPoolState`` holds every fact the pool needs and changes them only in
response to events: a request *arrives*; a request is *released* (its
response closed); a connection is *connected* (protocol and capacity known);
a connection *fails* or closes; a waiting request is *cancelled*; the
keep-alive clock passes (checked lazily on every event). Each event touches a
constant number of entries, plus the ones it closes or serves, whatever the
number of connections, queued requests or origins. No method here awaits or
does I/O except ``is_alive`` on the one connection about to be reused;
connections to close are returned to the caller, who closes them outside the
lock.

The structures (insertion-ordered dicts used as O(1) sets and queues):

- ``PoolEntry`` is the pool's record of one connection: its origin, how many
  requests it carries (``in_use``) and how many it could (``capacity``).
- ``_idle``: every established connection carrying nothing, oldest first,
  for keep-alive expiry and for closing one to make room for another origin.
- per origin (``OriginState``): its idle single-request connections (most
  recently used reused first), its multiplexing connections with a free slot
  (``spare``), its waiters in arrival order, its connection count, and how
  many of its connections are still connecting and may turn out to multiplex.
  A request retrying a stream the server refused passes over the connection
  that refused it (``Waiter.avoid``) when another is spare: two looked at, at most.
- ``_queue``: waiters blocked only by ``max_connections``, in arrival order.
  A waiter blocked by its own origin (at ``max_connections_per_origin``, or
  waiting for a connection that may multiplex) is *parked*: it stays in its
  origin's queue only and is served by that origin's events.

Invariants (checked by ``check_invariants``, which tests run after events):

- an entry is in ``_idle`` iff it is established and ``in_use == 0``; an
  entry with ``in_use > 0`` is reachable by no other request unless it
  multiplexes and ``in_use < capacity``: a connection promised to a request
  cannot be handed out twice, expired or evicted;
- ``_queue`` is non-empty only when the pool is at ``max_connections`` and
  no connection is idle;
- connections per origin and in total never exceed their limits.

A failed connection is never multiplied: when a connection that may
multiplex fails while it is being established, the waiters parked on its
origin (waiting for it) each count one failure; those that have seen
``MAX_SHARED_FAILURES`` fail with its error, the others share one fresh
connection. Without that, each parked waiter in turn opened a connection of
its own and waited for it to fail: N waiters took N handshake failures one
after another. Each waiter is counted at most ``MAX_SHARED_FAILURES`` times
before it is served (failed), so the cost stays constant per waiter.

Fairness: waiters are served in arrival order, except that a connection
freed by origin A goes to A's oldest waiter even when an older waiter wants
B. The head of ``_queue`` may be overtaken at most ``max_bypass`` times
(default ``max_connections``) while it is the head; then A's connection is
closed and one is opened for the head instead. So a waiter with k waiters
ahead of it is overtaken at most ``max_bypass * (k + 1)`` times in all, a
bound fixed when it arrives. Counting every waiter's overtakes instead (and
bounding each by ``max_bypass``) degrades to strict arrival order once the
queue is deep: measured with 5,000 requests queued on 10 connections over 20
origins, it opened 3,136 connections where head-only counting opened 352
(strict order: 4,753; unbounded bypass: 38), with no worse tail latency.
"""

from __future__ import annotations

import enum
import typing
from collections import OrderedDict
from collections.abc import Callable

from .._logging import QUIET, QUIET_CACHE, pool_log
from .._stats import PoolStats
from .._synchronization import AsyncEvent
from .._urls import Origin
from .interfaces import AsyncConnectionInterface

# How many connections a parked waiter may see fail while it waits for them
# before it fails too, with the last one's error (see "A failed connection").
MAX_SHARED_FAILURES = 2

_MAKE_ROOM = "the pool is full and a request for another origin needs room"
_NO_IDLE = "keepalive_expiry=0 keeps no connection idle"


class EntryState(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    CLOSED = "closed"


class PoolEntry:
    """The pool's record of one connection."""

    __slots__ = (
        "capacity",
        "connection",
        "idle_since",
        "in_use",
        "may_multiplex",
        "multiplexed",
        "origin",
        "state",
    )

    def __init__(self, connection: AsyncConnectionInterface, origin: OriginState) -> None:
        self.connection = connection
        self.origin = origin
        self.state = EntryState.CONNECTING
        self.in_use = 0
        self.capacity = 1
        self.may_multiplex = False
        self.multiplexed = False
        self.idle_since = 0.0

    def __repr__(self) -> str:
        return f"<PoolEntry {self.origin.origin} {self.state.name} {self.in_use}/{self.capacity}>"


class Waiter:
    """One request waiting for, or just given, a connection."""

    __slots__ = (
        "avoid",
        "connect",
        "entry",
        "error",
        "event",
        "failures",
        "fresh",
        "origin",
        "parked",
        "probed",
        "seq",
    )

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.entry: PoolEntry | None = None
        # A retry after a refused stream: another connection with a free
        # slot is taken before this one, when the origin has one.
        self.avoid: PoolEntry | None = None
        # True when the waiter must establish ``entry`` itself.
        self.connect = False
        self.event: AsyncEvent | None = None
        # A retry: it gets a new connection when the limits allow one.
        self.fresh = False
        self.parked = False
        # Given an idle connection that the liveness probe has just passed.
        self.probed = False
        self.seq = 0
        # Connections it was parked behind that failed, and the error it ends
        # with when there were too many (then ``entry`` stays None).
        self.failures = 0
        self.error: BaseException | None = None


class OriginState:
    __slots__ = ("count", "http11", "idle", "origin", "parked", "pending", "spare", "waiters")

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.waiters: OrderedDict[Waiter, None] = OrderedDict()
        self.idle: OrderedDict[PoolEntry, None] = OrderedDict()
        self.spare: OrderedDict[PoolEntry, None] = OrderedDict()
        self.count = 0
        # Connections still connecting that may turn out to multiplex.
        self.pending = 0
        self.parked = 0
        # Seen to answer with HTTP/1.1: no need to wait for its next connection.
        self.http11 = False


def _first(d: OrderedDict[typing.Any, None]) -> typing.Any:
    return next(iter(d)) if d else None


class AsyncPoolState:
    """Every fact about the pool's connections and waiters; see the module docstring."""

    def __init__(
        self,
        *,
        create_connection: Callable[[Origin], AsyncConnectionInterface],
        may_multiplex: Callable[[Origin], bool],
        max_connections: int,
        max_keepalive_connections: int | None,
        keepalive_expiry: float | None,
        max_connections_per_origin: int | None,
        max_bypass: int | None = None,
    ) -> None:
        self._create_connection = create_connection
        self._may_multiplex = may_multiplex
        self._max_connections = max_connections
        self._max_keepalive = max_keepalive_connections
        self._keepalive_expiry = keepalive_expiry
        self._max_per_origin = max_connections_per_origin
        self._max_bypass = max_connections if max_bypass is None else max_bypass
        self._origins: dict[Origin, OriginState] = {}
        self.entries: dict[PoolEntry, None] = {}
        self._idle: OrderedDict[PoolEntry, None] = OrderedDict()
        self._queue: OrderedDict[Waiter, None] = OrderedDict()
        # How often the current head of _queue has been overtaken.
        self._bypassed_head: Waiter | None = None
        self._bypasses = 0
        self._arrivals = 0
        self._to_close: list[AsyncConnectionInterface] = []
        # Counters behind stats().
        self._connecting = 0
        self._active = 0
        self._in_use = 0
        self._waiting = 0
        self._requests = 0
        self._opened = 0
        self._closed = 0

    # ----- events -------------------------------------------------------------

    def arrive(self, waiter: Waiter, now: float) -> list[AsyncConnectionInterface]:
        """A request arrives. Afterwards ``waiter.entry`` is set, or it is queued
        with ``waiter.event`` to wait on."""
        self._arrivals += 1
        waiter.seq = self._arrivals
        self._expire(now)
        o = self._origins.get(waiter.origin)
        if o is None:
            o = self._origins[waiter.origin] = OriginState(waiter.origin)
        self._waiting += 1
        o.waiters[waiter] = None
        if waiter.fresh and self._can_open(o):
            self._open(o, waiter)
        elif o.spare:
            self._assign(waiter, self._spare(o, waiter.avoid))
        elif o.idle and self._take_idle(o, waiter):
            pass
        elif o.pending:
            self._park(waiter)
        else:
            self._open_or_wait(o, waiter)
        if waiter.entry is None:
            waiter.event = AsyncEvent()
        return self._flush()

    def connected(self, entry: PoolEntry, now: float) -> list[AsyncConnectionInterface]:
        """``entry`` finished connecting: its protocol and capacity are known."""
        o = entry.origin
        if entry.state is not EntryState.CONNECTING:
            return self._flush()
        entry.state = EntryState.READY
        self._connecting -= 1
        if QUIET not in QUIET_CACHE:
            pool_log("connected: %r", entry.connection)
        if entry.may_multiplex:
            entry.may_multiplex = False
            o.pending -= 1
        capacity = entry.connection.capacity()
        if capacity > 1:
            entry.multiplexed = True
            entry.capacity = capacity
            self._offer_slots(entry, now)
        else:
            o.http11 = True
            if o.parked and not o.pending:
                self._unpark(o)
        return self._flush()

    def release(self, entry: PoolEntry, now: float) -> list[AsyncConnectionInterface]:
        """A request on ``entry`` is over (response closed, or it failed)."""
        self._dec(entry)
        if entry.state is EntryState.CLOSED:
            return self._flush()
        self._expire(now)
        conn = entry.connection
        if entry.state is EntryState.CONNECTING or conn.is_closed():
            self._remove(entry, close=True, why="closed after its exchange (or not opened)")
        elif entry.multiplexed:
            entry.capacity = conn.capacity()
            if entry.capacity == 0 and entry.in_use == 0:
                self._remove(entry, close=True, why="no stream may be opened on it any more")
            else:
                self._offer_slots(entry, now)
        elif conn.capacity() == 0:
            self._remove(entry, close=True, why="it cannot carry another request")
        else:
            self._hand_off(entry, now)
        return self._flush()

    def cancel(self, waiter: Waiter, now: float) -> list[AsyncConnectionInterface]:
        """A waiter gave up (cancelled or timed out). If it was given a
        connection at that very instant, the reservation is returned."""
        entry = waiter.entry
        if entry is None:
            o = self._origins.get(waiter.origin)
            if o is None or waiter not in o.waiters:
                return self._flush()
            del o.waiters[waiter]
            self._waiting -= 1
            if waiter.parked:
                waiter.parked = False
                o.parked -= 1
            else:
                # Not in the queue if ``arrive`` itself failed halfway (the
                # liveness probe raised) and this is its caller cleaning up.
                self._queue.pop(waiter, None)
            self._forget(o)
            return self._flush()
        waiter.entry = None
        if waiter.connect:
            self._dec(entry)
            self._remove(entry, close=True, why="its request gave up before it was opened")
            return self._flush()
        return self.release(entry, now)

    def failed(
        self, entry: PoolEntry, error: BaseException | None = None
    ) -> list[AsyncConnectionInterface]:
        """Connecting ``entry`` failed with ``error`` (None: its connecting
        request was cancelled): its slot goes to the next waiter. The waiters
        parked behind it count the failure, and fail with ``error`` once they
        have seen ``MAX_SHARED_FAILURES``."""
        self._dec(entry)
        if entry.state is not EntryState.CLOSED:
            if error is not None and entry.may_multiplex and entry.origin.parked:
                self._share_failure(entry.origin, error)
            self._remove(entry, close=True, why="connecting failed")
        return self._flush()

    def close_all(self) -> list[AsyncConnectionInterface]:
        """Forget every connection (the pool is closing); return them to close."""
        for entry in list(self.entries):
            self._remove(entry, close=True, why="the pool is closing")
        return self._flush()

    # ----- queries ------------------------------------------------------------

    def has_other_spare(self, origin: Origin, entry: PoolEntry) -> bool:
        """Whether ``origin`` has a connection with a free slot other than ``entry``."""
        o = self._origins.get(origin)
        if o is None or not o.spare:
            return False
        return self._spare(o, entry) is not entry

    def stats(self) -> PoolStats:
        return PoolStats(
            connections=len(self.entries),
            connecting=self._connecting,
            idle=len(self._idle),
            active=self._active,
            streams_in_use=self._in_use,
            queued=self._waiting,
            requests=self._requests,
            opened=self._opened,
            closed=self._closed,
        )

    def check_invariants(self) -> None:
        """Raise AssertionError if the bookkeeping contradicts itself. O(N + M):
        for tests and debug mode, not for the hot path."""
        idle = in_use = active = connecting = waiting = 0
        counts: dict[Origin, int] = {}
        for entry in self.entries:
            o = entry.origin
            assert self._origins.get(o.origin) is o, f"{entry} has a stale origin"
            assert entry.state is not EntryState.CLOSED, entry
            assert entry.in_use >= 0, entry
            # A multiplexing connection's capacity may fall below its streams
            # (GOAWAY, new SETTINGS): they finish, and it takes no more.
            assert entry.multiplexed or entry.in_use <= 1, f"{entry}"
            counts[o.origin] = counts.get(o.origin, 0) + 1
            in_use += entry.in_use
            active += entry.in_use > 0
            connecting += entry.state is EntryState.CONNECTING
            is_idle = entry.state is EntryState.READY and entry.in_use == 0
            assert (entry in self._idle) == is_idle, f"{entry} idle bookkeeping"
            idle += is_idle
            if not entry.multiplexed:
                assert (entry in o.idle) == is_idle, entry
            else:
                assert (entry in o.spare) == (entry.in_use < entry.capacity), entry
        assert len(self._idle) == idle
        assert (self._in_use, self._active, self._connecting) == (in_use, active, connecting)
        assert len(self.entries) <= self._max_connections, "over max_connections"
        for origin, o in self._origins.items():
            assert o.count == counts.get(origin, 0), f"count of {origin}"
            if self._max_per_origin is not None:
                assert o.count <= self._max_per_origin, f"{origin} over its limit"
            parked = 0
            for waiter in o.waiters:
                assert waiter.entry is None and waiter.origin == origin
                assert waiter.parked != (waiter in self._queue), waiter
                parked += waiter.parked
            assert parked == o.parked
            waiting += len(o.waiters)
            if o.waiters:
                assert not o.spare and not o.idle, f"{origin} waits beside a free connection"
                assert o.parked or len(self.entries) >= self._max_connections
        assert waiting == self._waiting
        if self._queue:
            assert not self._idle, "a request waits while a connection is idle"
            assert len(self.entries) >= self._max_connections, "a request waits below the limit"
        if self._max_keepalive is not None:
            assert len(self._idle) <= self._max_keepalive

    # ----- the rules ------------------------------------------------------------

    def _can_open(self, o: OriginState) -> bool:
        return len(self.entries) < self._max_connections and (
            self._max_per_origin is None or o.count < self._max_per_origin
        )

    @staticmethod
    def _spare(o: OriginState, avoid: PoolEntry | None) -> PoolEntry:
        """A connection of ``o`` with a free slot (``o.spare`` is not empty),
        other than ``avoid`` when there is another. Looks at two at most."""
        spare = iter(o.spare)
        entry: PoolEntry = next(spare)
        if entry is avoid:
            entry = next(spare, entry)
        return entry

    def _take_idle(self, o: OriginState, waiter: Waiter) -> bool:
        """Give the most recently used idle connection that passes the
        liveness probe; dead ones found on the way are closed."""
        while o.idle:
            entry = next(reversed(o.idle))
            if entry.connection.is_alive():
                self._assign(waiter, entry)
                waiter.probed = True
                return True
            self._remove(entry, close=True, why="the liveness probe found it closed by the server")
        return False

    def _hand_off(self, entry: PoolEntry, now: float) -> None:
        """A single-request connection is idle again: give it to a waiter, or
        close it to make room for the starving head, or keep it idle."""
        o = entry.origin
        head: Waiter | None = _first(self._queue)
        if o.waiters:
            mine: Waiter = _first(o.waiters)
            if head is None or head.origin == o.origin:
                self._assign(mine, entry)
                return
            if self._may_bypass(head):
                self._bypasses += 1
                self._assign(mine, entry)
                return
        if head is not None or self._keepalive_expiry == 0:
            # keepalive_expiry=0: no connection is ever kept idle (httpcore's rule).
            self._remove(entry, close=True, why=_NO_IDLE if head is None else _MAKE_ROOM)
            return
        if QUIET not in QUIET_CACHE:
            pool_log("idle: %r", entry.connection)
        entry.idle_since = now
        o.idle[entry] = None
        self._add_idle(entry)

    def _offer_slots(self, entry: PoolEntry, now: float) -> None:
        """A multiplexing connection has free slots: fill them from its
        origin's waiters, then advertise the rest."""
        o = entry.origin
        while entry.in_use < entry.capacity and o.waiters:
            self._assign(_first(o.waiters), entry)
        if entry.in_use == 0 and (self._queue or self._keepalive_expiry == 0):
            # Idle while other origins wait for room: make room. (Or idle
            # with keepalive_expiry=0, which keeps no connection idle.)
            self._remove(entry, close=True, why=_MAKE_ROOM if self._queue else _NO_IDLE)
            return
        if entry.in_use >= entry.capacity:
            o.spare.pop(entry, None)  # its capacity fell (GOAWAY, new SETTINGS)
        else:
            o.spare[entry] = None
            if entry.in_use == 0 and entry not in self._idle:
                entry.idle_since = now
                self._add_idle(entry)
        if o.waiters and o.parked and not o.pending and self._can_open(o):
            # Every slot is taken and the waiters are parked on this origin:
            # one more connection, which they may share if it multiplexes
            # (unless one is already on its way).
            self._open(o, _first(o.waiters))

    def _add_idle(self, entry: PoolEntry) -> None:
        self._idle[entry] = None
        if self._max_keepalive is not None and len(self._idle) > self._max_keepalive:
            self._remove(_first(self._idle), close=True, why="evicted: max_keepalive_connections")

    def _serve_freed_slot(self, o: OriginState) -> None:
        """One connection of origin ``o`` is gone: its slot goes to ``o``'s
        parked waiters if there are any (unless they are waiting for a
        connection still being established that may multiplex), else to the
        head of the queue."""
        if o.parked and not o.pending and self._can_open(o):
            mine: Waiter = _first(o.waiters)
            head: Waiter | None = _first(self._queue)
            if head is None or mine.seq < head.seq:
                self._open(o, mine)
                return
            if self._may_bypass(head):
                self._bypasses += 1
                self._open(o, mine)
                return
        while self._queue and len(self.entries) < self._max_connections:
            waiter: Waiter = _first(self._queue)
            wo = self._origins[waiter.origin]
            if wo.pending or not self._can_open(wo):
                self._park(waiter)
            else:
                self._open(wo, waiter)
                return

    def _open_or_wait(self, o: OriginState, waiter: Waiter) -> None:
        """Open a connection for ``waiter`` if the limits allow, else park or queue it."""
        if self._can_open(o):
            self._open(o, waiter)
        elif self._max_per_origin is not None and o.count >= self._max_per_origin:
            if not waiter.parked:
                self._park(waiter)
        elif self._idle:
            # The pool is full, but some other origin's connection sits idle:
            # close it to make room.
            self._remove(_first(self._idle), close=True, why="evicted: " + _MAKE_ROOM)
            self._open(o, waiter)
        else:
            if waiter.parked:
                waiter.parked = False
                o.parked -= 1
            self._enqueue(waiter)

    def _unpark(self, o: OriginState) -> None:
        """``o`` turned out to speak HTTP/1.1: the waiters parked for its first
        connection get connections of their own, or join the queue."""
        for waiter in list(o.waiters):
            if waiter.parked:
                self._open_or_wait(o, waiter)

    def _share_failure(self, o: OriginState, error: BaseException) -> None:
        """A connection ``o``'s parked waiters were waiting for has failed."""
        for waiter in list(o.waiters):
            if not waiter.parked:
                continue
            waiter.failures += 1
            if waiter.failures < MAX_SHARED_FAILURES:
                continue
            del o.waiters[waiter]
            self._waiting -= 1
            waiter.parked = False
            o.parked -= 1
            waiter.error = error
            if waiter.event is not None:
                waiter.event.set()

    def _may_bypass(self, head: Waiter) -> bool:
        """Whether the head of the queue may be overtaken once more."""
        if head is not self._bypassed_head:
            self._bypassed_head = head
            self._bypasses = 0
        return self._bypasses < self._max_bypass

    def _expire(self, now: float) -> None:
        if self._keepalive_expiry is None:
            return
        deadline = now - self._keepalive_expiry
        while self._idle:
            oldest: PoolEntry = _first(self._idle)
            if oldest.idle_since > deadline:
                return
            self._remove(oldest, close=True, why="expired: idle longer than keepalive_expiry")

    # ----- state changes ----------------------------------------------------------

    def _enqueue(self, waiter: Waiter) -> None:
        if QUIET not in QUIET_CACHE:
            pool_log("queued: a request for %s (the pool is full)", waiter.origin)
        self._queue[waiter] = None

    def _park(self, waiter: Waiter) -> None:
        if waiter in self._queue:
            del self._queue[waiter]
        waiter.parked = True
        self._origins[waiter.origin].parked += 1
        if QUIET not in QUIET_CACHE:
            pool_log(
                "queued: a request for %s (waits for that origin's connections)", waiter.origin
            )

    def _open(self, o: OriginState, waiter: Waiter) -> None:
        entry = PoolEntry(self._create_connection(o.origin), o)
        if not o.http11 and self._may_multiplex(o.origin):
            entry.may_multiplex = True
            o.pending += 1
        self.entries[entry] = None
        o.count += 1
        self._connecting += 1
        self._opened += 1
        self._assign(waiter, entry, connect=True)

    def _assign(self, waiter: Waiter, entry: PoolEntry, connect: bool = False) -> None:
        o = entry.origin
        del o.waiters[waiter]
        self._waiting -= 1
        if waiter.parked:
            waiter.parked = False
            o.parked -= 1
        elif waiter in self._queue:
            del self._queue[waiter]
        if entry.in_use == 0:
            self._active += 1
            if entry in self._idle:
                del self._idle[entry]
                o.idle.pop(entry, None)
        entry.in_use += 1
        self._in_use += 1
        if entry.multiplexed and entry.in_use >= entry.capacity:
            o.spare.pop(entry, None)
        self._requests += 1
        waiter.entry = entry
        waiter.connect = connect
        if QUIET not in QUIET_CACHE:
            how = "opened" if connect else "shared" if entry.multiplexed else "reused"
            pool_log("assigned (%s): %r to a request for %s", how, entry.connection, o.origin)
        if waiter.event is not None:
            waiter.event.set()

    def _dec(self, entry: PoolEntry) -> None:
        entry.in_use -= 1
        if entry.state is EntryState.CLOSED:
            return  # _remove took its requests off the counters already
        self._in_use -= 1
        if entry.in_use == 0:
            self._active -= 1

    def _remove(self, entry: PoolEntry, close: bool, why: str) -> None:
        if QUIET not in QUIET_CACHE:
            pool_log("closed: %r to %s: %s", entry.connection, entry.origin.origin, why)
        o = entry.origin
        if entry.state is EntryState.CONNECTING:
            self._connecting -= 1
            if entry.may_multiplex:
                o.pending -= 1
        if entry.in_use:
            # Requests still on a connection that is gone (a multiplexing one
            # closed by the server, or the pool closing) no longer count.
            self._in_use -= entry.in_use
            self._active -= 1
        entry.state = EntryState.CLOSED
        del self.entries[entry]
        self._idle.pop(entry, None)
        o.idle.pop(entry, None)
        o.spare.pop(entry, None)
        o.count -= 1
        self._closed += 1
        if close:
            self._to_close.append(entry.connection)
        self._serve_freed_slot(o)
        self._forget(o)

    def _forget(self, o: OriginState) -> None:
        # Drop an origin nobody uses, so a crawler's pool does not grow forever.
        if not o.count and not o.waiters:
            self._origins.pop(o.origin, None)

    def _flush(self) -> list[AsyncConnectionInterface]:
        to_close, self._to_close = self._to_close, []
        return to_close
