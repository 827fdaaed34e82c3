"""Run test code concurrently on asyncio, trio or threads with one spelling.

``AsyncTaskGroup`` (asyncio or trio, picked from the running library) and
``TaskGroup`` (threads) share an interface, so a test in ``tests/_async``
becomes a threaded test after the unasync step renames the class.
"""

from __future__ import annotations

import asyncio
import threading
import types
import typing
from collections.abc import Awaitable, Callable

from httpool._synchronization import current_async_library


class AsyncTaskGroup:
    """``start_soon`` tasks; leaving the block waits for all and re-raises the first error."""

    def __init__(self) -> None:
        self._trio_cm: typing.Any = None
        self._nursery: typing.Any = None
        self._tasks: list[asyncio.Future[object]] = []

    async def __aenter__(self) -> AsyncTaskGroup:
        if current_async_library() == "trio":
            import trio

            self._trio_cm = trio.open_nursery()
            self._nursery = await self._trio_cm.__aenter__()
        return self

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: typing.Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
        else:
            self._tasks.append(asyncio.ensure_future(fn(*args)))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if self._trio_cm is not None:
            await self._trio_cm.__aexit__(exc_type, exc, tb)
            return
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


class TaskGroup:
    """The threaded twin of ``AsyncTaskGroup``."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def __enter__(self) -> TaskGroup:
        return self

    def start_soon(self, fn: Callable[..., object], *args: typing.Any) -> None:
        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                self._errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        self._threads.append(thread)
        thread.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a test thread hung"
        if self._errors and exc is None:
            raise self._errors[0]


async def cancel_after(seconds: float, fn: Callable[[], Awaitable[object]]) -> bool:
    """Run ``fn()``; cancel it after ``seconds``. Return True if it was cancelled."""
    if current_async_library() == "trio":
        import trio

        with trio.move_on_after(seconds) as scope:
            await fn()
        return bool(scope.cancelled_caught)
    try:
        await asyncio.wait_for(fn(), seconds)
    except asyncio.TimeoutError:
        return True
    return False
