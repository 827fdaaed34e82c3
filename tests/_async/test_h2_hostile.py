"""HTTP/2 servers that attack the client, frame by frame.

Every attack of ``tests/support/h2_hostile.py`` runs against the pool on the
first connection of a server that is ordinary otherwise. For each, the table
``CASES`` states the documented outcome: the error the request gets (a
``RemoteProtocolError``, a timeout, or none when the pool copes), the
GOAWAY error code the client sends before it closes a connection the server
broke (RFC 9113 5.4.1), or the RST_STREAM code when only a stream was at
fault, and whether the pool needs a new connection afterwards. Every case
must end within ``TIME_BOUND`` seconds (the hostile connection gives up after
``SAFETY_TIMEOUT``, so a client that never does fails here instead of
hanging), with tracemalloc's peak under its bound (the server thread's
allocations included), and the same pool then serves a request on a clean
connection, its bookkeeping intact.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import time
import tracemalloc
import typing
from collections.abc import Callable

import pytest

import httpool
from httpool import AsyncConnectionPool
from httpool._backends.default import async_default_backend
from tests.support.concurrency import AsyncTaskGroup
from tests.support.h2_hostile import (
    ATTACKS,
    CANCEL,
    COMPRESSION_ERROR,
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    PROTOCOL_ERROR,
    SAFETY_TIMEOUT,
    STREAM_CLOSED,
    Hostility,
)
from tests.support.h2_server import H2Server

MakeServer = Callable[..., tuple[H2Server, Hostility]]

# Generous for a loaded machine: the floods end after 10,000 frames, in 1 to 3 s here;
# a client that never gives up runs into the server's SAFETY_TIMEOUT, twice as long.
TIME_BOUND = SAFETY_TIMEOUT / 2
MiB = 1024 * 1024
# Long enough that a flood is cut by its frame bound, not by the read timeout, even
# with tracemalloc on (it triples the cost of the 10,000 frames), coverage and a
# loaded 2-core machine: at 5 s, 1 run in ~20 of the whole suite failed that way.
PROMPT = {"timeout": {"connect": 5.0, "read": 20.0, "write": 20.0, "pool": 5.0}}
SHORT = {"timeout": {"connect": 5.0, "read": 0.5, "write": 5.0, "pool": 5.0}}


class Expect(typing.NamedTuple):
    error: type[Exception] | None  # None: the request succeeds
    goaway: int | None = None  # the code of the client's GOAWAY on the hostile connection
    reset: int | None = None  # the code of the client's RST_STREAM, for a stream error
    new_connection: bool = True  # the next request needs a second connection
    memory: int = 8 * MiB  # tracemalloc peak while the attack runs
    timeouts: dict[str, dict[str, float]] = PROMPT


FLOOD = Expect(httpool.RemoteProtocolError, goaway=ENHANCE_YOUR_CALM)
BROKEN = Expect(httpool.RemoteProtocolError, goaway=PROTOCOL_ERROR)

CASES: dict[str, Expect] = {
    # Frames that carry nothing, for ever: cut at 10,000 in a row.
    "ping-flood": FLOOD,
    "ping-ack-flood": FLOOD,
    "settings-flood": FLOOD,
    "settings-ack-flood": FLOOD,
    "window-update-flood": FLOOD,
    "priority-flood": FLOOD,
    "unknown-frame-flood": FLOOD,
    "empty-data-flood": FLOOD,
    "informational-flood": FLOOD,
    # Frames that carry nothing, slowly: the read timeout counts the stream's
    # own events, so a PING every 0.1 s does not keep a request waiting for ever.
    "ping-drip": Expect(httpool.ReadTimeout, reset=CANCEL, new_connection=False, timeouts=SHORT),
    # h2's own limit of 64 CONTINUATION frames; our limit of 128 KiB of header block.
    "continuation-flood": BROKEN,
    "continuation-flood-large": FLOOD,
    # HPACK: decoded size checked as it grows (64 KiB), table size held to our SETTINGS.
    "hpack-bomb": FLOOD,
    "hpack-many-headers": FLOOD,
    "hpack-table-size": Expect(httpool.RemoteProtocolError, goaway=COMPRESSION_ERROR),
    # Flow control.
    "window-update-zero-connection": BROKEN,
    "window-update-zero-stream": BROKEN,
    "window-overflow-connection": Expect(httpool.RemoteProtocolError, goaway=FLOW_CONTROL_ERROR),
    "window-overflow-stream": Expect(
        httpool.RemoteProtocolError, reset=FLOW_CONTROL_ERROR, new_connection=False
    ),
    # Frames on streams never opened, or closed.
    "headers-on-idle-stream": BROKEN,
    "headers-on-even-stream": BROKEN,
    "data-on-idle-stream": BROKEN,
    "reset-of-idle-stream": BROKEN,
    "window-update-on-idle-stream": BROKEN,
    # h2 makes DATA on a stream that ended a stream error: that stream is reset.
    "data-on-closed-stream": Expect(None, reset=STREAM_CLOSED, new_connection=False),
    "push-promise": BROKEN,
    # GOAWAY: a stream above the last id was never processed and goes elsewhere;
    # a later GOAWAY cannot raise the last id again; a promised stream that is
    # never answered is a read timeout. The going-away connection is closed
    # politely (GOAWAY NO_ERROR) once it carries no stream.
    "goaway-then-silence": Expect(None, goaway=0),
    "goaway-growing": Expect(None, goaway=0),
    "promised-goaway-then-silence": Expect(httpool.ReadTimeout, goaway=0, timeouts=SHORT),
    # SETTINGS.
    "settings-window-too-large": Expect(httpool.RemoteProtocolError, goaway=FLOW_CONTROL_ERROR),
    "settings-frame-size-too-small": BROKEN,
    "settings-frame-size-too-large": BROKEN,
    "settings-enable-push-2": BROKEN,
    "settings-never-acked": Expect(None, new_connection=False),
    # Malformed responses and garbage.
    "no-status": Expect(httpool.RemoteProtocolError, reset=PROTOCOL_ERROR, new_connection=False),
    "garbage-after-preface": Expect(httpool.RemoteProtocolError, goaway=FRAME_SIZE_ERROR),
    # Stalled in mid-frame: a timeout, and the connection is not used again; it
    # closes with GOAWAY(NO_ERROR) once its stream has ended, as a going-away one.
    "half-a-frame": Expect(httpool.ReadTimeout, goaway=0, timeouts=SHORT),
}


def _h2c_pool() -> AsyncConnectionPool:
    return AsyncConnectionPool(http1=False, http2=True)


async def _until(condition: Callable[[], bool], what: str) -> None:
    backend = async_default_backend()
    for _ in range(500):
        if condition():
            return
        await backend.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def _serves_next(pool: AsyncConnectionPool, server: H2Server, connections: int) -> None:
    """The pool serves an ordinary request, on a clean connection, and holds no other."""
    response = await pool.request("GET", server.url + "/", extensions=PROMPT)
    assert (response.status, response.content) == (200, b"Hello, world!")
    pool.check_invariants()
    stats = pool.stats()
    assert (stats.connections, stats.streams_in_use, stats.queued) == (1, 0, 0), stats
    assert server.connections_accepted == connections


class _Measure:
    """Elapsed time and tracemalloc's peak over a block."""

    def __enter__(self) -> _Measure:
        tracemalloc.start()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.elapsed = time.monotonic() - self.started
        _, self.peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()


def test_every_attack_has_an_expected_outcome() -> None:
    special = {"reset-every-stream", "data-beyond-window", "tiny-data"}
    special |= {"refuse-for-a-while", "refuse-on-second-connection"}
    special |= {"stall-then-resume"}
    assert set(CASES) | special == set(ATTACKS)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_hostile_server(make_hostile_server: MakeServer, name: str) -> None:
    expect = CASES[name]
    server, record = make_hostile_server(name)
    async with _h2c_pool() as pool:
        for _ in range(ATTACKS[name].after):
            assert (await pool.request("GET", server.url + "/", extensions=PROMPT)).status == 200
        extensions = {"timeout": expect.timeouts["timeout"]}
        with _Measure() as measured:
            if expect.error is None:
                response = await pool.request("GET", server.url + "/", extensions=extensions)
                assert (response.status, response.content) == (200, b"Hello, world!")
            else:
                with pytest.raises(expect.error):
                    await pool.request("GET", server.url + "/", extensions=extensions)
        assert measured.elapsed < TIME_BOUND, f"took {measured.elapsed:.1f} s"
        assert measured.peak < expect.memory, f"peak {measured.peak / MiB:.1f} MiB"
        pool.check_invariants()
        if expect.goaway is not None:
            await _until(lambda: record.goaway_codes == [expect.goaway], "the client's GOAWAY")
        if expect.reset is not None:
            await _until(lambda: expect.reset in record.reset_codes, "the client's RST_STREAM")
        await _serves_next(pool, server, 2 if expect.new_connection else 1)
        # Nothing else was said: no GOAWAY for a stream error, no second one.
        assert record.goaway_codes == ([] if expect.goaway is None else [expect.goaway])


async def test_every_stream_reset(make_hostile_server: MakeServer) -> None:
    # Each reset fails its own request only; the connection goes on.
    server, record = make_hostile_server("reset-every-stream")
    errors: list[BaseException] = []

    async def one() -> None:
        try:
            await pool.request("GET", server.url + "/", extensions=PROMPT)
        except httpool.RemoteProtocolError as exc:
            errors.append(exc)

    async with _h2c_pool() as pool:
        with _Measure() as measured:
            async with AsyncTaskGroup() as group:
                for _ in range(5):
                    group.start_soon(one)
        assert len(errors) == 5 and all("reset" in str(exc) for exc in errors), errors
        assert measured.elapsed < TIME_BOUND and measured.peak < 8 * MiB
        await _serves_next(pool, server, 1)
        assert record.goaway_codes == [] and record.reset_codes == []


async def test_data_beyond_the_window(make_hostile_server: MakeServer) -> None:
    # The first stream's response head arrives, then 4 MiB + 16 KiB of DATA at
    # once, more than the 4 MiB we allow per stream; we have not read any of
    # it, so none of the window came back. Reading the socket for a second
    # request finds the overflow: a connection error, FLOW_CONTROL_ERROR.
    server, record = make_hostile_server("data-beyond-window")
    async with _h2c_pool() as pool:
        with _Measure() as measured:
            async with pool.stream("GET", server.url + "/", extensions=PROMPT) as first:
                assert first.status == 200
                with pytest.raises(httpool.RemoteProtocolError, match="window"):
                    await pool.request("GET", server.url + "/", extensions=PROMPT)
                with pytest.raises(httpool.RemoteProtocolError):
                    await first.aread()
        assert measured.elapsed < TIME_BOUND
        # The 4 MiB body is held twice (the server's copy, ours).
        assert measured.peak < 24 * MiB, f"peak {measured.peak / MiB:.1f} MiB"
        await _until(lambda: record.goaway_codes == [FLOW_CONTROL_ERROR], "the GOAWAY")
        await _serves_next(pool, server, 2)


async def test_one_byte_frames_for_a_stream_nobody_reads(make_hostile_server: MakeServer) -> None:
    # 30,000 one-byte DATA frames for the first stream while a second stream
    # reads the socket. Queued as an event each they held 4.7 MB (an event
    # object per byte of a 4 MiB window: 400 MB); merged, 1.7 MB.
    server, _ = make_hostile_server("tiny-data")
    async with _h2c_pool() as pool:
        with _Measure() as measured:
            async with pool.stream("GET", server.url + "/", extensions=PROMPT) as first:
                second = await pool.request("GET", server.url + "/", extensions=PROMPT)
                assert second.content == b"Hello, world!"
                assert await first.aread() == b"x" * 30_000
        assert measured.elapsed < TIME_BOUND
        assert measured.peak < 3 * MiB, f"peak {measured.peak / MiB:.1f} MiB"
        await _serves_next(pool, server, 1)


async def test_a_stall_one_stream_gives_up_on_does_not_fail_the_others(
    make_hostile_server: MakeServer,
) -> None:
    # The server stops in mid-frame for 2 s. The stream with a 10 s read
    # timeout gets its answer once the frame is whole; the one with 0.3 s,
    # opened during the stall, gives up. The connection takes no new stream
    # after the stall (it closes when its last stream ends), but the streams
    # on it are not failed for another stream's patience (they were, with
    # "stopped in mid-frame").
    server, record = make_hostile_server("stall-then-resume")
    impatient = {"timeout": {"connect": 5.0, "read": 0.3, "write": 5.0, "pool": 5.0}}
    patient = {"timeout": {"connect": 5.0, "read": 10.0, "write": 5.0, "pool": 5.0}}
    outcomes: dict[str, object] = {}

    async def first(pool: AsyncConnectionPool) -> None:
        response = await pool.request("GET", server.url + "/", extensions=patient)
        outcomes["first"] = (response.status, response.content)

    async def second(pool: AsyncConnectionPool) -> None:
        await _until(lambda: record.streams_opened >= 1, "the first stream")
        try:
            await pool.request("GET", server.url + "/", extensions=impatient)
        except httpool.ReadTimeout as exc:
            outcomes["second"] = exc

    async with _h2c_pool() as pool:
        async with AsyncTaskGroup() as group:
            group.start_soon(first, pool)
            group.start_soon(second, pool)
        assert outcomes["first"] == (200, b"Hello, world!")
        assert isinstance(outcomes["second"], httpool.ReadTimeout)
        await _serves_next(pool, server, 2)


async def test_refused_streams_wait_for_the_server(make_hostile_server: MakeServer) -> None:
    # The server refuses every stream (REFUSED_STREAM) for half a second, then
    # answers. Retried at once on the one connection, five requests used 45
    # streams in 50 ms and all failed; with the backoff (50 ms doubling, at
    # least halved by jitter) each tries at most six times, and all succeed.
    server, record = make_hostile_server("refuse-for-a-while")
    statuses: list[int] = []

    async def one() -> None:
        response = await pool.request("GET", server.url + "/", extensions=PROMPT)
        statuses.append(response.status)

    async with _h2c_pool() as pool:
        with _Measure() as measured:
            async with AsyncTaskGroup() as group:
                for _ in range(5):
                    group.start_soon(one)
        assert statuses == [200] * 5
        assert 5 <= record.refused <= 25, record.refused
        assert record.streams_opened == record.refused + 5
        assert measured.elapsed < TIME_BOUND and measured.peak < 8 * MiB
        await _serves_next(pool, server, 1)  # no connection was opened for the refusals


async def test_refused_stream_goes_to_another_connection(make_hostile_server: MakeServer) -> None:
    # Two connections of two streams each; the second refuses every stream
    # after its first, and it is the first one the pool offers. A refused
    # request goes at once to the other connection, which has a free slot,
    # instead of trying the same one again (nine times, and failing).
    server, record = make_hostile_server("refuse-on-second-connection", max_concurrent_streams=2)
    async with _h2c_pool() as pool:
        async with AsyncTaskGroup() as group:
            for _ in range(2):
                group.start_soon(pool.request, "GET", server.url + "/slow?delay=0.5")
            await _until(lambda: server.streams_received == 2, "the first connection to fill")
            # This one opens the second connection, and is done first.
            group.start_soon(pool.request, "GET", server.url + "/")
        assert server.connections_accepted == 2
        for _ in range(5):
            response = await pool.request("GET", server.url + "/", extensions=PROMPT)
            assert response.content == b"Hello, world!"
        assert record.refused == 5  # once each: never the same connection twice
        assert server.connections_accepted == 2
        pool.check_invariants()
