"""A multiplexing connection on the mock backend, standing in for HTTP/2.

It lets the pool's capacity bookkeeping be tested before HTTP/2 exists: it
connects through the backend, reports ``capacity`` streams, records how many
requests it carries at once, and answers each with a canned body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from httpool import AsyncConnectionInterface, AsyncConnectionPool, Origin, Request, Response
from httpool._backends.base import AsyncNetworkBackend, AsyncNetworkStream


class FakeBody:
    def __init__(self, connection: AsyncFakeMultiplexConnection) -> None:
        self._connection = connection
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await self._connection.backend.sleep(0)
        yield b"multiplexed"

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._connection.streams -= 1


class AsyncFakeMultiplexConnection(AsyncConnectionInterface):
    def __init__(self, origin: Origin, backend: AsyncNetworkBackend, streams: int) -> None:
        self.origin = origin
        self.backend = backend
        self.max_streams = streams
        self.network_stream: AsyncNetworkStream | None = None
        self.streams = 0
        self.peak = 0
        self.closed = False

    async def aconnect(self, request: Request) -> None:
        if self.network_stream is None:
            self.network_stream = await self.backend.connect_tcp(self.origin.host.decode(), 80)

    async def handle_async_request(self, request: Request) -> Response:
        await self.aconnect(request)
        assert self.streams < self.max_streams, "more streams than the connection allows"
        self.streams += 1
        self.peak = max(self.peak, self.streams)
        await self.backend.sleep(0)
        return Response(200, content=FakeBody(self), extensions={"http_version": b"HTTP/2"})

    async def aclose(self) -> None:
        self.closed = True
        if self.network_stream is not None:
            await self.network_stream.aclose()

    def capacity(self) -> int:
        return 0 if self.closed else self.max_streams

    def can_handle_request(self, origin: Origin) -> bool:
        return origin == self.origin

    def is_available(self) -> bool:
        return not self.closed and self.streams < self.max_streams

    def has_expired(self) -> bool:
        return False

    def is_idle(self) -> bool:
        return self.streams == 0

    def is_closed(self) -> bool:
        return self.closed

    def is_alive(self) -> bool:
        return not self.closed

    def info(self) -> str:
        return f"FAKE-MUX, {self.streams}/{self.max_streams}"


class AsyncFakeMultiplexPool(AsyncConnectionPool):
    """A pool whose every connection is a fake multiplexing one."""

    def __init__(self, streams: int, backend: AsyncNetworkBackend, **kwargs: object) -> None:
        self.streams = streams
        self.made: list[AsyncFakeMultiplexConnection] = []
        super().__init__(network_backend=backend, http1=False, http2=True, **kwargs)  # type: ignore[arg-type]

    async def __aenter__(self) -> AsyncFakeMultiplexPool:
        # The pool's own returns an AsyncConnectionPool; the tests read ``made``.
        await super().__aenter__()
        return self

    def create_connection(self, origin: Origin) -> AsyncConnectionInterface:
        conn = AsyncFakeMultiplexConnection(origin, self._network_backend, self.streams)
        self.made.append(conn)
        return conn
