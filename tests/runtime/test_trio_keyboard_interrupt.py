"""Ctrl-C on trio never lands inside the pool's own code.

trio raises ``KeyboardInterrupt`` at whatever line is running unless that
code is protected; then it delivers it to the main task at a checkpoint. If
it landed in the middle of the pool's bookkeeping, the cleanup failed on the
half-made change and its error replaced the ``KeyboardInterrupt``, which a
worker's ``except Exception`` then swallowed: the CLI ran on after Ctrl-C.

These tests run ``trio.run`` themselves, since the interrupt must come out of
it. They raise a real SIGINT from inside the request path.
"""

from __future__ import annotations

import signal
import typing

import pytest

from httpool import AsyncConnectionPool
from httpool._async.connection import AsyncHTTPConnection
from tests.support.h2_server import H2Server
from tests.support.http_server import HTTPServer

trio = pytest.importorskip("trio")


def _recording_trace(seen: dict[str, bool]) -> typing.Callable[..., typing.Awaitable[None]]:
    async def trace(name: str, info: dict[str, typing.Any]) -> None:
        seen[name] = trio.lowlevel.currently_ki_protected()

    return trace


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_every_step_of_a_request_is_protected(
    protocol: str, server: HTTPServer, h2_server: H2Server
) -> None:
    # A trace callback runs inside the step it reports, so what trio says
    # there is what a Ctrl-C at that step would meet.
    seen: dict[str, bool] = {}
    http2 = protocol == "http2"
    url = (h2_server.url if http2 else server.url) + "/"

    async def main() -> None:
        async with AsyncConnectionPool(http1=not http2, http2=http2) as pool:
            extensions = {"trace": _recording_trace(seen)}
            async with pool.stream("GET", url, extensions=extensions) as response:
                async for _ in response.aiter_stream():
                    pass
            response = await pool.request("POST", url, content=b"x" * 1000, extensions=extensions)
            assert response.status == 200
            assert not trio.lowlevel.currently_ki_protected()  # the caller's code is not

    trio.run(main)
    prefix = "http2." if http2 else "http11."
    steps = {name for name in seen if name.startswith(prefix) and name.endswith(".started")}
    assert {s.split(".")[1] for s in steps} >= {
        "send_request_headers",
        "send_request_body",
        "receive_response_headers",
        "receive_response_body",
        "response_closed",
    }
    assert seen["connection.connect_tcp.started"]
    assert all(seen.values()), [name for name, protected in seen.items() if not protected]


def test_ctrl_c_in_the_liveness_probe_reaches_the_caller_and_spares_the_pool(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe of an idle connection runs in the middle of the pool's
    # bookkeeping for an arriving request: the worst place to be interrupted.
    pool = AsyncConnectionPool()
    url = server.url + "/"
    probed = []
    alive = AsyncHTTPConnection.is_alive

    def interrupted_probe(connection: AsyncHTTPConnection) -> bool:
        probed.append(trio.lowlevel.currently_ki_protected())
        signal.raise_signal(signal.SIGINT)
        return alive(connection)

    async def main() -> None:
        assert (await pool.request("GET", url)).status == 200
        monkeypatch.setattr(AsyncHTTPConnection, "is_alive", interrupted_probe)
        await pool.request("GET", url)
        raise AssertionError("the request went on after Ctrl-C")  # pragma: no cover

    with pytest.raises(KeyboardInterrupt):
        trio.run(main)
    monkeypatch.undo()
    assert probed == [True]
    pool.check_invariants()
    stats = pool.stats()
    assert (stats.streams_in_use, stats.queued) == (0, 0)

    async def afterwards() -> None:
        async with pool:
            assert (await pool.request("GET", url)).content == b"Hello, world!"

    trio.run(afterwards)


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_ctrl_c_while_streams_share_a_connection(
    protocol: str, server: HTTPServer, h2_server: H2Server
) -> None:
    # Ten requests in flight; Ctrl-C arrives inside one of them, while it
    # reads a response head. All of them end, and the pool is intact.
    http2 = protocol == "http2"
    url = (h2_server.url if http2 else server.url) + "/"
    pool = AsyncConnectionPool(http1=not http2, http2=http2, max_connections=4)
    fired: list[bool] = []

    async def trace(name: str, info: dict[str, typing.Any]) -> None:
        if name.endswith("receive_response_headers.started") and not fired:
            fired.append(True)
            signal.raise_signal(signal.SIGINT)

    async def one(extensions: dict[str, typing.Any]) -> None:
        while True:
            response = await pool.request("GET", url, extensions=extensions)
            assert response.status == 200

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(one, {"trace": trace} if i == 5 else {})

    with pytest.raises(BaseException) as caught:
        trio.run(main)
    assert caught.group_contains(KeyboardInterrupt) or caught.type is KeyboardInterrupt
    assert fired == [True]
    pool.check_invariants()
    stats = pool.stats()
    assert (stats.streams_in_use, stats.queued) == (0, 0)

    async def afterwards() -> None:
        async with pool:
            assert (await pool.request("GET", url)).status == 200

    trio.run(afterwards)
