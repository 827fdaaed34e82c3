"""The total deadline of a request: ``extensions={"timeout": {"total": seconds}}``.

Theory of operation: the first layer that handles a request with a total
timeout (the pool, or a connection used without one) turns it into an
absolute ``Deadline`` on the backend's clock, and hands the layers below a
shallow copy of the request whose extensions carry it under
``DEADLINE_KEY``; the caller's ``Request`` and dicts are never changed, and
concurrent uses of one ``Request`` get a deadline each. Every wait below
(pool queue, connect, TLS, each write and each read, the body included)
waits at most for what is left, and a wait the deadline cut short raises
the timeout of its phase with a message naming the total. Without a total
timeout nothing here runs: the layers test for the key, nothing more.
"""

from __future__ import annotations

import typing
from collections.abc import Callable

from ._exceptions import TimeoutException
from ._models import Request

DEADLINE_KEY = "httpool.deadline"

_E = typing.TypeVar("_E", bound=TimeoutException)


class Deadline:
    """An absolute deadline on ``clock``, ``total`` seconds after it was made."""

    __slots__ = ("clock", "end", "total")

    def __init__(self, total: float, clock: Callable[[], float]) -> None:
        self.total = total
        self.clock = clock
        self.end = clock() + total

    def remaining(self) -> float:
        return self.end - self.clock()

    def limit(
        self, timeout: float | None, error: type[TimeoutException], phase: str
    ) -> tuple[float | None, bool]:
        """The timeout for the next wait, and whether the deadline set it.

        Raises ``error`` (naming the total) when no time is left.
        """
        remaining = self.end - self.clock()
        if remaining <= 0:
            raise self.error(error, phase)
        if timeout is None or remaining < timeout:
            return remaining, True
        return timeout, False

    def error(self, error: type[_E], phase: str) -> _E:
        return error(f"The total timeout of {self.total:g} seconds ran out while {phase}.")

    def __repr__(self) -> str:
        return f"<Deadline total={self.total:g} remaining={self.remaining():.3f}>"


def start_deadline(request: Request, clock: Callable[[], float]) -> Request:
    """``request`` itself, or, when it has a total timeout and no deadline
    yet, a shallow copy whose extensions carry one that starts now."""
    extensions = request.extensions
    timeout = extensions.get("timeout")
    if not timeout or DEADLINE_KEY in extensions:
        return request
    total = timeout.get("total")
    if total is None:
        return request
    copy = Request.__new__(Request)
    copy.method = request.method
    copy.url = request.url
    copy.headers = request.headers
    copy.stream = request.stream
    copy.extensions = {**extensions, DEADLINE_KEY: Deadline(total, clock)}
    return copy


def deadline_of(request: Request) -> Deadline | None:
    """The deadline ``start_deadline`` gave ``request``, if any."""
    deadline: Deadline | None = request.extensions.get(DEADLINE_KEY)
    return deadline
