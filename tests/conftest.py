"""Runs every ``async def`` test on asyncio and on trio, and guards against leaked sockets.

A coroutine test gets a pseudo-parameter ``async_runtime`` (ids ``[asyncio]``
and ``[trio]``) and is then run to completion by that library's ``run``;
its fixtures are ordinary synchronous fixtures, passed in as usual. The
generated twins in ``tests/_sync`` are plain functions and run on threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import os
import time
import typing
from collections.abc import Iterator

import pytest

ASYNC_RUNTIMES = ("asyncio", "trio")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if inspect.iscoroutinefunction(metafunc.function):
        metafunc.fixturenames.append("async_runtime")
        metafunc.parametrize("async_runtime", ASYNC_RUNTIMES)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None
    names = inspect.signature(test).parameters
    call = functools.partial(test, **{name: pyfuncitem.funcargs[name] for name in names})
    if pyfuncitem.callspec.params["async_runtime"] == "trio":
        import trio

        trio.run(_trio_within_limit, call)
    else:
        asyncio.run(_asyncio_within_limit(call))
    return True


# A hung async test fails after this many seconds with the traceback of where
# it waited, instead of hanging the run (sync tests: faulthandler_timeout in
# pyproject.toml prints every thread's stack).
TEST_LIMIT = 180.0


async def _trio_within_limit(call: functools.partial[typing.Any]) -> None:
    import trio

    with trio.fail_after(TEST_LIMIT):
        await call()


async def _asyncio_within_limit(call: functools.partial[typing.Any]) -> None:
    # The test runs in this task (no wait_for, which would move it to another):
    # the limit cancels it, and the cancellation is reported as the hang.
    task = asyncio.current_task()
    assert task is not None
    hung = False

    def cancel() -> None:
        nonlocal hung
        hung = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(TEST_LIMIT, cancel)
    try:
        await call()
    except asyncio.CancelledError as exc:
        if hung:
            # Chained: the cancellation's traceback shows where the test waited.
            raise TimeoutError(f"the test did not finish within {TEST_LIMIT} seconds") from exc
        raise
    finally:
        timer.cancel()


def _open_fds() -> dict[str, str]:
    fds: dict[str, str] = {}
    for fd in os.listdir("/proc/self/fd"):
        # The descriptor listdir itself used is gone by now.
        with contextlib.suppress(OSError):
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return fds


@pytest.fixture(autouse=True, scope="module")
def _no_leaked_fds() -> Iterator[None]:
    """Fail the module if it leaves file descriptors open (Linux only)."""
    if not os.path.isdir("/proc/self/fd"):
        yield
        return
    before = _open_fds()
    yield
    # Server threads and closed-but-unreferenced sockets need a moment and a
    # collection to go away; a real leak survives both.
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        after = _open_fds()
        if len(after) <= len(before) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if len(after) > len(before):
        new = {fd: target for fd, target in after.items() if before.get(fd) != target}
        pytest.fail(
            f"test module leaked {len(after) - len(before)} file descriptor(s); new: {new}",
            pytrace=False,
        )
