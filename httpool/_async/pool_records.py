"""The records the pool keeps: one per connection, per waiting request, per origin.

Theory of operation: these are plain slotted records with no behaviour.
Apart from what a request asks for on its ``Waiter`` before it arrives
(``wants_new_connection``, ``avoid``) and the ``handler`` the pool sets on
an entry once its connection is open, ``AsyncPoolState`` (``assignment.py``)
is the only code that changes them, and keeps them consistent with one
another (its module docstring lists the invariants). A ``PoolEntry``
belongs to one ``OriginState`` for its whole life; a ``Waiter`` is in its
origin's ``waiters`` until it is given a connection (``entry``), fails
(``error``) or gives up. Nothing here knows the limits, the clock or the
network.
"""

from __future__ import annotations

import enum
import typing
from collections import OrderedDict

from .._synchronization import AsyncEvent
from .._urls import Origin
from .interfaces import AsyncConnectionInterface


class EntryState(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    CLOSED = "closed"


# Module globals: on CPython 3.11 reading an attribute of an Enum class goes
# through its metaclass's ``__getattr__`` hook, some 1,000 instructions each
# (callgrind), and the pool tests an entry's state several times per request.
CONNECTING: typing.Final = EntryState.CONNECTING
READY: typing.Final = EntryState.READY
CLOSED: typing.Final = EntryState.CLOSED


class PoolEntry:
    """The pool's record of one connection."""

    __slots__ = (
        "capacity",
        "connection",
        "handler",
        "idle_since",
        "in_use",
        "may_multiplex",
        "multiplexed",
        "origin_state",
        "state",
    )

    def __init__(self, connection: AsyncConnectionInterface, origin_state: OriginState) -> None:
        self.connection = connection
        # What requests are sent on: ``connection``, or once open the protocol
        # connection it forwards them to (set by the pool).
        self.handler = connection
        self.origin_state = origin_state
        self.state = CONNECTING
        self.in_use = 0
        self.capacity = 1
        self.may_multiplex = False
        self.multiplexed = False
        self.idle_since = 0.0

    def __repr__(self) -> str:
        where = self.origin_state.origin
        return f"<PoolEntry {where} {self.state.name} {self.in_use}/{self.capacity}>"


class Waiter:
    """One request waiting for, or just given, a connection."""

    __slots__ = (
        "arrival",
        "avoid",
        "blocked_by_origin",
        "connect",
        "entry",
        "error",
        "event",
        "origin",
        "probed",
        "shared_failures",
        "wants_new_connection",
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
        # A retry after a dead keep-alive connection: it gets a new
        # connection when the limits allow one.
        self.wants_new_connection = False
        # Waits in its origin's waiters only, not in the pool's queue.
        self.blocked_by_origin = False
        # Given an idle connection that the liveness probe has just passed.
        self.probed = False
        self.arrival = 0  # its number in arrival order
        # Connections it waited for that failed, and the error it ends with
        # when there were too many (then ``entry`` stays None).
        self.shared_failures = 0
        self.error: BaseException | None = None


class OriginState:
    """Everything the pool knows about one origin."""

    __slots__ = (
        "blocked_by_origin",
        "connecting_may_multiplex",
        "connection_count",
        "idle",
        "origin",
        "speaks_http11",
        "waiters",
        "with_free_slots",
    )

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.waiters: OrderedDict[Waiter, None] = OrderedDict()
        self.idle: OrderedDict[PoolEntry, None] = OrderedDict()
        self.with_free_slots: OrderedDict[PoolEntry, None] = OrderedDict()
        self.connection_count = 0
        # Connections still connecting that may turn out to multiplex.
        self.connecting_may_multiplex = 0
        # How many of ``waiters`` are blocked by the origin, not by the pool.
        self.blocked_by_origin = 0
        # Seen to answer with HTTP/1.1: no need to wait for its next connection.
        self.speaks_http11 = False
