"""The states of an HTTP/1.1 connection and the table of its moves.

Theory of operation: a connection is in one of four states and moves only
through ``TRANSITIONS``, a table of ``(state, event) -> next state``; a pair
missing from the table is a move that must not happen, and ``next_state``
says so with a ``RuntimeError``. ``httpool/_async/http11.py`` drives it; this
module knows nothing of I/O, h11 or pools.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Mapping


class HTTPConnectionState(enum.Enum):
    # Members are singletons compared by identity: hashing them the same way
    # is a C call instead of Enum's Python one, on every table lookup.
    __hash__ = object.__hash__

    NEW = "NEW"
    ACTIVE = "ACTIVE"
    IDLE = "IDLE"
    CLOSED = "CLOSED"


class ConnectionEvent(enum.Enum):
    __hash__ = object.__hash__  # as above

    REQUEST = "REQUEST"
    RESPONSE_DONE_KEEPALIVE = "RESPONSE_DONE_KEEPALIVE"
    RESPONSE_DONE_CLOSE = "RESPONSE_DONE_CLOSE"
    ERROR = "ERROR"
    CLOSE = "CLOSE"


_S = HTTPConnectionState
_E = ConnectionEvent
TRANSITIONS: typing.Final[Mapping[tuple[HTTPConnectionState, ConnectionEvent], _S]] = {
    (_S.NEW, _E.REQUEST): _S.ACTIVE,
    (_S.IDLE, _E.REQUEST): _S.ACTIVE,
    (_S.ACTIVE, _E.RESPONSE_DONE_KEEPALIVE): _S.IDLE,
    (_S.ACTIVE, _E.RESPONSE_DONE_CLOSE): _S.CLOSED,
    (_S.ACTIVE, _E.ERROR): _S.CLOSED,
    # The pool may close a connection while its response is still being read;
    # the read then fails on a connection that is already CLOSED.
    (_S.CLOSED, _E.ERROR): _S.CLOSED,
    (_S.NEW, _E.CLOSE): _S.CLOSED,
    (_S.ACTIVE, _E.CLOSE): _S.CLOSED,
    (_S.IDLE, _E.CLOSE): _S.CLOSED,
    (_S.CLOSED, _E.CLOSE): _S.CLOSED,
}


def next_state(state: HTTPConnectionState, event: ConnectionEvent) -> HTTPConnectionState:
    """The state after ``event``; ``RuntimeError`` for a move the table forbids."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        message = f"HTTP/1.1 connection: no transition for {event.name} in {state.name}"
        raise RuntimeError(message) from None
