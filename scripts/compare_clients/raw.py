"""The floor: raw-socket clients that do the least an HTTP/1.1 client can do.

Each connection sends pre-built request bytes and parses only the response's
Content-Length (lower-cased head, one ``find``), then counts body bytes
without keeping them; keep-alive always, no pipelining, no validation. A
tiny free list hands connections to workers (threads, tasks), opening up to
the workload's number. Sync: blocking sockets with TCP_NODELAY and
``recv_into`` a reused buffer; asyncio: a ``Protocol`` per connection; trio:
``trio.SocketStream``. For HTTP/2 the floor is the h2 state machine alone,
driven by an asyncio ``Protocol`` on one connection (h2c, prior knowledge).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
import typing
import urllib.parse

from compare_clients import Workload

RUNTIMES = frozenset({"sync", "asyncio", "trio"})
_SCRATCH = 256 * 1024


def supports(library: str, workload: Workload) -> bool:
    if workload.http2:
        return workload.runtime == "asyncio"
    return workload.runtime in RUNTIMES


def _target(url: str) -> tuple[str, int, bytes]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port, (parts.path or "/").encode("ascii")


def _request_bytes(url: str) -> bytes:
    host, port, path = _target(url)
    return b"GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, host.encode("ascii"), port)


def _head(buf: bytearray) -> tuple[int, int] | None:
    """(head length, Content-Length) once ``buf`` holds a whole head, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        raise ValueError("the raw client needs a Content-Length")
    start += len(b"\r\ncontent-length:")
    stop = head.find(b"\r\n", start)
    return end + 4, int(head[start : stop if stop >= 0 else len(head)])


# Sync.


class _SyncConnection:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.scratch = memoryview(bytearray(_SCRATCH))

    def exchange(self, request: bytes) -> int:
        sock, buf = self.sock, self.buf
        sock.sendall(request)
        while (parsed := _head(buf)) is None:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buf += chunk
        head_length, length = parsed
        have = len(buf) - head_length
        buf.clear()  # no pipelining: nothing follows the body
        while have < length:
            received = sock.recv_into(self.scratch, min(_SCRATCH, length - have))
            if not received:
                raise ConnectionError("the server closed the connection")
            have += received
        return length


class SyncClient:
    def __init__(self, url: str, workload: Workload) -> None:
        self._host, self._port, _ = _target(url)
        self._request = _request_bytes(url)
        self._free: list[_SyncConnection] = []
        self._all: list[_SyncConnection] = []
        self._lock = threading.Lock()

    def get(self) -> int:
        with self._lock:
            connection = self._free.pop() if self._free else None
        if connection is None:
            connection = _SyncConnection(self._host, self._port)
            with self._lock:
                self._all.append(connection)
        length = connection.exchange(self._request)
        with self._lock:
            self._free.append(connection)
        return length

    stream = get

    def close(self) -> None:
        for connection in self._all:
            connection.sock.close()


def open_sync(library: str, url: str, workload: Workload) -> SyncClient:
    return SyncClient(url, workload)


# asyncio.


class _RawProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.length = -1  # the body length once the head has arrived
        self.have = 0
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.length < 0:
            self.buf += data
            parsed = _head(self.buf)
            if parsed is None:
                return
            head_length, self.length = parsed
            self.have = len(self.buf) - head_length
            self.buf.clear()
        else:
            self.have += len(data)
        if self.have >= self.length and self.waiter is not None:
            self.waiter.set_result(self.length)
            self.length = -1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


class AsyncioClient:
    def __init__(self, url: str, workload: Workload) -> None:
        self._host, self._port, _ = _target(url)
        self._request = _request_bytes(url)
        self._limit = workload.connections
        self._free: list[_RawProtocol] = []
        self._all: list[_RawProtocol] = []
        self._opening = 0
        self._waiters: collections.deque[asyncio.Future[_RawProtocol]] = collections.deque()

    async def _acquire(self) -> _RawProtocol:
        if self._free:
            return self._free.pop()
        loop = asyncio.get_running_loop()
        if self._opening < self._limit:
            self._opening += 1  # counted before the await: no overshoot
            _, protocol = await loop.create_connection(_RawProtocol, self._host, self._port)
            self._all.append(protocol)
            return protocol
        waiter: asyncio.Future[_RawProtocol] = loop.create_future()
        self._waiters.append(waiter)
        return await waiter

    async def get(self) -> int:
        protocol = await self._acquire()
        length = await protocol.exchange(self._request)
        if self._waiters:
            self._waiters.popleft().set_result(protocol)
        else:
            self._free.append(protocol)
        return length

    stream = get

    async def aclose(self) -> None:
        for protocol in self._all:
            if protocol.transport is not None:
                protocol.transport.close()
        await asyncio.sleep(0)  # let the transports close before the loop does


# trio.


class _TrioConnection:
    """A ``trio.socket`` socket: ``recv_into`` a reused buffer, as the sync floor
    does (``SocketStream.receive_some`` allocates a buffer per call)."""

    def __init__(self, sock: typing.Any) -> None:
        self.sock = sock
        self.scratch = memoryview(bytearray(_SCRATCH))

    @classmethod
    async def open(cls, host: str, port: int) -> _TrioConnection:
        import trio

        sock = trio.socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await sock.connect((host, port))
        return cls(sock)

    async def exchange(self, request: bytes) -> int:
        sock, scratch = self.sock, self.scratch
        sent = 0
        while sent < len(request):
            sent += await sock.send(request[sent:])
        buf = bytearray()
        while (parsed := _head(buf)) is None:
            received = await sock.recv_into(scratch)
            if not received:
                raise ConnectionError("the server closed the connection")
            buf += scratch[:received]
        head_length, length = parsed
        have = len(buf) - head_length
        while have < length:
            received = await sock.recv_into(scratch, min(_SCRATCH, length - have))
            if not received:
                raise ConnectionError("the server closed the connection")
            have += received
        return length


class TrioClient:
    def __init__(self, url: str, workload: Workload) -> None:
        import trio

        self._host, self._port, _ = _target(url)
        self._request = _request_bytes(url)
        self._limit = workload.connections
        self._opened: list[_TrioConnection] = []
        self._send, self._receive = trio.open_memory_channel[_TrioConnection](workload.connections)
        self._pending = 0

    async def get(self) -> int:
        import trio

        try:
            connection = self._receive.receive_nowait()
        except trio.WouldBlock:
            if self._pending < self._limit:
                self._pending += 1
                connection = await _TrioConnection.open(self._host, self._port)
                self._opened.append(connection)
            else:
                connection = await self._receive.receive()
        length = await connection.exchange(self._request)
        self._send.send_nowait(connection)
        return length

    stream = get

    async def aclose(self) -> None:
        for connection in self._opened:
            connection.sock.close()


# HTTP/2: the h2 state machine alone, on one asyncio connection.


class _H2Protocol(asyncio.Protocol):
    def __init__(self, authority: bytes, path: bytes) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.headers = [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", authority),
            (b":path", path),
        ]
        self.streams: dict[int, tuple[asyncio.Future[int], list[int]]] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        from h2.events import DataReceived, StreamEnded, StreamReset

        h2 = self.h2
        for event in h2.receive_data(data):
            if isinstance(event, DataReceived) and event.stream_id is not None:
                self.streams[event.stream_id][1][0] += len(event.data)
                h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded) and event.stream_id is not None:
                future, count = self.streams.pop(event.stream_id)
                future.set_result(count[0])
            elif isinstance(event, StreamReset) and event.stream_id is not None:
                future, _ = self.streams.pop(event.stream_id)
                future.set_exception(ConnectionError("stream reset"))
        out = h2.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    async def exchange(self) -> int:
        assert self.transport is not None
        stream_id = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream_id, self.headers, end_stream=True)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.streams[stream_id] = (future, [0])
        self.transport.write(self.h2.data_to_send())
        return await future


class H2Client:
    def __init__(self, protocol: _H2Protocol) -> None:
        self._protocol = protocol

    async def get(self) -> int:
        return await self._protocol.exchange()

    stream = get

    async def aclose(self) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.close()
        await asyncio.sleep(0)


async def open_async(library: str, url: str, workload: Workload) -> typing.Any:
    if workload.http2:
        host, port, path = _target(url)
        authority = f"{host}:{port}".encode("ascii")
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: _H2Protocol(authority, path), host, port)
        return H2Client(protocol)
    if workload.runtime == "trio":
        return TrioClient(url, workload)
    return AsyncioClient(url, workload)
