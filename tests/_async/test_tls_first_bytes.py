"""No backend drops a byte across a hand-over: TLS upgrade, protocol switch.

Issue 15: the asyncio backend threw away whatever the TLS layer had decrypted
before ``loop.start_tls`` returned, and a server's first bytes (nginx's
HTTP/2 SETTINGS) arrive exactly then. Written once: runs on asyncio and trio,
and its generated twin on blocking sockets. The server
(``tests/support/tls_script_server.py``) sends its first bytes in the same
send as the handshake's last flight, in one send of their own, or in many
small records; the client reads them back exactly, in small and large reads.
"""

from __future__ import annotations

import ssl

import pytest
import trustme

from httpool._async.upgrade import AsyncHTTP11UpgradeStream
from httpool._backends.base import AsyncNetworkStream
from httpool._backends.default import async_default_backend
from httpool._backends.mock import AsyncMockBackend, AsyncMockStream
from httpool._exceptions import ConnectError, WriteError
from httpool._ssl import default_ssl_context
from tests.support.echo_server import EchoServer
from tests.support.tls import make_client_context, make_server_context
from tests.support.tls_script_server import (
    MANY_SENDS,
    WITH_HANDSHAKE,
    TLSScriptServer,
    first_bytes_cases,
    limit_version,
)

TIMEOUT = 10.0
PAYLOAD = bytes(range(256)) * 64  # 16 KiB, not all alike, so that order shows


async def read_to_eof(stream: AsyncNetworkStream, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = await stream.read(max_bytes, timeout=TIMEOUT)
        assert len(chunk) <= max_bytes
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def tls_stream(
    server: TLSScriptServer, ca: trustme.CA, version: str | None = None
) -> AsyncNetworkStream:
    context = make_client_context(ca)
    if version is not None:
        limit_version(context, version)
    context.set_alpn_protocols(["h2"])
    stream = await async_default_backend().connect_tcp("127.0.0.1", server.port, timeout=TIMEOUT)
    return await stream.start_tls(context, server_hostname="localhost", timeout=TIMEOUT)


@pytest.mark.parametrize("then", ["close", "tls-close"])
@pytest.mark.parametrize("read_size", [7, 65536])
@pytest.mark.parametrize(("mode", "version"), first_bytes_cases())
async def test_first_bytes_after_the_handshake_arrive(
    mode: str,
    version: str,
    read_size: int,
    then: str,
    tls_ca: trustme.CA,
    tls_certificate: trustme.LeafCert,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Then the end: a TCP close, or close_notify too (with WITH_HANDSHAKE, in
    # the very send that ends the handshake). asyncio is told of that end
    # before start_tls returns, and must not complain about it.
    server_context = make_server_context(tls_certificate, alpn=["h2"])
    with TLSScriptServer(server_context, PAYLOAD, mode, then=then) as server:
        tls = await tls_stream(server, tls_ca, version)
        try:
            ssl_object = tls.get_extra_info("ssl_object")
            assert ssl_object.version() == version.replace("_", ".")
            assert ssl_object.selected_alpn_protocol() == "h2"
            assert await read_to_eof(tls, read_size) == PAYLOAD
        finally:
            await tls.aclose()
    assert "eof_received" not in caplog.text


@pytest.mark.parametrize("mode", [WITH_HANDSHAKE, MANY_SENDS])
async def test_a_flood_right_after_the_handshake_arrives_whole(
    mode: str, tls_ca: trustme.CA, tls_certificate: trustme.LeafCert
) -> None:
    # More than the asyncio backend buffers before it pauses reading: the
    # pause must not hit the plain transport while the loop still owns it.
    payload = PAYLOAD * 64  # 1 MiB
    server_context = make_server_context(tls_certificate, alpn=["h2"])
    with TLSScriptServer(server_context, payload, mode, pieces=60_000, then="close") as server:
        tls = await tls_stream(server, tls_ca)
        try:
            await async_default_backend().sleep(0.1)  # let it pile up unread
            assert await read_to_eof(tls, 65536) == payload
        finally:
            await tls.aclose()


async def test_bytes_before_the_handshake_are_refused_not_dropped(
    tls_ca: trustme.CA,
) -> None:
    # A server that speaks first is not a TLS server: every backend says so
    # (the socket ones when OpenSSL reads those bytes as a record).
    backend = async_default_backend()
    with EchoServer(greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n") as server:
        stream = await backend.connect_tcp(server.host, server.port, timeout=TIMEOUT)
        for _ in range(200):
            if stream.get_extra_info("is_readable"):
                break
            await backend.sleep(0.01)
        await backend.sleep(0.1)  # asyncio: the loop hands them to the protocol
        with pytest.raises(ConnectError) as info:
            await stream.start_tls(
                make_client_context(tls_ca), server_hostname="localhost", timeout=TIMEOUT
            )
        if "asyncio" in type(stream).__module__:
            # It holds those bytes itself: it says so rather than drop them.
            assert "bytes before the TLS handshake" in str(info.value)
        await stream.aclose()


async def test_a_write_after_the_peers_close_lets_its_last_bytes_be_read(
    tls_ca: trustme.CA, tls_certificate: trustme.LeafCert
) -> None:
    # An HTTP/2 server's GOAWAY then FIN, while a stream is still being
    # written: as on a socket, that write does not fail before the bytes
    # that came before the FIN have been read.
    backend = async_default_backend()
    server_context = make_server_context(tls_certificate, alpn=["h2"])
    with TLSScriptServer(server_context, b"GOAWAY", then="close") as server:
        tls = await tls_stream(server, tls_ca)
        try:
            for _ in range(200):
                if tls.get_extra_info("is_readable"):
                    break
                await backend.sleep(0.01)
            await backend.sleep(0.1)  # the FIN too, and asyncio's TLS layer acts on it
            await tls.write(b"a request the server will never read", timeout=TIMEOUT)
            assert await read_to_eof(tls, 65536) == b"GOAWAY"
        finally:
            await tls.aclose()
        # Once we have closed it ourselves, unread bytes or not, writes fail.
        with pytest.raises(WriteError):
            await tls.write(b"after our own close", timeout=TIMEOUT)


# The mock backend and the stream handed over after a protocol switch.


@pytest.mark.parametrize("read_size", [1, 5, 65536])
async def test_mock_first_bytes_after_start_tls(read_size: int) -> None:
    script = [b"first", b" bytes", b" after the handshake"]
    stream = await AsyncMockBackend(script, http2=True).connect_tcp("example.org", 443)
    tls = await stream.start_tls(default_ssl_context(), server_hostname="example.org")
    assert await read_to_eof(tls, read_size) == b"".join(script)


@pytest.mark.parametrize("read_size", [1, 4, 65536])
async def test_upgrade_stream_hands_out_leading_bytes_first(read_size: int) -> None:
    inner = await AsyncMockBackend([b"then the", b" socket's"]).connect_tcp("example.org", 80)
    stream = AsyncHTTP11UpgradeStream(inner, b"h11's leftover, ")
    assert stream.get_extra_info("is_readable")
    assert await read_to_eof(stream, read_size) == b"h11's leftover, then the socket's"


async def test_upgrade_stream_refuses_tls_behind_unread_bytes() -> None:
    inner = await AsyncMockBackend([b"more"]).connect_tcp("example.org", 443)
    stream = AsyncHTTP11UpgradeStream(inner, b"early")
    with pytest.raises(ConnectError, match="5 bytes before the TLS handshake"):
        await stream.start_tls(default_ssl_context(), server_hostname="example.org")
    assert isinstance(inner, AsyncMockStream) and inner.closed


async def test_upgrade_stream_starts_tls_once_its_leading_bytes_are_read() -> None:
    inner = await AsyncMockBackend([b"tls"], http2=True).connect_tcp("example.org", 443)
    stream = AsyncHTTP11UpgradeStream(inner, b"ok")
    assert await stream.read(10) == b"ok"
    tls = await stream.start_tls(ssl.create_default_context(), server_hostname="example.org")
    assert await tls.read(10) == b"tls"
