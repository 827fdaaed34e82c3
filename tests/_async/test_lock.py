"""The lock HTTP/2 connections share between streams: fair, with timeouts.

Written once; runs on asyncio, trio and (as ``Lock``) threads.
"""

from __future__ import annotations

from httpool._backends.default import async_default_backend
from httpool._synchronization import AsyncLock
from tests.support.concurrency import AsyncTaskGroup


async def test_try_acquire_only_takes_a_free_lock() -> None:
    lock = AsyncLock()
    assert lock.try_acquire()
    assert not lock.try_acquire()
    lock.release()
    assert lock.try_acquire()
    lock.release()


async def test_acquire_times_out_and_the_lock_stays_usable() -> None:
    lock = AsyncLock()
    backend = async_default_backend()
    results: list[bool] = []

    async def holder() -> None:
        async with lock:
            await backend.sleep(0.3)

    async def impatient() -> None:
        await backend.sleep(0.05)
        results.append(await lock.acquire(0.05))  # gives up while held
        results.append(await lock.acquire(5.0))  # gets it when the holder leaves
        lock.release()

    async with AsyncTaskGroup() as group:
        group.start_soon(holder)
        group.start_soon(impatient)
    assert results == [False, True]
    # The waiter that gave up was not handed the lock later.
    assert lock.try_acquire()
    lock.release()


async def test_every_waiter_gets_the_lock_once() -> None:
    lock = AsyncLock()
    backend = async_default_backend()
    order: list[int] = []

    async def take(i: int) -> None:
        await backend.sleep(0.02 * i)
        async with lock:
            order.append(i)
            await backend.sleep(0.01)

    await lock.acquire()
    async with AsyncTaskGroup() as group:
        for i in range(1, 6):
            group.start_soon(take, i)
        await backend.sleep(0.2)
        lock.release()
    # asyncio and trio hand the lock over in arrival order; threads in any order.
    assert sorted(order) == [1, 2, 3, 4, 5]
    assert lock.try_acquire()
    lock.release()
