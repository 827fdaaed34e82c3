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

An event decides first and serves after: the slots its removals freed are
served once, at its end (``_end_event``), each to its origin's waiters or else
to the head of the queue. Serving opens connections and removes none, so
nothing cascades.

The structures (insertion-ordered dicts used as O(1) sets and queues):

- ``PoolEntry`` (the records are in ``pool_records.py``): one connection, its
  origin, how many requests it carries (``in_use``) and could (``capacity``).
- ``_idle``: every established connection carrying nothing, oldest first,
  for keep-alive expiry and for closing one to make room for another origin.
- per origin (``OriginState``): its idle single-request connections (most
  recently used reused first), its multiplexing connections with a free slot
  (``with_free_slots``), its waiters in arrival order, its connection count,
  and how many of its connections are still connecting and may turn out to
  multiplex (``connecting_may_multiplex``). A request retrying a stream the
  server refused passes over the connection that refused it (``Waiter.avoid``)
  when another has a free slot: two looked at, at most.
- ``_queue``: waiters blocked only by ``max_connections``, in arrival order.
  A waiter held back by its own origin (at ``max_connections_per_origin``, or
  waiting for a connection that may multiplex) is ``blocked_by_origin``
  instead: only in its origin's waiters, it is served by that origin's events.

Invariants (``check_invariants`` raises ``PoolInvariantError`` when one is
broken; tests run it after events):

- an entry is in ``_idle`` iff it is established and ``in_use == 0``; an
  entry with ``in_use > 0`` is reachable by no other request unless it
  multiplexes and ``in_use < capacity``: a connection promised to a request
  cannot be handed out twice, expired or evicted;
- ``_queue`` is non-empty only when the pool is at ``max_connections`` and
  no connection is idle;
- connections per origin and in total never exceed their limits.

A failed connection is never multiplied: when a connection that may
multiplex fails while it is being established, the waiters its origin blocks
(waiting for it) each count one failure; those that have seen
``MAX_SHARED_FAILURES`` fail with its error, the others share one new
connection. Without that, each such waiter in turn opened a connection of
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

from collections import OrderedDict
from collections.abc import Callable, Sequence

from .._exceptions import PoolInvariantError
from .._logging import QUIET, QUIET_CACHE, pool_log
from .._stats import PoolStats
from .._synchronization import AsyncEvent
from .._urls import Origin
from .interfaces import AsyncConnectionInterface
from .pool_records import CLOSED, CONNECTING, READY, OriginState, PoolEntry, Waiter

# How many connections a waiter blocked by its origin may see fail while it
# waits for them before it fails too, with the last one's error (see "A
# failed connection").
MAX_SHARED_FAILURES = 2

_MAKE_ROOM = "the pool is full and a request for another origin needs room"
_NO_IDLE = "keepalive_expiry=0 keeps no connection idle"
_GAVE_UP = "its request gave up before it was opened"
_BLOCKED = "queued: a request for %s (waits for that origin's connections)"

# What an event retired, to close outside the lock (most retire nothing: no list).
ToClose = Sequence[AsyncConnectionInterface]
_NOTHING: ToClose = ()


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
        # What the current event closed, and the origins whose slots it freed.
        self._to_close: list[AsyncConnectionInterface] = []
        self._freed_slots: list[OriginState] = []
        # Counters behind stats().
        self._connecting = self._active = self._in_use = self._waiting = 0
        self._requests = self._opened = self._closed = 0

    # ----- events -------------------------------------------------------------

    def arrive(self, waiter: Waiter, now: float) -> ToClose:
        """A request arrives. Afterwards ``waiter.entry`` is set, or it is queued
        with ``waiter.event`` to wait on."""
        self._arrivals += 1
        waiter.arrival = self._arrivals
        self._expire(now)
        origin_state = self._origins.get(waiter.origin)
        if origin_state is None:
            origin_state = self._origins[waiter.origin] = OriginState(waiter.origin)
        if waiter.wants_new_connection and self._can_open(origin_state):
            self._open(origin_state, waiter)
        elif origin_state.with_free_slots:
            self._assign(waiter, self._with_free_slot(origin_state, waiter.avoid))
        elif origin_state.idle and self._take_idle(origin_state, waiter):
            pass
        elif origin_state.connecting_may_multiplex:
            self._block_on_origin(waiter)
        else:
            self._open_or_wait(origin_state, waiter)
        if waiter.entry is None:
            # Only a request that waits joins its origin's waiters.
            origin_state.waiters[waiter] = None
            self._waiting += 1
            waiter.event = AsyncEvent()
        return self._end_event()

    def connected(self, entry: PoolEntry, now: float) -> ToClose:
        """``entry`` finished connecting: its protocol and capacity are known."""
        origin_state = entry.origin_state
        if entry.state is not CONNECTING:
            return self._end_event()
        entry.state = READY
        self._connecting -= 1
        if QUIET not in QUIET_CACHE:
            pool_log("connected: %r", entry.connection)
        if entry.may_multiplex:
            entry.may_multiplex = False
            origin_state.connecting_may_multiplex -= 1
        capacity = entry.connection.capacity()
        if capacity > 1:
            entry.multiplexed = True
            entry.capacity = capacity
            self._offer_slots(entry, now)
        else:
            origin_state.speaks_http11 = True
            if origin_state.blocked_by_origin and not origin_state.connecting_may_multiplex:
                # The waiters blocked for its first connection get connections
                # of their own, or join the queue.
                for waiter in list(origin_state.waiters):
                    if waiter.blocked_by_origin:
                        self._open_or_wait(origin_state, waiter)
        return self._end_event()

    def release(self, entry: PoolEntry, now: float) -> ToClose:
        """A request on ``entry`` is over (response closed, or it failed)."""
        self._drop_request(entry)
        if entry.state is CLOSED:
            return self._end_event()
        self._expire(now)
        conn = entry.connection
        if entry.state is CONNECTING or conn.is_closed():
            self._remove(entry, "closed after its exchange (or not opened)")
        elif entry.multiplexed:
            entry.capacity = conn.capacity()
            if entry.capacity == 0 and entry.in_use == 0:
                self._remove(entry, "no stream may be opened on it any more")
            else:
                self._offer_slots(entry, now)
        elif conn.capacity() == 0:
            self._remove(entry, "it cannot carry another request")
        else:
            self._hand_off(entry, now)
        return self._end_event()

    def cancel(self, waiter: Waiter, now: float) -> ToClose:
        """A waiter gave up (cancelled or timed out). If it was given a
        connection at that very instant, the reservation is returned."""
        entry = waiter.entry
        if entry is None:
            origin_state = self._origins.get(waiter.origin)
            if origin_state is None:
                return self._end_event()
            if waiter in origin_state.waiters:  # (not if ``arrive`` failed before it waited)
                self._unqueue(origin_state, waiter)
            self._forget(origin_state)
            return self._end_event()
        waiter.entry = None
        if waiter.connect:  # (unless the pool closed it meanwhile)
            return self.failed(entry)
        return self.release(entry, now)

    def failed(self, entry: PoolEntry, error: BaseException | None = None) -> ToClose:
        """Connecting ``entry`` failed with ``error`` (None: its request gave up,
        while connecting or before): its slot goes to the next waiter. The waiters
        its origin blocks count the failure, and fail with ``error`` once they
        have seen ``MAX_SHARED_FAILURES``."""
        self._drop_request(entry)
        if entry.state is not CLOSED:
            if error is not None and entry.may_multiplex and entry.origin_state.blocked_by_origin:
                self._share_failure(entry.origin_state, error)
            self._remove(entry, _GAVE_UP if error is None else "connecting failed")
        return self._end_event()

    def close_all(self) -> ToClose:
        """Forget every connection (the pool is closing); return them to close."""
        for entry in list(self.entries):
            self._remove(entry, "the pool is closing")
        return self._end_event()

    # ----- queries ------------------------------------------------------------

    def has_other_free_slot(self, origin: Origin, entry: PoolEntry) -> bool:
        """Whether ``origin`` has a connection with a free slot other than ``entry``."""
        origin_state = self._origins.get(origin)
        if origin_state is None or not origin_state.with_free_slots:
            return False
        return self._with_free_slot(origin_state, entry) is not entry

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
        """Raise ``PoolInvariantError`` naming the first invariant the bookkeeping
        breaks. O(N + M): for tests and debugging, not for the hot path; plain
        checks, not ``assert``, so that it works under ``python -O`` too."""
        idle = in_use = active = connecting = waiting = 0
        counts: dict[Origin, int] = {}
        for entry in self.entries:
            origin_state = entry.origin_state
            _check(self._origins.get(origin_state.origin) is origin_state, entry, "stale origin")
            _check(entry.state is not CLOSED and entry.in_use >= 0, entry, "state")
            # A multiplexing connection's capacity may fall below its streams
            # (GOAWAY, new SETTINGS): they finish, and it takes no more.
            _check(entry.multiplexed or entry.in_use <= 1, entry, "held by two requests")
            counts[origin_state.origin] = counts.get(origin_state.origin, 0) + 1
            in_use += entry.in_use
            active += entry.in_use > 0
            connecting += entry.state is CONNECTING
            is_idle = entry.state is READY and entry.in_use == 0
            _check((entry in self._idle) == is_idle, entry, "idle bookkeeping")
            idle += is_idle
            if not entry.multiplexed:
                _check((entry in origin_state.idle) == is_idle, entry, "its origin's idle")
            else:
                free = entry.in_use < entry.capacity
                _check((entry in origin_state.with_free_slots) == free, entry, "free slots")
        _check(len(self._idle) == idle, self._idle, "idle count")
        counters = (self._in_use, self._active, self._connecting)
        _check(counters == (in_use, active, connecting), counters, "in_use/active/connecting")
        full = len(self.entries) >= self._max_connections
        _check(len(self.entries) <= self._max_connections, self, "over max_connections")
        limit = self._max_per_origin
        for origin, origin_state in self._origins.items():
            count = origin_state.connection_count
            _check(count == counts.get(origin, 0), origin, "connection count")
            _check(limit is None or count <= limit, origin, "over max_connections_per_origin")
            blocked = 0
            for waiter in origin_state.waiters:
                _check(waiter.entry is None and waiter.origin == origin, waiter, "misfiled")
                _check(waiter.blocked_by_origin != (waiter in self._queue), waiter, "misqueued")
                blocked += waiter.blocked_by_origin
            _check(blocked == origin_state.blocked_by_origin, origin, "blocked_by_origin count")
            waiting += len(origin_state.waiters)
            if origin_state.waiters:
                free_connection = origin_state.with_free_slots or origin_state.idle
                _check(not free_connection, origin, "a request waits beside a free connection")
                _check(origin_state.blocked_by_origin or full, origin, "waits below the limit")
        _check(waiting == self._waiting, self._waiting, "queued count")
        if self._queue:
            _check(not self._idle, self._idle, "a request waits while a connection is idle")
            _check(full, len(self.entries), "a request waits below max_connections")
        keepalive = self._max_keepalive
        _check(keepalive is None or len(self._idle) <= keepalive, keepalive, "max_keepalive")

    # ----- the rules ------------------------------------------------------------

    def _can_open(self, origin_state: OriginState) -> bool:
        return len(self.entries) < self._max_connections and (
            self._max_per_origin is None or origin_state.connection_count < self._max_per_origin
        )

    def _may_open_for_blocked(self, origin_state: OriginState) -> bool:
        """Whether the waiters the origin blocks may have a new connection now."""
        return (
            origin_state.blocked_by_origin > 0
            and not origin_state.connecting_may_multiplex
            and self._can_open(origin_state)
        )

    @staticmethod
    def _with_free_slot(origin_state: OriginState, avoid: PoolEntry | None) -> PoolEntry:
        """A connection of the origin with a free slot (``with_free_slots`` is
        not empty), other than ``avoid`` when there is another. Looks at two at most."""
        candidates = iter(origin_state.with_free_slots)
        entry = next(candidates)
        if entry is avoid:
            entry = next(candidates, entry)
        return entry

    def _take_idle(self, origin_state: OriginState, waiter: Waiter) -> bool:
        """Give the most recently used idle connection that passes the
        liveness probe; dead ones found on the way are closed."""
        while origin_state.idle:
            entry = next(reversed(origin_state.idle))
            if entry.connection.is_alive():
                self._assign(waiter, entry)
                waiter.probed = True
                return True
            self._remove(entry, "the liveness probe found it closed by the server")
        return False

    def _hand_off(self, entry: PoolEntry, now: float) -> None:
        """A single-request connection is idle again: give it to a waiter, or
        close it to make room for the starving head, or keep it idle."""
        origin_state = entry.origin_state
        queue_head = next(iter(self._queue)) if self._queue else None
        waiters = origin_state.waiters
        if waiters and (
            queue_head is None
            or queue_head.origin == origin_state.origin
            or self._bypass(queue_head)
        ):
            self._assign(next(iter(waiters)), entry)  # the origin's oldest waiter
            return
        if queue_head is not None or self._keepalive_expiry == 0:
            # keepalive_expiry=0: no connection is ever kept idle (httpcore's rule).
            self._remove(entry, _NO_IDLE if queue_head is None else _MAKE_ROOM)
            return
        if QUIET not in QUIET_CACHE:
            pool_log("idle: %r", entry.connection)
        entry.idle_since = now
        origin_state.idle[entry] = None
        self._add_idle(entry)

    def _offer_slots(self, entry: PoolEntry, now: float) -> None:
        """A multiplexing connection has free slots: fill them from its
        origin's waiters, then advertise the rest."""
        origin_state = entry.origin_state
        waiters = origin_state.waiters
        while entry.in_use < entry.capacity and waiters:
            self._assign(next(iter(waiters)), entry)
        if entry.in_use == 0 and (self._queue or self._keepalive_expiry == 0):
            # Idle while other origins wait for room: make room. (Or idle
            # with keepalive_expiry=0, which keeps no connection idle.)
            self._remove(entry, _MAKE_ROOM if self._queue else _NO_IDLE)
            return
        if entry.in_use >= entry.capacity:
            origin_state.with_free_slots.pop(entry, None)  # its capacity fell (GOAWAY, SETTINGS)
        else:
            origin_state.with_free_slots[entry] = None
            if entry.in_use == 0 and entry not in self._idle:
                entry.idle_since = now
                self._add_idle(entry)
        if self._may_open_for_blocked(origin_state):
            # Every slot is taken and the waiters are blocked by this origin:
            # one more connection, which they may share if it multiplexes
            # (unless one is already on its way).
            self._open(origin_state, next(iter(waiters)))

    def _add_idle(self, entry: PoolEntry) -> None:
        self._idle[entry] = None
        if self._max_keepalive is not None and len(self._idle) > self._max_keepalive:
            self._remove(next(iter(self._idle)), "evicted: max_keepalive_connections")

    def _serve_freed_slot(self, origin_state: OriginState) -> None:
        """A connection of the origin is gone: its slot goes to the waiters the
        origin blocks (unless they wait for a connection that may multiplex),
        else to the head of the queue."""
        if self._may_open_for_blocked(origin_state):
            oldest_for_origin = next(iter(origin_state.waiters))
            queue_head = next(iter(self._queue)) if self._queue else None
            if (
                queue_head is None
                or oldest_for_origin.arrival < queue_head.arrival
                or self._bypass(queue_head)
            ):
                self._open(origin_state, oldest_for_origin)
                return
        while self._queue and len(self.entries) < self._max_connections:
            queue_head = next(iter(self._queue))
            head_origin_state = self._origins[queue_head.origin]
            if head_origin_state.connecting_may_multiplex or not self._can_open(head_origin_state):
                self._block_on_origin(queue_head)
            else:
                self._open(head_origin_state, queue_head)
                return

    def _open_or_wait(self, origin_state: OriginState, waiter: Waiter) -> None:
        """Open a connection for ``waiter`` if the limits allow; else it waits,
        blocked by its origin or queued."""
        limit = self._max_per_origin
        if self._can_open(origin_state):
            self._open(origin_state, waiter)
        elif limit is not None and origin_state.connection_count >= limit:
            if not waiter.blocked_by_origin:
                self._block_on_origin(waiter)
        elif self._idle:
            # The pool is full, but some other origin's connection sits idle:
            # close it to make room.
            self._remove(next(iter(self._idle)), "evicted: " + _MAKE_ROOM)
            self._open(origin_state, waiter)
        else:
            if waiter.blocked_by_origin:
                waiter.blocked_by_origin = False
                origin_state.blocked_by_origin -= 1
            self._enqueue(waiter)

    def _share_failure(self, origin_state: OriginState, error: BaseException) -> None:
        """A connection the waiters blocked by this origin were waiting for failed."""
        for waiter in list(origin_state.waiters):
            if waiter.blocked_by_origin:
                waiter.shared_failures += 1
                if waiter.shared_failures >= MAX_SHARED_FAILURES:
                    self._unqueue(origin_state, waiter)
                    waiter.error = error
                    if waiter.event is not None:
                        waiter.event.set()

    def _bypass(self, queue_head: Waiter) -> bool:
        """Whether the head of the queue may be overtaken once more; if so, it
        is counted as overtaken."""
        if queue_head is not self._bypassed_head:
            self._bypassed_head = queue_head
            self._bypasses = 0
        if self._bypasses < self._max_bypass:
            self._bypasses += 1
            return True
        return False

    def _expire(self, now: float) -> None:
        if self._keepalive_expiry is None:
            return
        deadline = now - self._keepalive_expiry
        while self._idle:
            oldest = next(iter(self._idle))
            if oldest.idle_since > deadline:
                return
            self._remove(oldest, "expired: idle longer than keepalive_expiry")

    # ----- state changes ----------------------------------------------------------

    def _enqueue(self, waiter: Waiter) -> None:
        if QUIET not in QUIET_CACHE:
            pool_log("queued: a request for %s (the pool is full)", waiter.origin)
        self._queue[waiter] = None

    def _block_on_origin(self, waiter: Waiter) -> None:
        self._queue.pop(waiter, None)
        waiter.blocked_by_origin = True
        self._origins[waiter.origin].blocked_by_origin += 1
        if QUIET not in QUIET_CACHE:
            pool_log(_BLOCKED, waiter.origin)

    def _unqueue(self, origin_state: OriginState, waiter: Waiter) -> None:
        """``waiter`` waits no more: off its origin's waiters and the queue."""
        del origin_state.waiters[waiter]
        self._waiting -= 1
        if waiter.blocked_by_origin:
            waiter.blocked_by_origin = False
            origin_state.blocked_by_origin -= 1
        else:
            self._queue.pop(waiter, None)

    def _open(self, origin_state: OriginState, waiter: Waiter) -> None:
        entry = PoolEntry(self._create_connection(origin_state.origin), origin_state)
        if not origin_state.speaks_http11 and self._may_multiplex(origin_state.origin):
            entry.may_multiplex = True
            origin_state.connecting_may_multiplex += 1
        self.entries[entry] = None
        origin_state.connection_count += 1
        self._connecting += 1
        self._opened += 1
        self._assign(waiter, entry, connect=True)

    def _assign(self, waiter: Waiter, entry: PoolEntry, connect: bool = False) -> None:
        origin_state = entry.origin_state
        if waiter in origin_state.waiters:  # it waited: not served as it arrived
            self._unqueue(origin_state, waiter)
        if entry.in_use == 0:
            self._active += 1
            if entry in self._idle:
                del self._idle[entry]
                origin_state.idle.pop(entry, None)
        entry.in_use += 1
        self._in_use += 1
        if entry.multiplexed and entry.in_use >= entry.capacity:
            origin_state.with_free_slots.pop(entry, None)
        self._requests += 1
        waiter.entry = entry
        waiter.connect = connect
        if QUIET not in QUIET_CACHE:
            how = "opened" if connect else "shared" if entry.multiplexed else "reused"
            pool_log("assigned (%s): %r to a request for %s", how, entry.connection, waiter.origin)
        if waiter.event is not None:
            waiter.event.set()

    def _drop_request(self, entry: PoolEntry) -> None:
        """One request on ``entry`` is over: the counters say so."""
        entry.in_use -= 1
        if entry.state is CLOSED:
            return  # _remove took its requests off the counters already
        self._in_use -= 1
        if entry.in_use == 0:
            self._active -= 1

    def _remove(self, entry: PoolEntry, why: str) -> None:
        """Forget ``entry``, to be closed; the slot it frees is served at the end of the event."""
        origin_state = entry.origin_state
        if QUIET not in QUIET_CACHE:
            pool_log("closed: %r to %s: %s", entry.connection, origin_state.origin, why)
        if entry.state is CONNECTING:
            self._connecting -= 1
            if entry.may_multiplex:
                origin_state.connecting_may_multiplex -= 1
        if entry.in_use:
            # Requests still on a connection that is gone (a multiplexing one
            # closed by the server, or the pool closing) no longer count.
            self._in_use -= entry.in_use
            self._active -= 1
        entry.state = CLOSED
        del self.entries[entry]
        self._idle.pop(entry, None)
        origin_state.idle.pop(entry, None)
        origin_state.with_free_slots.pop(entry, None)
        origin_state.connection_count -= 1
        self._closed += 1
        self._to_close.append(entry.connection)
        self._freed_slots.append(origin_state)

    def _forget(self, origin_state: OriginState) -> None:
        # Drop an origin nobody uses, so a crawler's pool does not grow forever.
        if not origin_state.connection_count and not origin_state.waiters:
            self._origins.pop(origin_state.origin, None)

    def _end_event(self) -> ToClose:
        """Serve the slots the event freed, in the order it freed them (serving
        opens connections and removes none), and hand over what to close."""
        if self._freed_slots:
            freed_slots, self._freed_slots = self._freed_slots, []
            for origin_state in freed_slots:
                self._serve_freed_slot(origin_state)
                self._forget(origin_state)
        to_close = self._to_close
        if not to_close:
            return _NOTHING
        self._to_close = []
        return to_close


def _check(holds: object, subject: object, what: str) -> None:
    if not holds:
        raise PoolInvariantError(f"pool invariant broken: {what} ({subject!r})")
