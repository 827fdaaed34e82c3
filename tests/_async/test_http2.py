"""HTTP/2 through the pool against a real h2 server on 127.0.0.1.

Written once; runs on asyncio, trio and (generated) threads. The server
(``tests/support/h2_server.py``) counts what it saw, so the tests check the
wire behaviour: streams per connection, connections opened, settings sent.
"""

from __future__ import annotations

import hashlib
import random
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable

import h2.settings
import pytest

import httpool
from httpool import AsyncConnectionPool
from httpool._backends.default import async_default_backend
from tests.support.concurrency import AsyncTaskGroup
from tests.support.fault_server import CLOSE, HANG, RESET, FaultServer, Script, pause, send
from tests.support.h2_server import H2Server, pattern_sha256
from tests.support.h2_server_responses import MALFORMED
from tests.support.http_server import HTTPServer

MakeServer = Callable[..., H2Server]


def _h2c_pool(**kwargs: object) -> AsyncConnectionPool:
    return AsyncConnectionPool(http1=False, http2=True, **kwargs)  # type: ignore[arg-type]


async def _until(condition: Callable[[], bool], what: str) -> None:
    backend = async_default_backend()
    for _ in range(1000):
        if condition():
            return
        await backend.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_prior_knowledge_get(h2_server: H2Server) -> None:
    async with _h2c_pool() as pool:
        response = await pool.request("GET", h2_server.url + "/")
        assert response.status == 200 and response.content == b"Hello, world!"
        assert response.extensions["http_version"] == b"HTTP/2"
        assert response.extensions["stream_id"] == 1
        response = await pool.request("GET", h2_server.url + "/headers", headers={"X-Test": "1"})
        lines = response.content.decode().splitlines()
        assert ":method: GET" in lines and ":scheme: http" in lines and ":path: /headers" in lines
        assert f":authority: 127.0.0.1:{h2_server.port}" in lines and "x-test: 1" in lines
        assert not any(line.startswith(("host:", "connection:")) for line in lines)
        assert response.extensions["stream_id"] == 3
        assert h2_server.connections_accepted == 1
        # Our SETTINGS refuse server push.
        assert h2_server.client_settings[0][h2.settings.SettingCodes.ENABLE_PUSH] == 0
        pool.check_invariants()


async def test_alpn_picks_h2_on_tls(h2_tls_server: H2Server) -> None:
    async with AsyncConnectionPool(
        http2=True, ssl_context=h2_tls_server.client_ssl_context
    ) as pool:
        for _ in range(3):
            response = await pool.request("GET", h2_tls_server.url + "/")
            assert response.extensions["http_version"] == b"HTTP/2"
            assert response.content == b"Hello, world!"
        assert h2_tls_server.connections_accepted == 1


async def test_concurrent_uploads_over_tls(h2_tls_server: H2Server) -> None:
    """Many streams reading and writing one TLS session at once (on threads,
    one reads while another writes: the session must not be used by both)."""
    timeout = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 30.0}
    failures: list[str] = []

    async def work(n: int) -> None:
        rng = random.Random(n)
        for _ in range(8):
            body = rng.randbytes(rng.randrange(1, 300_000))
            response = await pool.request(
                "POST", h2_tls_server.url + "/echo", content=body, extensions={"timeout": timeout}
            )
            if response.content != body:
                failures.append(f"worker {n}: body differs")

    context = h2_tls_server.client_ssl_context
    async with AsyncConnectionPool(http2=True, ssl_context=context) as pool:
        async with AsyncTaskGroup() as group:
            for n in range(12):
                group.start_soon(work, n)
        assert failures == []
        assert h2_tls_server.connections_accepted == 1
        pool.check_invariants()


async def test_prior_knowledge_against_an_http11_server(server: HTTPServer) -> None:
    async with _h2c_pool() as pool:
        with pytest.raises(httpool.RemoteProtocolError):
            await pool.request("GET", server.url + "/", extensions={"timeout": {"connect": 5}})
        pool.check_invariants()
        assert pool.stats().connections == 0


@pytest.mark.parametrize(("limit", "expected"), [(None, 1), (300, 4), (100, 10)])
async def test_one_thousand_streams_use_as_few_connections_as_the_limit_allows(
    make_h2_server: MakeServer, limit: int | None, expected: int
) -> None:
    srv = make_h2_server(max_concurrent_streams=limit)
    statuses: list[int] = []

    async def fetch() -> None:
        statuses.append((await pool.request("GET", srv.url + "/hold")).status)

    async with _h2c_pool(max_connections=10) as pool:
        async with AsyncTaskGroup() as group:
            for _ in range(1000):
                group.start_soon(fetch)
            await _until(lambda: srv.held == 1000, "every stream to reach the server")
            assert pool.stats().streams_in_use == 1000
            assert pool.stats().connections == expected
            srv.release_held()
        assert statuses == [200] * 1000
        assert srv.connections_accepted == expected
        assert srv.max_streams_seen <= (limit or 1000)
        pool.check_invariants()


async def test_requests_beyond_every_slot_wait_for_one(make_h2_server: MakeServer) -> None:
    srv = make_h2_server(max_concurrent_streams=5)
    done: list[int] = []

    async def fetch() -> None:
        done.append((await pool.request("GET", srv.url + "/slow?delay=0.01")).status)

    async with _h2c_pool(max_connections=2) as pool:
        async with AsyncTaskGroup() as group:
            for _ in range(40):
                group.start_soon(fetch)
        assert done == [200] * 40
        assert srv.connections_accepted == 2 and srv.max_streams_seen <= 5
        pool.check_invariants()


async def test_goaway_in_flight_loses_no_request(make_h2_server: MakeServer) -> None:
    srv = make_h2_server(goaway_after=50)
    statuses: list[int] = []

    async def fetch(i: int) -> None:
        # POST too: streams above the GOAWAY's last id were never processed.
        method = "POST" if i % 2 else "GET"
        response = await pool.request(method, srv.url + "/slow?delay=0.2", content=b"x" * i)
        statuses.append(response.status)

    async with _h2c_pool(max_connections=10) as pool:
        async with AsyncTaskGroup() as group:
            for i in range(100):
                group.start_soon(fetch, i)
        assert statuses == [200] * 100
        assert srv.connections_accepted == 2
        assert srv.streams_completed == 100
        pool.check_invariants()
        assert pool.stats().connections == 1


async def test_server_going_away_while_idle(make_h2_server: MakeServer) -> None:
    # Long enough that a loaded machine does not let a *new* connection idle out.
    srv = make_h2_server(idle_timeout=0.3)
    async with _h2c_pool() as pool:
        for _ in range(3):
            assert (await pool.request("GET", srv.url + "/")).status == 200
            await _until(lambda: srv.open_connections == 0, "the server to drop the connection")
        assert srv.connections_accepted == 3
        pool.check_invariants()


async def test_reset_stream_fails_that_stream_only(h2_server: H2Server) -> None:
    results: dict[str, object] = {}

    async def slow() -> None:
        results["slow"] = (await pool.request("GET", h2_server.url + "/slow?delay=0.3")).content

    async def reset() -> None:
        with pytest.raises(httpool.RemoteProtocolError, match="reset"):
            await pool.request("POST", h2_server.url + "/reset?code=2")
        results["reset"] = True

    async with _h2c_pool() as pool:
        async with AsyncTaskGroup() as group:
            group.start_soon(slow)
            group.start_soon(reset)
        assert results == {"slow": b"slow", "reset": True}
        assert (await pool.request("GET", h2_server.url + "/")).status == 200
        assert h2_server.connections_accepted == 1
        pool.check_invariants()


async def test_refused_stream_is_retried_elsewhere(h2_server: H2Server) -> None:
    async with _h2c_pool() as pool:
        # REFUSED_STREAM (7) means not processed: the pool retries, and the
        # server refuses every time, so the retries are bounded.
        with pytest.raises(httpool.RemoteProtocolError, match="attempts"):
            await pool.request("POST", h2_server.url + "/reset?code=7")
        pool.check_invariants()
        assert (await pool.request("GET", h2_server.url + "/")).status == 200


async def test_trailers(h2_server: H2Server) -> None:
    async with _h2c_pool() as pool:
        response = await pool.request("GET", h2_server.url + "/trailers")
        assert response.content == b"body"
        assert response.extensions["trailers"] == [(b"x-checksum", b"abc"), (b"x-done", b"1")]


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_response_fails_that_stream_only(h2_server: H2Server, case: str) -> None:
    # RFC 9113 8.1.1: a malformed response is a stream error. The stream is
    # reset; a request running beside it and the next request both complete
    # on the same connection.
    async def slow() -> None:
        response = await pool.request("GET", h2_server.url + "/slow?delay=0.2")
        assert response.content == b"slow"

    async with _h2c_pool() as pool:
        async with AsyncTaskGroup() as group:
            group.start_soon(slow)
            with pytest.raises(httpool.RemoteProtocolError, match=r"^Malformed"):
                await pool.request("GET", h2_server.url + f"/malformed?case={case}")
        assert (await pool.request("GET", h2_server.url + "/")).content == b"Hello, world!"
        assert h2_server.connections_accepted == 1
        assert h2_server.streams_completed == 3
        pool.check_invariants()


async def test_unusual_but_valid_response_headers_are_kept(h2_server: H2Server) -> None:
    # What RFC 9113 allows and the check must not refuse: an empty value,
    # inner spaces and tabs, bytes above 0x7f in a value, punctuation in a
    # name, "te: trailers".
    headers = [
        (b"x-empty", b""),
        (b"x-inner", b"a b\tc"),
        (b"x-obs-text", "caf\u00e9".encode()),
        (b"x-!#$%&'*+.^_`|~", b"1"),
        (b"te", b"Trailers"),
    ]
    MALFORMED["valid-for-test"] = ([(b":status", b"200"), *headers], [(b"x-sum", b"")])
    try:
        async with _h2c_pool() as pool:
            response = await pool.request("GET", h2_server.url + "/malformed?case=valid-for-test")
    finally:
        del MALFORMED["valid-for-test"]
    assert response.status == 200
    assert response.content == b"x"
    assert response.headers == headers
    assert response.extensions["trailers"] == [(b"x-sum", b"")]


async def test_settings_change_is_honoured(h2_server: H2Server) -> None:
    async def fetch() -> None:
        assert (await pool.request("GET", h2_server.url + "/slow?delay=0.02")).status == 200

    async with _h2c_pool(max_connections=1) as pool:
        await pool.request("GET", h2_server.url + "/settings?max_concurrent_streams=2")
        h2_server.max_streams_seen = 0
        async with AsyncTaskGroup() as group:
            for _ in range(12):
                group.start_soon(fetch)
        assert h2_server.max_streams_seen == 2
        assert h2_server.connections_accepted == 1
        pool.check_invariants()


async def test_ping_is_answered(h2_server: H2Server) -> None:
    async with _h2c_pool() as pool:
        await pool.request("GET", h2_server.url + "/")
        h2_server.send_ping()
        await pool.request("GET", h2_server.url + "/slow?delay=0.05")
        await _until(lambda: h2_server.pings_acked == 1, "the PING ACK")


async def test_stalled_window_times_out_the_upload(make_h2_server: MakeServer) -> None:
    srv = make_h2_server(stall_uploads=True)
    async with _h2c_pool() as pool:
        with pytest.raises(httpool.WriteTimeout):
            await pool.request(
                "POST",
                srv.url + "/upload",
                content=b"x" * 1_000_000,
                extensions={"timeout": {"write": 0.3}},
            )
        pool.check_invariants()
        assert pool.stats().streams_in_use == 0


async def test_early_close_resets_the_stream_and_keeps_the_connection(h2_server: H2Server) -> None:
    async with _h2c_pool() as pool:
        async with pool.stream("GET", h2_server.url + "/bytes?size=10000000") as response:
            async for chunk in response.aiter_stream():
                assert chunk
                break
        assert (await pool.request("GET", h2_server.url + "/")).status == 200
        assert h2_server.connections_accepted == 1
        pool.check_invariants()


async def test_read_timeout_fails_one_stream(h2_server: H2Server) -> None:
    async with _h2c_pool() as pool:
        with pytest.raises(httpool.ReadTimeout):
            await pool.request(
                "GET", h2_server.url + "/hang", extensions={"timeout": {"read": 0.1}}
            )
        assert (await pool.request("GET", h2_server.url + "/")).status == 200
        assert h2_server.connections_accepted == 1
        pool.check_invariants()


async def test_read_timeout_holds_while_another_stream_reads(h2_server: H2Server) -> None:
    """A stream whose reader holds the socket (no timeout) does not hold back
    another stream's read timeout."""
    backend = async_default_backend()
    elapsed: list[float] = []

    async def long_reader() -> None:
        response = await pool.request("GET", h2_server.url + "/slow?delay=1.5")
        assert response.content == b"slow"

    async def impatient() -> None:
        await backend.sleep(0.1)  # the long reader is in the socket by now
        started = time.monotonic()
        with pytest.raises(httpool.ReadTimeout):
            await pool.request(
                "GET", h2_server.url + "/hang", extensions={"timeout": {"read": 0.2}}
            )
        elapsed.append(time.monotonic() - started)

    async with _h2c_pool() as pool:
        await pool.request("GET", h2_server.url + "/")
        async with AsyncTaskGroup() as group:
            group.start_soon(long_reader)
            group.start_soon(impatient)
        assert elapsed[0] < 1.0, elapsed  # not the 1.5 s of the other stream
        pool.check_invariants()


async def _chunks(total: int, size: int = 1 << 20) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (size // 256)
    for _ in range(total // size):
        yield block


async def test_one_hundred_megabytes_each_way_in_bounded_memory(h2_server: H2Server) -> None:
    size = 100 * 1024 * 1024
    tracemalloc.start()
    try:
        async with _h2c_pool() as pool:
            digest = hashlib.sha256()
            received = 0
            url = f"{h2_server.url}/bytes?size={size}"
            async with pool.stream("GET", url) as response:
                async for chunk in response.aiter_stream():
                    digest.update(chunk)
                    received += len(chunk)
            assert received == size and digest.hexdigest() == pattern_sha256(size)
            response = await pool.request("POST", h2_server.url + "/upload", content=_chunks(size))
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256()
    async for block in _chunks(size):
        expected.update(block)
    assert response.content.decode() == f"{size} {expected.hexdigest()}"
    # The windows bound what is buffered: 16 MiB for the connection.
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


async def test_upload_to_a_stream_the_server_resets(h2_server: H2Server) -> None:
    async with _h2c_pool() as pool:
        with pytest.raises(httpool.RemoteProtocolError, match="reset"):
            await pool.request("POST", h2_server.url + "/reset?code=2", content=b"x" * 1_000_000)
        assert (await pool.request("GET", h2_server.url + "/")).status == 200
        assert h2_server.connections_accepted == 1
        pool.check_invariants()


async def test_goaway_during_a_streamed_upload_is_not_replayed(make_h2_server: MakeServer) -> None:
    srv = make_h2_server(goaway_after=1)
    backend = async_default_backend()
    outcomes: list[object] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        await backend.sleep(0.2)  # the GOAWAY arrives meanwhile
        yield b"second"

    async def first() -> None:
        outcomes.append((await pool.request("GET", srv.url + "/slow?delay=0.3")).status)

    async def second() -> None:
        await _until(lambda: srv.streams_received == 1, "the first stream")
        try:
            await pool.request("POST", srv.url + "/upload", content=body())
        except httpool.RemoteProtocolError as exc:
            outcomes.append(str(exc))

    async with _h2c_pool() as pool:
        async with AsyncTaskGroup() as group:
            group.start_soon(first)
            group.start_soon(second)
        pool.check_invariants()
    assert 200 in outcomes
    assert any("cannot be sent again" in str(o) for o in outcomes) or outcomes.count(200) == 1, (
        outcomes
    )


async def test_mixed_traffic_with_timeouts_and_early_closes(h2_server: H2Server) -> None:
    rng = random.Random(7)
    plans = [rng.choice(["ok", "timeout", "early", "big"]) for _ in range(64)]
    outcomes: list[str] = []

    async def run(plan: str) -> None:
        url = h2_server.url
        if plan == "timeout":
            with pytest.raises(httpool.ReadTimeout):
                await pool.request("GET", url + "/hang", extensions={"timeout": {"read": 0.2}})
        elif plan == "early":
            async with pool.stream("GET", url + "/bytes?size=2000000") as response:
                async for _ in response.aiter_stream():
                    break
        elif plan == "big":
            assert len((await pool.request("GET", url + "/bytes?size=300000")).content) == 300000
        else:
            assert (await pool.request("GET", url + "/")).content == b"Hello, world!"
        outcomes.append(plan)

    async with _h2c_pool(max_connections=4) as pool:
        async with AsyncTaskGroup() as group:
            for plan in plans:
                group.start_soon(run, plan)
        assert sorted(outcomes) == sorted(plans)
        pool.check_invariants()
        stats = pool.stats()
        assert stats.streams_in_use == 0 and stats.queued == 0
        assert (await pool.request("GET", h2_server.url + "/")).status == 200


SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
BAD_FRAME = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"  # DATA on stream 0: forbidden


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ([send(b"HTTP/1.1 400 Bad Request\r\n\r\n"), CLOSE], httpool.RemoteProtocolError),
        ([HANG], httpool.RemoteProtocolError),  # no SETTINGS within the connect timeout
        ([send(SETTINGS), CLOSE], httpool.RemoteProtocolError),
        ([send(SETTINGS), pause(0.1), RESET], httpool.ReadError),
        ([send(SETTINGS + BAD_FRAME), HANG], httpool.RemoteProtocolError),
        ([send(SETTINGS), HANG], httpool.ReadTimeout),
    ],
    ids=["http11-reply", "silent", "close", "reset", "bad-frame", "no-response"],
)
async def test_broken_http2_servers(script: Script, error: type[Exception]) -> None:
    with FaultServer(on_accept=[script]) as srv:
        async with _h2c_pool() as pool:
            timeout = {"connect": 0.3, "read": 0.3}
            with pytest.raises(error):
                await pool.request("GET", srv.url + "/", extensions={"timeout": timeout})
            pool.check_invariants()
            assert pool.stats().connections == 0 or error is httpool.ReadTimeout
            assert pool.stats().streams_in_use == 0
