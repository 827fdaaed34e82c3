"""A TCP echo server in threads, for the backend conformance tests.

Theory of operation: ``ThreadedServer`` (``threaded_server.py``) accepts and
stops; each accepted connection gets a thread that runs the chosen ``mode``.
``stop()`` wakes the accept thread, shuts down every live connection socket
(which unblocks a ``recv``, ``sendall`` or handshake in its thread),
releases the stalled ones and joins every thread. Sockets are closed only
under the server's lock, so a shutdown never reaches a descriptor number
that was closed and reused. Server threads swallow every error: a client
hanging up mid-handshake is a normal event here, and an exception escaping a
thread would fail an unrelated test.

Also here: ``blackhole()``, a local address whose connects hang.
"""

from __future__ import annotations

import contextlib
import functools
import select
import socket
import ssl
import threading
import typing
from collections.abc import Callable, Iterator

from tests.support.threaded_server import ThreadedServer

Mode = typing.Literal["echo", "close", "silent", "stall"]

_T = typing.TypeVar("_T")


class _Channel(typing.Protocol):
    def recv(self, size: int, /) -> bytes: ...

    def sendall(self, data: bytes, /) -> None: ...


class _InnerTLS:
    """Server side of TLS inside TLS: the inner session on memory BIOs."""

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext) -> None:
        self._outer = outer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._run(self._tls.do_handshake)

    def _run(self, operation: Callable[[], _T]) -> _T:
        while True:
            try:
                result = operation()
            except ssl.SSLWantReadError:
                self._outer.sendall(self._outgoing.read())
                data = self._outer.recv(65536)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            self._outer.sendall(self._outgoing.read())
            return result

    def recv(self, size: int, /) -> bytes:
        try:
            return self._run(lambda: self._tls.read(size))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def sendall(self, data: bytes, /) -> None:
        self._run(lambda: self._tls.write(data))


class EchoServer(ThreadedServer):
    """An echo server on 127.0.0.1 (ephemeral port) or on a Unix socket.

    Modes, per connection:
        ``echo``: send ``greeting``, then echo every byte until the client
        closes. ``close``: send ``greeting``, then close. ``silent``: read and
        discard, never answer. ``stall``: neither read nor answer (nor run
        the TLS handshake) until the server stops.

    Args:
        ssl_context: serve TLS (the handshake runs in the connection thread;
            ``sni_names`` records the names clients asked for).
        inner_ssl_context: with ``ssl_context``, run a second TLS session
            inside the first (what a client sees through an HTTPS proxy).
        uds: listen on this Unix socket path instead of TCP.
        recv_buffer: ``SO_RCVBUF`` for accepted sockets, to fill them fast.
    """

    def __init__(
        self,
        mode: Mode = "echo",
        *,
        greeting: bytes = b"",
        ssl_context: ssl.SSLContext | None = None,
        inner_ssl_context: ssl.SSLContext | None = None,
        uds: str | None = None,
        recv_buffer: int | None = None,
    ) -> None:
        super().__init__(uds=uds)
        self.mode = mode
        self.greeting = greeting
        self.ssl_context = ssl_context
        self.inner_ssl_context = inner_ssl_context
        self.recv_buffer = recv_buffer
        self.host = "127.0.0.1"
        self.sni_names: list[str | None] = []
        self.peers: list[typing.Any] = []
        self._live: set[socket.socket] = set()
        if ssl_context is not None:
            ssl_context.sni_callback = self._record_sni

    def _record_sni(
        self, _sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        self.sni_names.append(name)

    # Connections.

    def _listening(self, listener: socket.socket) -> None:
        if self.recv_buffer is not None:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer)

    def _accepted(self, sock: socket.socket, address: typing.Any) -> threading.Thread:
        self._live.add(sock)
        self.peers.append(address)
        thread = threading.Thread(
            target=functools.partial(self._serve, sock), name=f"{self.name}-conn", daemon=True
        )
        self._threads.add(thread)
        return thread

    def _stop_connections(self) -> None:
        with self.lock:
            for sock in self._live:
                with contextlib.suppress(OSError):
                    # The plain socket's shutdown, also for an SSLSocket: its
                    # own shutdown would drop the SSL state under the thread.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(5)
        with self.lock:
            for sock in self._live:
                sock.close()
            self._live.clear()

    def _swap(self, old: socket.socket, new: socket.socket) -> None:
        with self.lock:
            self._live.discard(old)
            self._live.add(new)

    def _close(self, sock: socket.socket) -> None:
        with self.lock:
            if sock in self._live:
                self._live.discard(sock)
                sock.close()

    def _serve(self, conn: socket.socket) -> None:
        sock = conn
        try:
            if self.mode == "stall":
                self.stopping.wait()
                return
            if self.ssl_context is not None:
                # wrap_socket takes over the descriptor: track the new object
                # before the handshake, so that stop() can always reach it.
                sock = self.ssl_context.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                )
                self._swap(conn, sock)
                if self.stopping.is_set():
                    return
                sock.do_handshake()
            channel: _Channel = sock
            if self.inner_ssl_context is not None:
                assert isinstance(sock, ssl.SSLSocket)
                channel = _InnerTLS(sock, self.inner_ssl_context)
            self._run_mode(channel)
        except Exception:  # the client went away or failed the handshake
            pass
        finally:
            self._close(sock)
            self._close(conn)

    def _run_mode(self, channel: _Channel) -> None:
        if self.greeting and self.mode in ("echo", "close"):
            channel.sendall(self.greeting)
        if self.mode == "close":
            return
        while not self.stopping.is_set():
            data = channel.recv(65536)
            if not data:
                return
            if self.mode == "echo":
                channel.sendall(data)


@contextlib.contextmanager
def blackhole() -> Iterator[tuple[str, int] | None]:
    """Yield an address on 127.0.0.1 where a TCP connect hangs, or None.

    A listener that never accepts, with a backlog of 0, is filled by a few
    connects; after that the kernel drops new SYNs, so a connect waits for
    its timeout. Where the OS refuses instead of dropping, yield None.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        found = None
        for _ in range(8):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(probe)
            probe.setblocking(False)
            if probe.connect_ex(address) == 0:
                continue
            _, writable, _ = select.select([], [probe], [], 0.1)
            if not writable:
                found = address
                break
            if probe.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                break
        yield found
    finally:
        for sock in fillers:
            sock.close()
        listener.close()
