"""Error messages say what failed, in the same words on every runtime.

Each test provokes one failure (https to a plain HTTP port, a refused
connect, a connect or handshake that times out, an untrusted certificate, a
name that does not resolve, a read or write on a broken connection) and
checks the exception type, that the foreign error stays its ``__cause__``,
and that its message carries the facts the user needs: the ``ssl`` error, the
errno and strerror, what timed out. Written once; it runs on asyncio, trio and
(generated) threads, so a runtime that says less than the others fails here.
trio used to say only ``BrokenResourceError`` or ``TooSlowError``.

Servers on 127.0.0.1 only; the name that does not resolve is refused by a
stand-in for ``socket.getaddrinfo``, so no query leaves the machine.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

import httpool
from httpool import AsyncConnectionPool
from httpool._backends.default import async_default_backend
from tests.support.echo_server import EchoServer, blackhole
from tests.support.fault_server import FaultServer
from tests.support.http_server import HTTPServer

PROMPT = {"timeout": {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}}
# The bare names trio's errors used to be shown by.
BARE = {"BrokenResourceError", "ClosedResourceError", "TooSlowError", "OSError"}


def causes(exc: BaseException) -> list[BaseException]:
    """``exc``'s ``__cause__`` chain, without ``exc`` itself."""
    chain = []
    cause = exc.__cause__
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__
    return chain


def check_informative(exc: BaseException) -> str:
    """The message is more than a class name, and names any ``ssl`` error behind it."""
    message = str(exc)
    names = BARE | {type(error).__name__ for error in [exc, *causes(exc)]}
    assert message and message not in names, repr(exc)
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLError):
            assert str(cause) in message, (message, cause)
    return message


def check_errno(message: str, number: int, *, strerror: bool = True) -> None:
    assert f"[Errno {number}]" in message, message
    assert not strerror or os.strerror(number) in message, message


@contextlib.contextmanager
def plain_http_port() -> Iterator[int]:
    """A port where a plain HTTP server answers a TLS ClientHello with a 400.

    It then waits for the client to hang up: a server that closes at once
    (nginx does) races the client's handshake, and asyncio then reports only
    the reset, not the ssl error (see the CHANGELOG)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10.0)

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(10.0)
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                while connection.recv(65536):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes an accept still waiting
        thread.join()
        listener.close()


async def test_https_to_a_plain_http_port() -> None:
    with plain_http_port() as port:
        async with AsyncConnectionPool() as pool:
            with pytest.raises(httpool.ConnectError) as info:
                await pool.request("GET", f"https://127.0.0.1:{port}/", extensions=PROMPT)
    assert any(isinstance(cause, ssl.SSLError) for cause in causes(info.value)), info.value
    check_informative(info.value)


async def test_untrusted_certificate(tls_server: HTTPServer) -> None:
    # The default context trusts the public CAs, not the test CA.
    async with AsyncConnectionPool() as pool:
        with pytest.raises(httpool.ConnectError) as info:
            await pool.request("GET", tls_server.url + "/", extensions=PROMPT)
    verify = [c for c in causes(info.value) if isinstance(c, ssl.SSLCertVerificationError)]
    assert verify, info.value
    message = check_informative(info.value)
    assert "CERTIFICATE_VERIFY_FAILED" in message and verify[0].verify_message in message


async def test_refused_connection_names_the_errno() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connects are refused
        port = sock.getsockname()[1]
        async with AsyncConnectionPool() as pool:
            with pytest.raises(httpool.ConnectError) as info:
                await pool.request("GET", f"http://127.0.0.1:{port}/", extensions=PROMPT)
    assert isinstance(info.value.__cause__, OSError)
    # asyncio says "Connect call failed (address)" instead of the strerror.
    check_errno(check_informative(info.value), errno.ECONNREFUSED, strerror=False)


async def test_every_address_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A name with two addresses, both refused: trio's summary of its attempts
    # must still show each one's errno.
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        addresses = [first.getsockname(), second.getsockname()]
        resolve = socket.getaddrinfo

        def two_addresses(host: str, *args: object, **kwargs: object) -> object:
            if host == "twice.test":
                stream, tcp = socket.SOCK_STREAM, socket.IPPROTO_TCP
                return [(socket.AF_INET, stream, tcp, "", address) for address in addresses]
            return resolve(host, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
        async with AsyncConnectionPool() as pool:
            with pytest.raises(httpool.ConnectError) as info:
                await pool.request("GET", "http://twice.test/", extensions=PROMPT)
    assert isinstance(info.value.__cause__, OSError)
    check_errno(check_informative(info.value), errno.ECONNREFUSED, strerror=False)


async def test_connect_timeout_says_it_timed_out() -> None:
    with blackhole() as address:
        if address is None:
            pytest.skip("this OS refuses connects to a full backlog instead of dropping them")
        url = f"http://{address[0]}:{address[1]}/"
        async with AsyncConnectionPool() as pool:
            with pytest.raises(httpool.ConnectTimeout) as info:
                await pool.request("GET", url, extensions={"timeout": {"connect": 0.1}})
    assert info.value.__cause__ is not None
    assert "timed out" in check_informative(info.value)


async def test_tls_handshake_timeout_says_it_timed_out() -> None:
    # The server accepts and never answers the ClientHello.
    with EchoServer("stall") as server:
        url = f"https://127.0.0.1:{server.port}/"
        async with AsyncConnectionPool() as pool:
            with pytest.raises(httpool.ConnectTimeout) as info:
                await pool.request("GET", url, extensions={"timeout": {"connect": 0.1}})
    assert info.value.__cause__ is not None
    assert "timed out" in check_informative(info.value)


async def test_read_timeout_says_how_long() -> None:
    with EchoServer("silent") as server:
        url = f"http://127.0.0.1:{server.port}/"
        async with AsyncConnectionPool() as pool:
            with pytest.raises(httpool.ReadTimeout) as info:
                await pool.request("GET", url, extensions={"timeout": {"read": 0.1}})
    assert "within 0.1 seconds" in check_informative(info.value)


async def test_name_that_does_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = socket.getaddrinfo

    def refuse(host: str, *args: object, **kwargs: object) -> object:
        if host == "nowhere.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    async with AsyncConnectionPool() as pool:
        with pytest.raises(httpool.ConnectError) as info:
            await pool.request("GET", "http://nowhere.invalid/", extensions=PROMPT)
    assert isinstance(info.value.__cause__, socket.gaierror)
    message = check_informative(info.value)
    assert f"[Errno {socket.EAI_NONAME}] Name or service not known" in message


async def test_read_on_a_reset_connection_names_the_errno() -> None:
    with FaultServer() as server:
        async with AsyncConnectionPool() as pool:
            with pytest.raises(httpool.ReadError) as info:
                await pool.request("GET", server.url + "/reset-before-head", extensions=PROMPT)
    assert isinstance(info.value.__cause__, OSError)
    check_errno(check_informative(info.value), errno.ECONNRESET)


@pytest.mark.parametrize("tls", [False, True])
async def test_write_after_the_peer_hung_up(
    tls: bool, server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    backend = async_default_backend()
    with EchoServer("close", ssl_context=server_ssl_context if tls else None) as server:
        stream = await backend.connect_tcp(server.host, server.port, timeout=5.0)
        try:
            if tls:
                stream = await stream.start_tls(client_ssl_context, "localhost", timeout=5.0)
            assert await stream.read(10, timeout=5.0) == b""
            # The first writes may still be accepted; the peer's reset fails a later one.
            with pytest.raises(httpool.WriteError) as info:
                for _ in range(100):
                    await stream.write(b"x" * 1024, timeout=5.0)
                    await backend.sleep(0.01)
        finally:
            await stream.aclose()
    message = check_informative(info.value).lower()
    assert any(word in message for word in ("closed", "broken", "reset", "eof")), message


@pytest.mark.parametrize("tls", [False, True])
async def test_read_and_write_after_close(
    tls: bool, server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    backend = async_default_backend()
    with EchoServer(ssl_context=server_ssl_context if tls else None) as server:
        stream = await backend.connect_tcp(server.host, server.port, timeout=5.0)
        if tls:
            stream = await stream.start_tls(client_ssl_context, "localhost", timeout=5.0)
        await stream.aclose()
        with pytest.raises(httpool.ReadError) as read:
            await stream.read(10, timeout=5.0)
        with pytest.raises(httpool.WriteError) as write:
            await stream.write(b"late", timeout=5.0)
    for info in (read, write):
        message = check_informative(info.value)
        # The sync backend shows the socket's own error, EBADF.
        assert "closed" in message or os.strerror(errno.EBADF) in message, message
