"""A TLS server for tests that completes the handshake, then plays a script.

Theory of operation: an accept thread hands each connection to a thread of
its own. That thread runs the TLS handshake on memory BIOs (``SSLObject``),
so the test decides which bytes travel in which TCP send: the server's first
application data can go out in the very send that carries the handshake's
last flight (TLS 1.2: the server's Finished; TLS 1.3: its session tickets),
in one send of its own, or in many small sends (one TLS record each). Then
the script's last step: ``"hang"`` (read and discard what the client sends,
answer nothing, until it leaves or the server stops), ``"close"`` (an orderly
TCP close, no ``close_notify``), ``"tls-close"`` (``close_notify`` in the same
send as the first bytes, then the TCP close) or ``"reset"`` (RST).

With ``hold=True`` the server accepts connections but starts no handshake
until the test sets ``gate``: a test can line requests up behind a
connection that is still being established before it lets that one fail.

Every wait polls the stop event, so ``stop()`` ends every thread and closes
every socket; nothing survives it. The server counts handshakes completed, so
a test can tell "the client gave up" from "the server never got that far".
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import types
from collections.abc import Sequence

# How first bytes are sent after the handshake.
WITH_HANDSHAKE = "with-handshake"  # in the same send as the handshake's last flight
ONE_SEND = "one-send"  # one send of their own, right after it
MANY_SENDS = "many-sends"  # one small TLS record per send
MODES = (WITH_HANDSHAKE, ONE_SEND, MANY_SENDS)

_POLL = 0.05
_SAFETY_TIMEOUT = 30.0


class TLSScriptServer:
    """Serve TLS on 127.0.0.1: handshake, send ``first_bytes`` as ``mode`` says, then ``then``.

    Args:
        ssl_context: the server context (its ALPN list decides what ALPN answers).
        first_bytes: what to send once the handshake is over (may be empty).
        mode: one of ``MODES``.
        pieces: for ``MANY_SENDS``, the size of each record.
        then: ``"hang"``, ``"close"``, ``"tls-close"`` or ``"reset"``.
        hold: start no handshake until ``gate`` is set.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        first_bytes: bytes = b"",
        mode: str = ONE_SEND,
        pieces: int = 7,
        then: str = "hang",
        hold: bool = False,
    ) -> None:
        assert mode in MODES and then in ("hang", "close", "tls-close", "reset")
        self._context = ssl_context
        self._first_bytes = first_bytes
        self._mode = mode
        self._pieces = pieces
        self._then = then
        self._stopping = threading.Event()
        self.gate = threading.Event()
        if not hold:
            self.gate.set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self.handshakes = 0
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> TLSScriptServer:
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        while True:
            with self._lock:
                threads = list(self._threads)
                self._threads.clear()
            if not threads:
                break
            for thread in threads:
                thread.join(timeout=_SAFETY_TIMEOUT)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - the listener closed under us
                return
            with self._lock:
                self.accepted += 1
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _recv(self, conn: socket.socket) -> bytes | None:
        """Bytes from the client, b"" at its end, None when the server stops."""
        while not self._stopping.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return b""
        return None

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(_POLL)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self.gate.wait(_POLL):
                if self._stopping.is_set():
                    return
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = self._context.wrap_bio(incoming, outgoing, server_side=True)
            try:
                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        pending = outgoing.read()
                        if pending:
                            conn.sendall(pending)
                        data = self._recv(conn)
                        if not data:
                            return
                        incoming.write(data)
            except (ssl.SSLError, OSError):
                return  # the client refused us (a test of a failing handshake)
            with self._lock:
                self.handshakes += 1
            try:
                self._send_first_bytes(conn, tls, outgoing)
                self._finish(conn)
            except OSError:
                return

    def _send_first_bytes(
        self, conn: socket.socket, tls: ssl.SSLObject, outgoing: ssl.MemoryBIO
    ) -> None:
        data = self._first_bytes
        if self._mode == WITH_HANDSHAKE:
            if data:
                tls.write(data)
            self._close_notify(tls)
            conn.sendall(outgoing.read())  # last flight, data, close_notify: one send
            return
        last_flight = outgoing.read()
        if last_flight:
            conn.sendall(last_flight)
        if self._mode == ONE_SEND:
            if data:
                tls.write(data)
        else:
            for start in range(0, len(data), self._pieces):
                tls.write(data[start : start + self._pieces])
                conn.sendall(outgoing.read())
        self._close_notify(tls)
        pending = outgoing.read()
        if pending:
            conn.sendall(pending)

    def _close_notify(self, tls: ssl.SSLObject) -> None:
        if self._then == "tls-close":
            # It then waits for the client's close_notify; ours is written.
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.unwrap()

    def _finish(self, conn: socket.socket) -> None:
        if self._then in ("close", "tls-close"):
            conn.shutdown(socket.SHUT_WR)
            # Wait for the client to go, so that our close sends no RST.
            while self._recv(conn):
                pass
        elif self._then == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            while self._recv(conn):
                pass


def first_bytes_cases() -> Sequence[tuple[str, str]]:
    """(mode, TLS version) pairs every backend is checked with."""
    return [(mode, version) for version in ("TLSv1_2", "TLSv1_3") for mode in MODES]


def limit_version(context: ssl.SSLContext, version: str) -> ssl.SSLContext:
    """``context`` limited to exactly ``version`` ("TLSv1_2" or "TLSv1_3")."""
    tls_version = ssl.TLSVersion[version]
    context.minimum_version = tls_version
    context.maximum_version = tls_version
    return context
