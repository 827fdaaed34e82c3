"""The throughput paths of the asyncio and trio backends keep their promises.

The asyncio protocol hands out the ``bytes`` the loop delivered without
copying them when a read asks for at least a whole chunk, slices a larger one
exactly once per read, and pauses and resumes the transport at its marks.
The trio stream reads plain sockets directly, yet stays a cancellation point
on every read and lets other tasks run at least every few reads.

Runtime-specific, so these are plain tests that start their own event loop.
"""

from __future__ import annotations

import asyncio
import socket
import typing

import pytest

from httpool import ReadError
from httpool._backends import asyncio as asyncio_backend


class _FakeTransport:
    """Records the flow-control calls the protocol makes."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


def _protocol() -> tuple[asyncio_backend._StreamProtocol, _FakeTransport]:
    # take() and data_received() never touch the loop when nobody waits.
    protocol = asyncio_backend._StreamProtocol(typing.cast(asyncio.AbstractEventLoop, None))
    transport = _FakeTransport()
    protocol.connection_made(typing.cast(asyncio.Transport, transport))
    return protocol, transport


def test_asyncio_whole_chunks_are_not_copied() -> None:
    protocol, _ = _protocol()
    first, second = b"a" * 1000, b"b" * 10
    protocol.data_received(first)
    protocol.data_received(second)
    assert protocol.take(65536) is first  # one chunk per read, the object itself
    assert protocol.take(65536) is second
    assert protocol.buffered == 0 and not protocol.chunks


def test_asyncio_large_chunk_is_sliced_in_order() -> None:
    protocol, _ = _protocol()
    chunk = bytes(range(256)) * 1000
    protocol.data_received(chunk)
    protocol.data_received(b"tail")
    pieces = []
    while protocol.buffered:
        pieces.append(protocol.take(7000))
    assert [len(piece) for piece in pieces[:-2]] == [7000] * 36
    assert b"".join(pieces) == chunk + b"tail"
    assert pieces[-1] == b"tail" and protocol.offset == 0


def test_asyncio_empty_data_is_not_end_of_stream() -> None:
    protocol, _ = _protocol()
    protocol.data_received(b"")
    protocol.data_received(b"x")
    assert protocol.take(10) == b"x"


def test_asyncio_flow_control_marks() -> None:
    protocol, transport = _protocol()
    chunk = b"z" * (64 * 1024)
    for _ in range(4):
        protocol.data_received(chunk)
    assert transport.calls == []  # 256 KiB buffered: at the mark, not above it
    protocol.data_received(b"!")
    assert transport.calls == ["pause"]
    protocol.data_received(chunk)  # what the loop had read already still counts
    assert transport.calls == ["pause"]
    while protocol.buffered > asyncio_backend._LOW_WATER + len(chunk):
        protocol.take(len(chunk))
    assert transport.calls == ["pause"]
    protocol.take(len(chunk))
    assert transport.calls == ["pause", "resume"]
    while protocol.buffered:
        protocol.take(len(chunk))
    assert not protocol.chunks and transport.calls == ["pause", "resume"]


def _trio_pair() -> tuple[typing.Any, socket.socket]:
    import trio

    from httpool._backends.trio import TrioStream

    ours, theirs = socket.socketpair()
    sock = trio.socket.from_stdlib_socket(ours)
    return TrioStream(trio.SocketStream(sock), sock), theirs


def test_trio_direct_reads_still_let_other_tasks_run() -> None:
    trio = pytest.importorskip("trio")
    from httpool._backends.trio import _READS_PER_YIELD

    async def main() -> tuple[int, bytes]:
        stream, peer = _trio_pair()
        with peer:
            peer.sendall(bytes(range(40)))
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await trio.lowlevel.checkpoint()

            received = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                await trio.lowlevel.checkpoint()  # let the ticker start
                ticks = 0
                for _ in range(40):  # the data is there: no read has to wait
                    received.append(await stream.read(1))
                nursery.cancel_scope.cancel()
            await stream.aclose()
        return ticks, b"".join(received)

    ticks, data = trio.run(main)
    assert data == bytes(range(40))
    # Fewer scheduler passes than reads, but one every few reads (give or
    # take the first and the last: trio shuffles each batch of runnable tasks).
    assert 40 // _READS_PER_YIELD - 2 <= ticks <= 40 // 2


def test_trio_direct_read_is_a_cancellation_point() -> None:
    trio = pytest.importorskip("trio")

    async def main() -> bool:
        stream, peer = _trio_pair()
        with peer:
            peer.sendall(b"ready")
            with trio.CancelScope() as scope:
                scope.cancel()
                await stream.read(5)
            await stream.aclose()
        return bool(scope.cancelled_caught)

    assert trio.run(main)


def test_trio_direct_read_after_close_and_timeout() -> None:
    trio = pytest.importorskip("trio")
    from httpool import ReadTimeout

    async def main() -> None:
        stream, peer = _trio_pair()
        with peer:
            with pytest.raises(ReadTimeout):
                await stream.read(10, timeout=0.01)
            peer.sendall(b"late")
            assert await stream.read(10, timeout=1.0) == b"late"
            await stream.aclose()
            with pytest.raises(ReadError):
                await stream.read(10)

    trio.run(main)


class _RecordingStream:
    """Serves one canned response; records how many bytes each read asked for."""

    def __init__(self, data: bytes, read_size: int | None) -> None:
        self._data = data
        self.asked: list[int] = []
        if read_size is not None:
            self.read_size = read_size

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.asked.append(max_bytes)
        data, self._data = self._data[:max_bytes], self._data[max_bytes:]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def get_extra_info(self, info: str) -> object:
        return None


@pytest.mark.parametrize(
    ("read_size", "expected"), [(None, 64 * 1024), (256 * 1024, 256 * 1024), (0, 64 * 1024)]
)
def test_http11_reads_bodies_in_the_streams_read_size(read_size: int | None, expected: int) -> None:
    # The asyncio stream says 256 KiB: its transport's chunks are then handed
    # over whole, not sliced into 64 KiB copies. Without the attribute (or
    # with a useless one), 64 KiB.
    from httpool import Origin, Request
    from httpool._async.http11 import AsyncHTTP11Connection

    size = 1024 * 1024
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
    stream = _RecordingStream(head + bytes(size), read_size)

    async def fetch() -> list[int]:
        connection = AsyncHTTP11Connection(Origin(b"http", b"example.com", 80), stream)  # type: ignore[arg-type]
        response = await connection.handle_async_request(
            Request("GET", "http://example.com/", headers=[(b"Host", b"example.com")])
        )
        lengths = [len(chunk) async for chunk in response.aiter_stream()]
        await response.aclose()
        return lengths

    lengths = asyncio.run(fetch())
    assert sum(lengths) == size
    body_reads = stream.asked[1:]  # the first read took the head (and some body)
    assert body_reads and max(body_reads) == expected
    assert max(lengths) == expected
