"""The scripted mock backends: replay, reply mode, recorded writes, virtual time.

The sync tests use ``MockBackend`` directly; the ``async def`` tests run on
asyncio and on trio through the hook in ``conftest.py``. What every stream
must do (EOF, close twice, extra info) is checked on the mock by the
conformance suite in ``tests/_async/test_backends.py``.
"""

from __future__ import annotations

import pytest

from httpool._backends.mock import (
    AsyncMockBackend,
    AsyncMockStream,
    MockBackend,
    MockStream,
)
from httpool._exceptions import ConnectError, ReadError, ReadTimeout, WriteError
from httpool._ssl import default_ssl_context
from tests.support.concurrency import AsyncTaskGroup

REQUEST = b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def read_all(stream: MockStream, max_bytes: int = 65536) -> list[bytes]:
    chunks = []
    while chunk := stream.read(max_bytes):
        chunks.append(chunk)
    return chunks


def connect(backend: MockBackend) -> MockStream:
    stream = backend.connect_tcp("example.org", 80)
    assert isinstance(stream, MockStream)
    return stream


# Sync.


def test_each_connect_replays_a_fresh_copy() -> None:
    script = [b"one", b"two"]
    backend = MockBackend(script)
    script.append(b"added later, not replayed")
    first = connect(backend)
    assert read_all(first) == [b"one", b"two"]
    assert first.read(10) == b""
    second = connect(backend)
    unix = backend.connect_unix_socket("/run/app.sock")
    assert read_all(second) == [b"one", b"two"]
    assert isinstance(unix, MockStream)
    assert read_all(unix) == [b"one", b"two"]
    assert backend.streams == [first, second, unix]
    assert backend.connects == 3


def test_reads_are_split_to_max_bytes() -> None:
    stream = connect(MockBackend([b"abcdefgh", b"ij"]))
    assert read_all(stream, max_bytes=3) == [b"abc", b"def", b"gh", b"ij"]


def test_script_exceptions_are_raised_in_place() -> None:
    reset = ConnectionResetError("reset by peer")
    backend = MockBackend([b"before", reset, ReadTimeout("scripted"), b"after"])
    for _ in range(2):  # every stream meets the same exceptions
        stream = connect(backend)
        assert stream.read(100) == b"before"
        # An OSError comes out mapped, as from a real backend.
        with pytest.raises(ReadError) as info:
            stream.read(100)
        assert info.value.__cause__ is reset
        with pytest.raises(ReadTimeout, match="scripted"):
            stream.read(100)
        assert stream.read(100) == b"after"


def test_writes_are_recorded() -> None:
    stream = connect(MockBackend())
    stream.write(b"head")
    stream.write(b"")
    stream.write(bytearray(b"body"))  # type: ignore[arg-type]
    assert stream.written == [b"head", b"body"]
    assert all(type(chunk) is bytes for chunk in stream.written)
    stream.close()
    with pytest.raises(WriteError):
        stream.write(b"late")
    with pytest.raises(ReadError):
        stream.read(10)


def test_reply_mode_answers_every_request_head() -> None:
    backend = MockBackend(reply=RESPONSE)
    stream = connect(backend)
    assert stream.read(100) == b""
    for _ in range(3):
        stream.write(REQUEST)
        stream.write(b"a body that mentions no HTTP version")
        assert read_all(stream) == [RESPONSE]
    assert len(stream.written) == 6


def test_reply_mode_follows_the_script() -> None:
    stream = connect(MockBackend([b"greeting"], reply=RESPONSE))
    stream.write(REQUEST)
    assert read_all(stream) == [b"greeting", RESPONSE]


def test_virtual_clock() -> None:
    backend = MockBackend()
    assert backend.now() == 0.0
    backend.advance(5.0)
    backend.sleep(2.5)
    assert backend.now() == 7.5


def test_connect_error_is_raised_once() -> None:
    backend = MockBackend([b"data"])
    backend.connect_error = ConnectError("refused")
    with pytest.raises(ConnectError, match="refused"):
        connect(backend)
    assert backend.connect_error is None
    assert backend.connects == 1
    assert backend.streams == []
    assert read_all(connect(backend)) == [b"data"]
    assert backend.connects == 2


def test_peer_close_makes_the_stream_readable() -> None:
    stream = connect(MockBackend([b"data"]))
    assert stream.get_extra_info("is_readable") is False
    stream.peer_closed = True
    assert stream.get_extra_info("is_readable") is True
    other = connect(MockBackend())
    other.close_by_peer()
    assert other.get_extra_info("is_readable") is True


@pytest.mark.parametrize(("http2", "alpn"), [(False, "http/1.1"), (True, "h2")])
def test_tls_is_a_no_op_that_reports_alpn(http2: bool, alpn: str) -> None:
    stream = connect(MockBackend(http2=http2))
    tls = stream.start_tls(default_ssl_context(), server_hostname="example.org", timeout=1.0)
    assert tls is stream
    assert tls.get_extra_info("ssl_object").selected_alpn_protocol() == alpn
    assert tls.get_extra_info("socket") is None


# Async, on asyncio and trio.


async def test_async_replay_reply_and_record() -> None:
    backend = AsyncMockBackend([b"hello"], reply=RESPONSE)
    stream = await backend.connect_tcp("example.org", 80)
    assert isinstance(stream, AsyncMockStream)
    assert await stream.read(3) == b"hel"
    await stream.write(REQUEST)
    assert await stream.read(100) == b"lo"
    assert await stream.read(100) == RESPONSE
    assert await stream.read(100) == b""
    assert stream.written == [REQUEST]
    assert backend.streams == [stream]
    await stream.aclose()
    with pytest.raises(ReadError):
        await stream.read(10)


async def test_async_connect_error_and_count() -> None:
    backend = AsyncMockBackend()
    backend.connect_error = OSError("unreachable")
    with pytest.raises(OSError, match="unreachable"):
        await backend.connect_unix_socket("/run/app.sock")
    await backend.connect_unix_socket("/run/app.sock")
    assert backend.connects == 2
    assert len(backend.streams) == 1


async def test_async_sleep_advances_the_clock_and_yields() -> None:
    backend = AsyncMockBackend()
    log: list[str] = []

    async def sleeper() -> None:
        await backend.sleep(30.0)
        log.append("sleeper woke")

    async def other() -> None:
        log.append("other ran")

    async with AsyncTaskGroup() as group:
        group.start_soon(sleeper)
        group.start_soon(other)
    assert backend.now() == 30.0
    assert sorted(log) == ["other ran", "sleeper woke"]
    # The sleep suspended: the other task ran before the sleeper resumed.
    assert log.index("other ran") < log.index("sleeper woke")


async def test_async_reads_and_writes_interleave() -> None:
    backend = AsyncMockBackend([b"0", b"1", b"2"])
    log: list[tuple[str, bytes]] = []

    async def reader(name: str) -> None:
        stream = await backend.connect_tcp("example.org", 80)
        while chunk := await stream.read(10):
            log.append((name, chunk))
            await stream.write(chunk)

    async with AsyncTaskGroup() as group:
        group.start_soon(reader, "a")
        group.start_soon(reader, "b")
    # Each read and write yields, so the two tasks advance in lock step
    # (trio may run either first within a round).
    rounds = [sorted(log[i : i + 2]) for i in range(0, len(log), 2)]
    assert rounds == [[("a", n), ("b", n)] for n in (b"0", b"1", b"2")]
    assert [s.written for s in backend.streams] == [[b"0", b"1", b"2"]] * 2
