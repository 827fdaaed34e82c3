"""httpx transports on httpool: ``httpx.Client(transport=httpool.httpx.HTTPTransport())``.

Theory of operation: ``HTTPTransport`` and ``AsyncHTTPTransport`` take the
constructor arguments of ``httpx.HTTPTransport`` and ``httpx.AsyncHTTPTransport``
and own one httpool pool (``transport.pool``, whose ``stats()`` is the pool's
snapshot). Each httpx request becomes an ``httpool.Request`` whose body is the
httpx request stream, sent as it is produced (an in-memory body is passed as
bytes, so the pool's idempotent retry can replay it); each response body is
handed to httpx as a stream read from the connection as httpx consumes it.
Every httpool error, whether raised while the request is built, sent, its body
read or the transport closed, becomes the httpx exception httpx's own transport
would raise for the matching httpcore error (``httpool.ReadTimeout`` ->
``httpx.ReadTimeout``, ...), chained to the original.

This module imports httpx (the ``httpx`` extra); ``import httpool`` does not
import it.
"""

from __future__ import annotations

import ssl
import types
import typing
from collections.abc import AsyncIterator, Iterable, Iterator

import httpx

import httpool

from ._backends.base import SOCKET_OPTION
from ._exceptions import ConvertExceptions, HttpoolError

__all__ = ["AsyncHTTPTransport", "HTTPTransport"]

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's

# httpool's exceptions -> httpx's, as httpx maps httpcore's. The base class
# last: anything else httpool raises is still an httpx.TransportError.
_EXCEPTIONS: dict[type[HttpoolError], type[httpx.TransportError]] = {
    httpool.ConnectTimeout: httpx.ConnectTimeout,
    httpool.ReadTimeout: httpx.ReadTimeout,
    httpool.WriteTimeout: httpx.WriteTimeout,
    httpool.PoolTimeout: httpx.PoolTimeout,
    httpool.TimeoutException: httpx.TimeoutException,
    httpool.ConnectError: httpx.ConnectError,
    httpool.ReadError: httpx.ReadError,
    httpool.WriteError: httpx.WriteError,
    httpool.NetworkError: httpx.NetworkError,
    httpool.ProxyError: httpx.ProxyError,
    httpool.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpool.LocalProtocolError: httpx.LocalProtocolError,
    httpool.RemoteProtocolError: httpx.RemoteProtocolError,
    httpool.ProtocolError: httpx.ProtocolError,
    HttpoolError: httpx.TransportError,
}


def httpx_exception(exc: HttpoolError) -> httpx.TransportError:
    """The httpx exception for ``exc``: that of its most specific mapped class."""
    for cls in type(exc).__mro__:
        mapped = _EXCEPTIONS.get(cls)
        if mapped is not None:
            return mapped(str(exc))
    raise AssertionError("unreachable: HttpoolError is mapped")  # pragma: no cover


def _to_httpx(exc: Exception) -> BaseException | None:
    return httpx_exception(exc) if isinstance(exc, HttpoolError) else None


def map_httpool_exceptions() -> ConvertExceptions:
    """Re-raise any httpool error as its httpx counterpart, chained to it."""
    return ConvertExceptions(_to_httpx)


def _pool_arguments(
    verify: ssl.SSLContext | str | bool,
    cert: typing.Any,
    trust_env: bool,
    limits: httpx.Limits,
    proxy: typing.Any,
) -> dict[str, typing.Any]:
    """The pool's keyword arguments that need translating from httpx's."""
    arguments: dict[str, typing.Any] = {
        "ssl_context": httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }
    if proxy is None:
        return arguments
    proxy = httpx.Proxy(url=proxy) if isinstance(proxy, (str, httpx.URL)) else proxy
    arguments["proxy"] = httpool.Proxy(
        url=httpool.URL(
            scheme=proxy.url.raw_scheme,
            host=proxy.url.raw_host,
            port=proxy.url.port,
            target=proxy.url.raw_path,
        ),
        auth=proxy.raw_auth,
        headers=proxy.headers.raw,
        ssl_context=proxy.ssl_context,
    )
    return arguments


def _pool_request(request: httpx.Request) -> httpool.Request:
    stream = request.stream
    content: typing.Any = stream
    if isinstance(stream, httpx.ByteStream):
        # In memory: as bytes, so that a retry can send it again.
        content = b"".join(stream)
    return httpool.Request(
        request.method,
        httpool.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        ),
        headers=request.headers.raw,
        content=content,
        extensions=request.extensions,
    )


class ResponseStream(httpx.SyncByteStream):
    """A response body for httpx, read from the connection as it is iterated."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with map_httpool_exceptions():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            with map_httpool_exceptions():
                close()


class HTTPTransport(httpx.BaseTransport):
    """An ``httpx.HTTPTransport`` that sends through an ``httpool.ConnectionPool``.

    Takes ``httpx.HTTPTransport``'s arguments; ``pool`` is the pool, for its
    ``stats()``.
    """

    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: typing.Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: typing.Any = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> None:
        arguments = _pool_arguments(verify, cert, trust_env, limits, proxy)
        self._pool = httpool.ConnectionPool(
            http1=http1,
            http2=http2,
            uds=uds,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            **arguments,
        )

    @property
    def pool(self) -> httpool.ConnectionPool:
        """The pool requests go through: ``transport.pool.stats()`` for its counters."""
        return self._pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with map_httpool_exceptions():
            response = self._pool.handle_request(_pool_request(request))
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=ResponseStream(typing.cast(Iterable[bytes], response.stream)),
            extensions=response.extensions,
        )

    def close(self) -> None:
        with map_httpool_exceptions():
            self._pool.close()

    def __enter__(self) -> HTTPTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        self.close()


class AsyncResponseStream(httpx.AsyncByteStream):
    """A response body for httpx, read from the connection as it is iterated."""

    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with map_httpool_exceptions():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            with map_httpool_exceptions():
                await aclose()


class AsyncHTTPTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncHTTPTransport`` that sends through an ``httpool.AsyncConnectionPool``
    (on asyncio or trio, whichever runs it).

    Takes ``httpx.AsyncHTTPTransport``'s arguments; ``pool`` is the pool, for
    its ``stats()``.
    """

    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: typing.Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: typing.Any = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> None:
        arguments = _pool_arguments(verify, cert, trust_env, limits, proxy)
        self._pool = httpool.AsyncConnectionPool(
            http1=http1,
            http2=http2,
            uds=uds,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            **arguments,
        )

    @property
    def pool(self) -> httpool.AsyncConnectionPool:
        """The pool requests go through: ``transport.pool.stats()`` for its counters."""
        return self._pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with map_httpool_exceptions():
            response = await self._pool.handle_async_request(_pool_request(request))
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=AsyncResponseStream(typing.cast(typing.AsyncIterable[bytes], response.stream)),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        with map_httpool_exceptions():
            await self._pool.aclose()

    async def __aenter__(self) -> AsyncHTTPTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        await self.aclose()
