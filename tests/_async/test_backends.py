"""One conformance suite for every network backend.

Written once, as async code on the default backend: it runs on asyncio and
on trio, and its generated twin in ``tests/_sync`` runs the same bodies on
blocking sockets. Real sockets on 127.0.0.1 throughout (``EchoServer``), TLS
from a ``trustme`` CA. The ``check_*`` functions hold what every stream must
do; the ``test_mock_*`` tests run them on the mock backend as well.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from pathlib import Path

import pytest
import trustme

from httpool._backends.base import AsyncNetworkBackend, AsyncNetworkStream
from httpool._backends.default import async_default_backend
from httpool._backends.mock import AsyncMockBackend, AsyncMockStream
from httpool._exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from httpool._ssl import default_ssl_context, ssl_context_for
from tests.support.echo_server import EchoServer, blackhole
from tests.support.tls import make_server_context

TIMEOUT = 5.0
PATTERN = bytes(range(256))

# Shared checks.


async def read_exactly(stream: AsyncNetworkStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.read(65536, timeout=TIMEOUT)
        if not chunk:
            break
        data += chunk
    return data


async def read_to_eof(stream: AsyncNetworkStream, max_bytes: int = 65536) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = await stream.read(max_bytes, timeout=TIMEOUT)
        assert len(chunk) <= max_bytes
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def wait_until_readable(backend: AsyncNetworkBackend, stream: AsyncNetworkStream) -> bool:
    for _ in range(200):
        if stream.get_extra_info("is_readable"):
            return True
        await backend.sleep(0.01)
    return False


async def check_reads_to_eof(stream: AsyncNetworkStream, expected: bytes) -> None:
    """The stream yields ``expected`` in chunks of at most max_bytes, then b"" for good."""
    assert await read_to_eof(stream, max_bytes=7) == expected
    assert await stream.read(10, timeout=TIMEOUT) == b""


async def check_close_twice(stream: AsyncNetworkStream) -> None:
    """Closing twice is fine; afterwards reads and writes fail as network errors."""
    await stream.aclose()
    await stream.aclose()
    with pytest.raises(ReadError):
        await stream.read(10, timeout=TIMEOUT)
    with pytest.raises(WriteError):
        await stream.write(b"late", timeout=TIMEOUT)


async def check_extra_info(stream: AsyncNetworkStream) -> None:
    """Every documented key answers; an unknown one is None."""
    for key in ("ssl_object", "client_addr", "server_addr", "socket", "is_readable"):
        stream.get_extra_info(key)
    assert isinstance(stream.get_extra_info("is_readable"), bool)
    assert stream.get_extra_info("no such key") is None


async def check_readable_after_peer_close(
    backend: AsyncNetworkBackend, stream: AsyncNetworkStream
) -> None:
    """Once the peer has hung up, the liveness probe says so, and reads end."""
    assert await wait_until_readable(backend, stream)
    assert await read_to_eof(stream) == b""


def can_bind(address: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


# Plain TCP.


async def test_write_then_read_echo(echo_server: EchoServer) -> None:
    backend = async_default_backend()
    stream = await backend.connect_tcp(echo_server.host, echo_server.port, timeout=TIMEOUT)
    try:
        await stream.write(b"hello, world", timeout=TIMEOUT)
        assert await read_exactly(stream, 12) == b"hello, world"
        await stream.write(b"", timeout=TIMEOUT)
        await stream.write(b"again", timeout=TIMEOUT)
        assert await read_exactly(stream, 5) == b"again"
    finally:
        await stream.aclose()


async def test_read_returns_empty_at_eof() -> None:
    with EchoServer("close", greeting=b"goodbye, then EOF") as server:
        stream = await async_default_backend().connect_tcp(
            server.host, server.port, timeout=TIMEOUT
        )
        try:
            await check_reads_to_eof(stream, b"goodbye, then EOF")
        finally:
            await stream.aclose()


async def test_large_read_keeps_order() -> None:
    # Bigger than every buffer on the way, and left to pile up before it is
    # read, so that the asyncio backend pauses and resumes its transport.
    payload = PATTERN * (3 * 4096)
    backend = async_default_backend()
    with EchoServer("close", greeting=payload) as server:
        stream = await backend.connect_tcp(server.host, server.port, timeout=TIMEOUT)
        try:
            await backend.sleep(0.05)
            assert await read_to_eof(stream) == payload
        finally:
            await stream.aclose()


async def test_close_twice(echo_server: EchoServer) -> None:
    stream = await async_default_backend().connect_tcp(
        echo_server.host, echo_server.port, timeout=TIMEOUT
    )
    await check_close_twice(stream)


async def test_read_and_write_after_peer_close() -> None:
    backend = async_default_backend()
    with EchoServer("close") as server:
        stream = await backend.connect_tcp(server.host, server.port, timeout=TIMEOUT)
        try:
            assert await stream.read(10, timeout=TIMEOUT) == b""
            # The first write may still be accepted by the kernel; the
            # peer's reset makes a later one fail.
            with pytest.raises(WriteError):
                for _ in range(100):
                    await stream.write(b"x" * 1024, timeout=TIMEOUT)
                    await backend.sleep(0.01)
        finally:
            await stream.aclose()


async def test_connect_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connects are refused
        port = sock.getsockname()[1]
        with pytest.raises(ConnectError):
            await async_default_backend().connect_tcp("127.0.0.1", port, timeout=TIMEOUT)


async def test_connect_timeout() -> None:
    with blackhole() as address:
        if address is None:
            pytest.skip("this OS refuses connects to a full backlog instead of dropping them")
        with pytest.raises(ConnectTimeout):
            await async_default_backend().connect_tcp(address[0], address[1], timeout=0.1)


async def test_read_timeout() -> None:
    with EchoServer("silent") as server:
        stream = await async_default_backend().connect_tcp(
            server.host, server.port, timeout=TIMEOUT
        )
        try:
            with pytest.raises(ReadTimeout):
                await stream.read(10, timeout=0.05)
            # The stream is still usable after a timeout.
            await stream.write(b"anyone there?", timeout=TIMEOUT)
            with pytest.raises(ReadTimeout):
                await stream.read(10, timeout=0.05)
        finally:
            await stream.aclose()


async def test_write_timeout() -> None:
    small = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)]
    with EchoServer("stall", recv_buffer=4096) as server:
        stream = await async_default_backend().connect_tcp(
            server.host, server.port, timeout=TIMEOUT, socket_options=small
        )
        try:
            with pytest.raises(WriteTimeout):
                await stream.write(b"x" * (8 * 1024 * 1024), timeout=0.2)
        finally:
            await stream.aclose()


async def test_extra_info(echo_server: EchoServer) -> None:
    stream = await async_default_backend().connect_tcp(
        echo_server.host, echo_server.port, timeout=TIMEOUT
    )
    try:
        await stream.write(b"ping", timeout=TIMEOUT)
        assert await read_exactly(stream, 4) == b"ping"
        await check_extra_info(stream)
        client = stream.get_extra_info("client_addr")
        assert tuple(stream.get_extra_info("server_addr")) == ("127.0.0.1", echo_server.port)
        assert tuple(client) == tuple(echo_server.peers[-1])
        assert stream.get_extra_info("ssl_object") is None
        sock = stream.get_extra_info("socket")
        assert sock.getsockname() == client
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await stream.aclose()


async def test_is_readable(echo_server: EchoServer) -> None:
    backend = async_default_backend()
    stream = await backend.connect_tcp(echo_server.host, echo_server.port, timeout=TIMEOUT)
    try:
        assert not stream.get_extra_info("is_readable")
        await stream.write(b"ping", timeout=TIMEOUT)
        assert await wait_until_readable(backend, stream)
        assert await read_exactly(stream, 4) == b"ping"
        assert not stream.get_extra_info("is_readable")
    finally:
        await stream.aclose()
    assert stream.get_extra_info("is_readable")


@pytest.mark.parametrize("with_options", [False, True])
async def test_local_address(echo_server: EchoServer, with_options: bool) -> None:
    # Linux routes all of 127/8 to loopback, so a second source address shows
    # that the bind really happened; elsewhere 127.0.0.1 has to do.
    local = "127.0.0.2" if can_bind("127.0.0.2") else "127.0.0.1"
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)] if with_options else None
    stream = await async_default_backend().connect_tcp(
        echo_server.host,
        echo_server.port,
        timeout=TIMEOUT,
        local_address=local,
        socket_options=options,
    )
    try:
        await stream.write(b"ping", timeout=TIMEOUT)
        assert await read_exactly(stream, 4) == b"ping"
        assert stream.get_extra_info("client_addr")[0] == local
        assert echo_server.peers[-1][0] == local
    finally:
        await stream.aclose()


async def test_socket_options(echo_server: EchoServer) -> None:
    options = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.SOL_SOCKET, socket.SO_RCVBUF, 32768),
    ]
    stream = await async_default_backend().connect_tcp(
        echo_server.host, echo_server.port, timeout=TIMEOUT, socket_options=options
    )
    try:
        sock = stream.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        await stream.write(b"ping", timeout=TIMEOUT)
        assert await read_exactly(stream, 4) == b"ping"
    finally:
        await stream.aclose()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix domain sockets")
@pytest.mark.parametrize("with_options", [False, True])
async def test_unix_socket(tmp_path: Path, with_options: bool) -> None:
    path = os.fspath(tmp_path / "echo.sock")
    options = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)] if with_options else None
    with EchoServer(uds=path) as server:
        assert server.uds == path
        stream = await async_default_backend().connect_unix_socket(
            path, timeout=TIMEOUT, socket_options=options
        )
        try:
            await stream.write(b"over a unix socket", timeout=TIMEOUT)
            assert await read_exactly(stream, 18) == b"over a unix socket"
            await check_extra_info(stream)
        finally:
            await stream.aclose()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix domain sockets")
async def test_unix_socket_missing(tmp_path: Path) -> None:
    with pytest.raises(ConnectError):
        await async_default_backend().connect_unix_socket(
            os.fspath(tmp_path / "nothing"), timeout=TIMEOUT
        )


async def test_sleep_and_now() -> None:
    backend = async_default_backend()
    before = backend.now()
    await backend.sleep(0.02)
    assert backend.now() - before >= 0.015


# TLS.


def test_default_ssl_contexts() -> None:
    context = default_ssl_context()
    assert context is default_ssl_context()
    assert context is ssl_context_for(http1=True, http2=False)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.cert_store_stats()["x509_ca"] > 0
    both = ssl_context_for(http1=True, http2=True)
    assert both is not context
    assert both is ssl_context_for(http1=True, http2=True)
    assert ssl_context_for(http1=False, http2=True) not in (context, both)
    with pytest.raises(ValueError):
        ssl_context_for(http1=False, http2=False)


async def test_start_tls(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    client_ssl_context.set_alpn_protocols(["http/1.1"])
    with EchoServer(ssl_context=server_ssl_context) as server:
        stream = await async_default_backend().connect_tcp(
            server.host, server.port, timeout=TIMEOUT
        )
        tls = await stream.start_tls(client_ssl_context, server_hostname="localhost", timeout=5)
        try:
            assert server.sni_names == ["localhost"]
            ssl_object = tls.get_extra_info("ssl_object")
            assert ssl_object.selected_alpn_protocol() == "http/1.1"
            assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
            await tls.write(b"secret", timeout=TIMEOUT)
            assert await read_exactly(tls, 6) == b"secret"
            await check_extra_info(tls)
            assert tuple(tls.get_extra_info("server_addr")) == ("127.0.0.1", server.port)
        finally:
            await tls.aclose()
        await check_close_twice(tls)


async def test_start_tls_wrong_hostname(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    with EchoServer(ssl_context=server_ssl_context) as server:
        stream = await async_default_backend().connect_tcp(
            server.host, server.port, timeout=TIMEOUT
        )
        with pytest.raises(ConnectError):
            await stream.start_tls(client_ssl_context, server_hostname="wrong.example", timeout=5)
        assert server.sni_names == ["wrong.example"]
        await stream.aclose()


async def test_start_tls_untrusted_certificate(server_ssl_context: ssl.SSLContext) -> None:
    # The default context trusts the public CAs, not the test CA.
    with EchoServer(ssl_context=server_ssl_context) as server:
        stream = await async_default_backend().connect_tcp(
            server.host, server.port, timeout=TIMEOUT
        )
        with pytest.raises(ConnectError):
            await stream.start_tls(default_ssl_context(), server_hostname="localhost", timeout=5)
        await stream.aclose()


async def test_start_tls_timeout(client_ssl_context: ssl.SSLContext) -> None:
    with EchoServer("stall") as server:
        stream = await async_default_backend().connect_tcp(
            server.host, server.port, timeout=TIMEOUT
        )
        with pytest.raises(ConnectTimeout):
            await stream.start_tls(client_ssl_context, server_hostname="localhost", timeout=0.1)
        await stream.aclose()


@pytest.mark.parametrize("tls", [False, True])
async def test_is_readable_after_peer_close(
    tls: bool, server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    backend = async_default_backend()
    with EchoServer("close", ssl_context=server_ssl_context if tls else None) as server:
        stream = await backend.connect_tcp(server.host, server.port, timeout=TIMEOUT)
        if tls:
            stream = await stream.start_tls(
                client_ssl_context, server_hostname="localhost", timeout=TIMEOUT
            )
        try:
            await check_readable_after_peer_close(backend, stream)
        finally:
            await stream.aclose()


async def test_is_readable_with_a_tls_record_waiting(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    # Two records that arrive together: a backend may take both off the
    # socket while reading the first, and the probe must still see the second.
    backend = async_default_backend()
    with EchoServer(ssl_context=server_ssl_context) as server:
        stream = await backend.connect_tcp(server.host, server.port, timeout=TIMEOUT)
        tls = await stream.start_tls(
            client_ssl_context, server_hostname="localhost", timeout=TIMEOUT
        )
        try:
            await tls.write(b"first", timeout=TIMEOUT)
            await tls.write(b"second", timeout=TIMEOUT)
            await backend.sleep(0.1)  # both echoes arrive before the first read
            assert await tls.read(5, timeout=TIMEOUT) == b"first"
            assert await wait_until_readable(backend, tls)
            assert await read_exactly(tls, 6) == b"second"
        finally:
            await tls.aclose()


async def test_tls_over_tls(
    tls_certificate: trustme.LeafCert,
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
) -> None:
    # What a client does for an https:// request through an HTTPS proxy.
    inner_context = make_server_context(tls_certificate)
    with EchoServer(ssl_context=server_ssl_context, inner_ssl_context=inner_context) as server:
        stream = await async_default_backend().connect_tcp(
            server.host, server.port, timeout=TIMEOUT
        )
        outer = await stream.start_tls(client_ssl_context, server_hostname="localhost", timeout=5)
        if sys.version_info < (3, 11) and "asyncio" in type(outer).__module__:
            await outer.aclose()
            pytest.skip("asyncio supports TLS over TLS from Python 3.11")
        inner = await outer.start_tls(client_ssl_context, server_hostname="127.0.0.1", timeout=5)
        try:
            assert inner.get_extra_info("ssl_object") is not outer.get_extra_info("ssl_object")
            await inner.write(b"twice wrapped", timeout=TIMEOUT)
            assert await read_exactly(inner, 13) == b"twice wrapped"
            assert not inner.get_extra_info("is_readable")
        finally:
            await inner.aclose()


# The same checks on the mock backend.


async def test_mock_reads_to_eof() -> None:
    backend = AsyncMockBackend([b"hello, ", b"world and more"])
    stream = await backend.connect_tcp("example.org", 80, timeout=TIMEOUT)
    await check_reads_to_eof(stream, b"hello, world and more")


async def test_mock_close_twice() -> None:
    backend = AsyncMockBackend([b"unread"])
    stream = await backend.connect_unix_socket("/tmp/none.sock", timeout=TIMEOUT)
    await check_close_twice(stream)


async def test_mock_extra_info_and_tls() -> None:
    backend = AsyncMockBackend(http2=True)
    stream = await backend.connect_tcp("example.org", 443, timeout=TIMEOUT)
    tls = await stream.start_tls(default_ssl_context(), server_hostname="example.org")
    await check_extra_info(tls)
    assert tls.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"


async def test_mock_readable_after_peer_close() -> None:
    backend = AsyncMockBackend()
    stream = await backend.connect_tcp("example.org", 80, timeout=TIMEOUT)
    assert not stream.get_extra_info("is_readable")
    assert isinstance(stream, AsyncMockStream)
    stream.close_by_peer()
    await check_readable_after_peer_close(backend, stream)
