"""The body of a response, chunk by chunk: what HTTP/1.1 and HTTP/2 share.

Theory of operation
-------------------
A response body is an iterator object (``AsyncResponseStream``), not a
generator, so that one abandoned half-way leaves no suspended frame for the
garbage collector to finalise (which, for an async generator, would need
the event loop). Its life is a ``BodyState``: NOT_STARTED until the first
chunk is asked for, STREAMING, ENDED once the body ended or failed, and
CLOSED once ``aclose`` ran (closing is idempotent; iterating after it is a
``RuntimeError``, iterating after the end stops again).

Written once here: the states, the trace of the body (entered at the first
chunk, left at the end or with the error that ended it) and the close, whose
trace step runs shielded from cancellation so that a cancelled trace
callback cannot leave the exchange unsettled. A request without a trace
callback pays for none of it (``NO_TRACE`` is never awaited).

What each protocol supplies, and nothing else: its connection
(``_connection``, an ``AsyncBodySource``), whose two coroutine methods the
base calls with this stream, ``next_body_chunk`` (the next piece of the body, ``None`` at its
end) and ``body_closed`` (the caller is done: settle the connection or the
stream); and two hooks off the hot path, ``_failed`` (the body failed: what
becomes of the connection) and ``_closed_trace`` (the trace step around
``body_closed``). The base calls the connection itself, with no forwarding
method in between (three such frames per HTTP/1.1 request cost some 300
instructions, callgrind). This module knows no protocol and no connection
beyond that interface.
"""

from __future__ import annotations

import enum
import typing

from .._models import Request
from .._synchronization import AsyncShieldCancellation, uninterruptible
from .._trace import NO_TRACE, Trace


class BodyState(enum.Enum):
    NOT_STARTED = "not started"
    STREAMING = "streaming"
    ENDED = "ended"  # the body ended, or failed
    CLOSED = "closed"  # aclose ran


# Module globals: cheaper to reach per chunk than the enum's attributes.
NOT_STARTED: typing.Final = BodyState.NOT_STARTED
_STREAMING = BodyState.STREAMING
_ENDED = BodyState.ENDED
_CLOSED = BodyState.CLOSED


class AsyncBodySource(typing.Protocol):
    """What a response body needs from its connection (HTTP/1.1 or HTTP/2)."""

    async def next_body_chunk(self, body: typing.Any) -> bytes | None:
        """The next piece of ``body``, ``None`` at its end."""

    async def body_closed(self, body: typing.Any) -> None:
        """The caller is done with ``body``: settle the exchange."""


class AsyncResponseStream:
    """A response body: iterate it for its chunks, close it when done.

    ``__anext__`` returns the next chunk, raises ``StopAsyncIteration`` at
    the end (and on every call after it), raises what ended the body when it
    failed, and ``RuntimeError`` once the stream has been closed.
    """

    # A subclass's __init__ sets these itself: ``_request``, ``_trace`` (its
    # body's trace step: ``Trace.start(name, request)``), ``_state =
    # NOT_STARTED`` and ``_connection`` (see the module docstring). Not through
    # an initialiser here: on CPython 3.11 that call cost some 1,000
    # instructions per response (HTTP/1.1 on a mock stream, callgrind).
    __slots__ = ("_connection", "_request", "_state", "_trace")
    _request: Request
    _state: BodyState
    _trace: Trace
    _connection: AsyncBodySource

    def __aiter__(self) -> AsyncResponseStream:
        return self

    @uninterruptible
    async def __anext__(self) -> bytes:
        state = self._state
        if state is not _STREAMING:
            if state is NOT_STARTED:
                self._state = _STREAMING
                if self._trace is not NO_TRACE:  # spares awaiting no-ops on every response
                    await self._trace.__aenter__()
            elif state is _CLOSED:
                raise RuntimeError("The response was closed before its body was read.")
            else:
                raise StopAsyncIteration
        try:
            chunk: bytes | None = await self._connection.next_body_chunk(self)
        except BaseException as exc:
            self._state = _ENDED
            await self._failed()
            await self._trace.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        if chunk is None:
            self._state = _ENDED
            if self._trace is not NO_TRACE:
                await self._trace.__aexit__(None, None, None)
            raise StopAsyncIteration
        return chunk

    @uninterruptible
    async def aclose(self) -> None:
        """Settle the exchange (at most once); never raises for a second call."""
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        if self._trace is NO_TRACE:  # no callback on this request
            # The connections shield their own closing steps.
            await self._connection.body_closed(self)
            return
        # A cancelled trace callback must not leave the exchange unsettled.
        with AsyncShieldCancellation():
            async with self._closed_trace():
                await self._connection.body_closed(self)

    # ----- what each protocol supplies besides its connection -------------------

    async def _failed(self) -> None:
        """Reading the body failed (the error then propagates)."""

    def _closed_trace(self) -> Trace:
        """The trace step around ``body_closed``."""
        raise NotImplementedError
