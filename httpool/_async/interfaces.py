"""What the pool needs from a connection, and the request helpers they share.

Theory of operation: the pool never looks inside a connection. It hands a
request to ``handle_async_request`` and, when the response is closed, asks
a handful of O(1) questions (``is_closed``, ``is_idle``, ``capacity``) to
decide where the connection goes next, and after a failure one more
(``response_started``) to decide whether the request may be sent again.
``capacity`` is how many requests the connection can carry at once right
now: 1 for HTTP/1.1, the peer's stream limit for a multiplexing connection, 0
when it takes no new request. The pool keeps the count of requests in flight
itself.

``aconnect`` establishes the connection (TCP, TLS, protocol choice) as a
separate step, so the pool learns the protocol and capacity the moment they
are known and can give a multiplexing connection's spare slots to waiters.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator

from .._models import Extensions, HeaderTypes, Request, Response, include_request_headers
from .._urls import URL, Origin


class AsyncRequestInterface:
    """``request()`` and ``stream()`` on top of ``handle_async_request``."""

    async def request(
        self,
        method: bytes | str,
        url: URL | bytes | str,
        *,
        headers: HeaderTypes = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        extensions: Extensions | None = None,
    ) -> Response:
        """Send a request and read the whole response body.

        Returns the response with ``response.content`` filled in and the
        connection already released. Raises the httpool error of the failure.
        """
        request = Request(method, url, headers=headers, content=content, extensions=extensions)
        include_request_headers(request)
        response = await self.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: bytes | str,
        url: URL | bytes | str,
        *,
        headers: HeaderTypes = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        extensions: Extensions | None = None,
    ) -> AsyncIterator[Response]:
        """Send a request and yield the response with its body unread.

        The body is read with ``response.aiter_stream()``; leaving the block
        closes the response and releases the connection.
        """
        request = Request(method, url, headers=headers, content=content, extensions=extensions)
        include_request_headers(request)
        response = await self.handle_async_request(request)
        try:
            yield response
        finally:
            await response.aclose()

    async def handle_async_request(self, request: Request) -> Response:
        raise NotImplementedError()  # pragma: no cover


class AsyncConnectionInterface(AsyncRequestInterface):
    """A connection as the pool sees it. Every query is O(1) and does no I/O,
    except ``is_alive`` which may poll the socket once."""

    async def aconnect(self, request: Request) -> None:
        """Establish the connection (idempotent). Raises ``ConnectError``,
        ``ConnectTimeout`` or ``UnsupportedProtocol``."""
        raise NotImplementedError()  # pragma: no cover

    async def aclose(self) -> None:
        raise NotImplementedError()  # pragma: no cover

    def info(self) -> str:
        raise NotImplementedError()  # pragma: no cover

    def can_handle_request(self, origin: Origin) -> bool:
        raise NotImplementedError()  # pragma: no cover

    def capacity(self) -> int:
        """Requests this connection can carry at once now; 0 when it takes no more."""
        raise NotImplementedError()  # pragma: no cover

    def is_available(self) -> bool:
        raise NotImplementedError()  # pragma: no cover

    def has_expired(self) -> bool:
        raise NotImplementedError()  # pragma: no cover

    def is_idle(self) -> bool:
        raise NotImplementedError()  # pragma: no cover

    def is_closed(self) -> bool:
        raise NotImplementedError()  # pragma: no cover

    def is_alive(self) -> bool:
        """Liveness probe before reuse: ``False`` if the peer has closed the
        idle connection or sent data nobody asked for."""
        raise NotImplementedError()  # pragma: no cover

    @property
    def response_started(self) -> bool:
        """Whether any byte of the current (or last) response has arrived.

        The pool sends a request again elsewhere only when it failed on a
        reused connection before that (see the pool's retry rule). A
        connection that cannot tell, such as one written for httpcore, keeps
        this default: ``True``, never retried.
        """
        return True
