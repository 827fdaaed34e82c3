"""A network stream whose every read and write ends by a request's total deadline.

Theory of operation: an HTTP/1.1 connection wraps its stream in this for
the one exchange whose request has a total timeout (``_deadline.py``) and
uses the stream itself otherwise, so that requests without one pay nothing.
Each read and write waits for the smaller of its own timeout and what is
left of the deadline; a wait that the deadline cut short raises ReadTimeout
or WriteTimeout naming the total. Closing and the extra information go to
the stream unchanged. It knows nothing of HTTP.
"""

from __future__ import annotations

import ssl
import typing

from .._backends.base import AsyncNetworkStream
from .._deadline import Deadline
from .._exceptions import ReadTimeout, WriteTimeout

_READING = "reading the response"
_WRITING = "sending the request"


class AsyncDeadlineStream(AsyncNetworkStream):
    """``stream``, with every wait bounded by ``deadline``."""

    __slots__ = ("_deadline", "_stream")

    def __init__(self, stream: AsyncNetworkStream, deadline: Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        limit, by_deadline = self._deadline.limit(timeout, ReadTimeout, _READING)
        try:
            return await self._stream.read(max_bytes, limit)
        except ReadTimeout as exc:
            if by_deadline:
                raise self._deadline.error(ReadTimeout, _READING) from exc
            raise

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        limit, by_deadline = self._deadline.limit(timeout, WriteTimeout, _WRITING)
        try:
            await self._stream.write(buffer, limit)
        except WriteTimeout as exc:
            if by_deadline:
                raise self._deadline.error(WriteTimeout, _WRITING) from exc
            raise

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        return await self._stream.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)
