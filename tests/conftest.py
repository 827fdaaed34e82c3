"""Runs every ``async def`` test on asyncio and on trio; registers the fixtures.

Only hooks live here. A coroutine test gets a pseudo-parameter
``async_runtime`` (ids ``[asyncio]`` and ``[trio]``) and is then run to
completion by that library's ``run``, within ``TEST_LIMIT`` seconds; its
fixtures are ordinary synchronous fixtures, passed in as usual. The
generated twins in ``tests/_sync`` are plain functions and run on threads.
The fixtures (servers, TLS material, the leaked-fd check) are a plugin,
``tests/support/fixtures.py``: pytest takes ``pytest_plugins`` only from
the rootmost conftest, which is this one.

``--h11-only`` runs the suite with the HTTP/1.1 fast path switched off
(``httpool/_http11_fast.py`` declines everything, so h11 writes every request
head and parses every response): every test must pass on both paths.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import typing

import pytest

pytest_plugins = ["tests.support.fixtures"]

ASYNC_RUNTIMES = ("asyncio", "trio")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--h11-only",
        action="store_true",
        help="switch the HTTP/1.1 fast path off: h11 writes and parses every message",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--h11-only"):
        from httpool import _h11

        def declined(*args: object) -> None:
            return None

        _h11.request_head = declined  # type: ignore[assignment]
        _h11.parse_response_head = declined  # type: ignore[assignment]


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("--h11-only"):
        return "HTTP/1.1 fast path: off (--h11-only), h11 writes and parses every message"
    return "HTTP/1.1 fast path: on"


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
