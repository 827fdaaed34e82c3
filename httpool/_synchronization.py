"""The few runtime primitives the pool needs, for threads, asyncio and trio.

Theory of operation: the pool's code is written once, as async code, and the
unasync step renames ``AsyncX`` to ``X``. So every primitive comes in a pair
here with those two names:

- ``AsyncPoolLock`` / ``PoolLock``: guards the pool's bookkeeping. The async
  pool changes its state only between awaits, so on one event loop no lock is
  needed and ``AsyncPoolLock`` does nothing; the sync pool is shared between
  threads and gets a real ``threading.Lock``.
- ``AsyncLock`` / ``Lock``: a real lock that is held across awaits (an
  HTTP/2 connection's reader and writer, shared by the streams on it).
- ``AsyncEvent`` / ``Event``: what a queued request waits on until the pool
  assigns it a connection; ``wait(timeout)`` returns ``False`` on timeout.
- ``AsyncShieldCancellation`` / ``ShieldCancellation``: wraps closing I/O so
  that a cancellation cannot leave a half-closed connection behind.

And ``uninterruptible``, for Ctrl-C on trio. trio raises ``KeyboardInterrupt``
at whatever line is running unless that code is marked as protected, in
which case it delivers it to the main task at its next checkpoint. Landing
halfway through the pool's bookkeeping, or through an HTTP/2 connection's
shared state, would leave them contradicting themselves (and the cleanup
that then fails can replace the ``KeyboardInterrupt`` with its own error,
so the program runs on). The request path's entry points are therefore
marked ``@uninterruptible``, and everything they call is protected with
them. asyncio needs nothing: ``asyncio.run`` turns Ctrl-C into a
cancellation of the main task.

The async flavours pick asyncio or trio from the running library. Whatever
touches trio is in ``_backends/trio.py`` (``trio_runtime()``), which is
imported only when trio is already loaded, so ``import httpool`` never needs
it and this module never imports trio.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import threading
import types
import typing

_F = typing.TypeVar("_F", bound=typing.Callable[..., typing.Any])

_UNINTERRUPTIBLE: list[typing.Callable[..., typing.Any]] = []
_trio_told = False
# httpool._backends.trio once loaded (by trio_runtime()); typed loosely, since
# a typed import of it here is what this module must not have.
_trio: typing.Any = None


def trio_runtime() -> typing.Any:
    """``httpool._backends.trio``, the module that touches trio, loaded on first
    use (``ImportError`` without trio). Only for code that found trio loaded."""
    global _trio
    if _trio is None:
        from ._backends import trio as runtime  # the optional dependency trio

        _trio = runtime
    return _trio


def uninterruptible(function: _F) -> _F:
    """Mark ``function`` (and whatever it calls) as code that trio must not
    interrupt with ``KeyboardInterrupt``; see the module docstring."""
    _UNINTERRUPTIBLE.append(function)
    if _trio_told:
        _protect(function)
    return function


def protect_on_trio() -> None:
    """Tell trio, if it is loaded, about the functions marked ``uninterruptible``.
    Cheap after the first call; the pool calls it when it is made, and the
    runtime check below when it finds trio."""
    global _trio_told
    if _trio_told or sys.modules.get("trio") is None:  # not loaded (or blocked)
        return
    _trio_told = True
    for function in _UNINTERRUPTIBLE:
        _protect(function)


def _protect(function: typing.Callable[..., typing.Any]) -> None:
    trio_runtime().protect_from_keyboard_interrupt(function)


def current_async_library() -> str:
    """Return ``"asyncio"`` or ``"trio"``, whichever is running this task."""
    if asyncio._get_running_loop() is not None:
        return "asyncio"
    if "trio" in sys.modules:
        try:
            (_trio or trio_runtime()).current_task()
        except RuntimeError:  # not in a trio task
            pass
        else:
            protect_on_trio()
            return "trio"
    raise RuntimeError("httpool's async API needs a running asyncio or trio event loop")


class AsyncPoolLock:
    """A lock that does nothing: async pool state changes never await."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


PoolLock = threading.Lock


class AsyncLock:
    """A lock held across awaits, for asyncio or trio (picked on first use, so
    it can be made outside a running loop). Fair: a release hands the lock to
    the longest waiter. ``try_acquire`` takes it only if it is free."""

    __slots__ = ("_known", "_locked", "_trio_lock", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        # Waiters that are done (timed out, cancelled) are skipped by release().
        self._waiters: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._trio_lock: typing.Any = None
        self._known = False  # whether the runtime has been looked up

    def _trio(self) -> typing.Any:
        if not self._known:
            self._known = True
            if current_async_library() == "trio":
                self._trio_lock = _trio.new_lock()
        return self._trio_lock

    async def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock; ``False`` if ``timeout`` seconds passed first."""
        trio_lock = self._trio()
        if trio_lock is not None:
            return await _trio.acquire(trio_lock, timeout)  # type: ignore[no-any-return]
        if not self._locked:
            self._locked = True
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, _give_up, waiter)
        try:
            # release() hands the lock over by setting True; the timer sets False.
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()  # handed over just as we were cancelled: pass it on
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *args: object) -> None:
        self.release()

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting; ``True`` if taken."""
        trio_lock = self._trio()
        if trio_lock is not None:
            try:
                trio_lock.acquire_nowait()
            except Exception:  # trio.WouldBlock
                return False
            return True
        if self._locked:
            return False
        self._locked = True
        return True

    def release(self) -> None:
        if self._trio_lock is not None:
            self._trio_lock.release()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # still locked: it belongs to the waiter now
                return
        self._locked = False


def _give_up(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class Lock:
    """The threaded twin of ``AsyncLock``."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *args: object) -> None:
        self._lock.release()

    def acquire(self, timeout: float | None = None) -> bool:
        return self._lock.acquire(timeout=-1 if timeout is None else timeout)

    def try_acquire(self) -> bool:
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()


class AsyncEvent:
    """A one-shot event for asyncio or trio, with a timeout on ``wait``."""

    __slots__ = ("_flag", "_trio_event", "_waiter")

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None
        self._trio_event: typing.Any = None

    def set(self) -> None:
        self._flag = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        elif self._trio_event is not None:
            self._trio_event.set()

    def is_set(self) -> bool:
        return self._flag

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until ``set()``; return ``False`` if ``timeout`` seconds passed first."""
        if self._flag:
            return True
        if current_async_library() == "trio":
            self._trio_event = event = _trio.new_event()
            await _trio.wait(event, timeout)
            return self._flag
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        if timeout is None:
            await self._waiter
            return True
        handle = loop.call_later(timeout, self._expire, self._waiter)
        try:
            await self._waiter
        finally:
            handle.cancel()
        return self._flag

    @staticmethod
    def _expire(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_result(None)


class Event:
    """A one-shot event for threads, with the same interface as ``AsyncEvent``."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


class AsyncShieldCancellation:
    """Shield the enclosed block from cancellation (trio); asyncio needs none.

    The asyncio backend closes its transports synchronously, so its close
    paths contain no suspension point at which a cancellation could land.
    """

    __slots__ = ("_scope",)

    def __init__(self) -> None:
        self._scope: typing.Any = None
        if "trio" in sys.modules and current_async_library() == "trio":
            self._scope = _trio.shield()

    def __enter__(self) -> AsyncShieldCancellation:
        if self._scope is not None:
            self._scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        if self._scope is not None:
            self._scope.__exit__(exc_type, exc_value, traceback)


class ShieldCancellation:
    """Threads cannot be cancelled mid-call: nothing to shield."""

    __slots__ = ()

    def __enter__(self) -> ShieldCancellation:
        return self

    def __exit__(self, *args: object) -> None:
        return None
