"""A misbehaving HTTP/1.1 server for tests: raw bytes on a socket, played from a script.

Theory of operation: the server parses just enough HTTP to know which
request it got (request line, headers, a Content-Length or chunked body),
then plays the *script* routed to the request's path: a list of ``Step``
values that send bytes, drip them slowly, pause, close (FIN), reset (RST) or
hang. A script that neither closes, resets nor hangs leaves the connection
open for the next request, so a fault can also strike a kept-alive
connection. Scripts in ``on_accept`` are played instead, one per accepted
connection in order, before anything is read: a server that never reads, or
one that speaks first.

Each connection runs in its own thread (``ThreadedServer`` of
``threaded_server.py`` accepts and stops); every blocking wait is a
``select`` on the connection and a wake-up socket pair, and every pause waits
on the stop event, so ``stop()`` wakes everything at once, shuts the sockets
down and joins the threads: nothing survives it (the fd-leak check depends on
that). The server records every byte it received (``received``) and every
request it parsed (``requests``), so that a test can prove the client sent
nothing, instead of trusting the client.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import typing
from collections.abc import Mapping, Sequence

from tests.support.threaded_server import ThreadedServer

READ_SIZE = 65536
# A request head larger than this is a client bug (or a test of one): the
# server stops reading and closes, instead of buffering without bound.
MAX_REQUEST_HEAD = 1024 * 1024
# A safety net for waits a test should never reach; tripping it is a bug.
SAFETY_TIMEOUT = 10.0


class Step(typing.NamedTuple):
    """One action of a script: ``send``, ``pause``, ``close``, ``reset``, ``hang``,
    ``stall``, ``signal``."""

    action: str
    data: bytes = b""
    interval: float = 0.0


Script = Sequence[Step]


def send(data: bytes) -> Step:
    """Send ``data`` at once."""
    return Step("send", data)


def drip_pieces(pieces: Sequence[bytes], interval: float) -> Script:
    """Send each of ``pieces`` after a pause of ``interval`` seconds."""
    return [step for piece in pieces for step in (pause(interval), send(piece))]


def pause(seconds: float) -> Step:
    """Wait ``seconds`` (cut short by ``stop()``)."""
    return Step("pause", interval=seconds)


CLOSE = Step("close")  # an orderly close: FIN after what was sent
RESET = Step("reset")  # SO_LINGER 0 then close: the kernel sends RST
HANG = Step("hang")  # read and record what comes, answer nothing, until the client leaves
STALL = Step("stall")  # read nothing, say nothing, until stop(): the client's writes back up
SIGNAL = Step("signal")  # set ``FaultServer.signalled``: the steps before it are done


def response(status: int = 200, body: bytes = b"ok", headers: bytes = b"") -> bytes:
    """A well-formed response with a Content-Length, as bytes."""
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%b\r\n%b" % (status, len(body), headers, body)


OK = response()
_CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
_LENGTH_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
_PARTIAL_HEAD = b"HTTP/1.1 200 OK\r\nContent-Le"


def _big_head(size: int) -> bytes:
    """A 200 response whose head (status line to blank line) is exactly ``size`` bytes."""
    start, end = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", b"\r\n"
    filler = size - len(start) - len(end)
    lines: list[bytes] = []
    while filler > 0:
        # "X-Fill-NNNN: " + value + CRLF, at most ~4 KiB per line.
        name = b"X-Fill-%04d: " % len(lines)
        take = min(filler, 4096)
        value = b"v" * max(1, take - len(name) - 2)
        line = name + value + b"\r\n"
        lines.append(line)
        filler -= len(line)
    head = start + b"".join(lines) + end
    assert len(head) >= size and len(head) - size < 16, len(head)
    return head + b"ok"


# The built-in routes: path -> script. Each fault's expected outcome is in
# tests/_async/test_faults.py, next to the test that checks it.
FAULTS: Mapping[str, Script] = {
    "/ok": [send(OK)],
    # Before, inside and right after the response head.
    "/reset-before-head": [RESET],
    "/close-before-head": [CLOSE],
    "/reset-mid-head": [send(_PARTIAL_HEAD), pause(0.02), RESET],
    "/close-mid-head": [send(_PARTIAL_HEAD), CLOSE],
    "/reset-after-head": [
        send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
        pause(0.02),
        RESET,
    ],
    "/close-after-head": [send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), CLOSE],
    # Inside a Content-Length body and a chunked one.
    "/reset-mid-body": [send(_LENGTH_HEAD + b"x" * 10), pause(0.02), RESET],
    "/close-mid-body": [send(_LENGTH_HEAD + b"x" * 10), CLOSE],
    "/chunked-truncated": [send(_CHUNKED_HEAD + b"5\r\nhello\r\n"), CLOSE],
    "/chunked-mid-chunk": [send(_CHUNKED_HEAD + b"a\r\nhel"), CLOSE],
    "/chunked-reset": [send(_CHUNKED_HEAD + b"5\r\nhello\r\n"), pause(0.02), RESET],
    "/chunked-bad-size": [send(_CHUNKED_HEAD + b"zz\r\nhello\r\n"), HANG],
    "/chunked-no-crlf": [send(_CHUNKED_HEAD + b"5\r\nhelloXX0\r\n\r\n"), HANG],
    # Garbage where a head should be.
    "/garbage-status": [send(b"HELLO WORLD\r\n\r\n"), HANG],
    "/garbage-binary": [send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)), HANG],
    "/garbage-status-code": [send(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"), HANG],
    "/http09": [send(b"<html>no status line</html>\n"), CLOSE],
    "/header-without-colon": [send(b"HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n"), HANG],
    "/bad-content-length": [send(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"), HANG],
    "/conflicting-content-length": [
        send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
        HANG,
    ],
    "/bad-transfer-encoding": [
        send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"),
        HANG,
    ],
    # Heads around the client's limit (64 KiB by default).
    "/head-60k": [send(_big_head(60 * 1024))],
    "/head-100k": [send(_big_head(100 * 1024))],
    "/head-1m": [send(_big_head(1024 * 1024)), HANG],
    "/header-line-100k": [
        send(
            b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 100 * 1024 + b"\r\nContent-Length: 2\r\n\r\nok"
        )
    ],
    "/endless-informational": [
        send(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" * 20000),
        HANG,
    ],
    # Slow: a head or body dripped slower than the read timeout the tests use,
    # and a body dripped faster than it (which must succeed: the read timeout
    # bounds each wait, not the whole response).
    "/drip-head": drip_pieces([b"HTTP/1.1 200 OK\r\n", b"Content-Length: 2\r\n", b"\r\nok"], 0.3),
    "/drip-body": [send(_CHUNKED_HEAD), *drip_pieces([b"2\r\nok\r\n"] * 3, 0.3)],
    "/drip-fast": [
        send(_CHUNKED_HEAD),
        *drip_pieces([b"2\r\nok\r\n"] * 5 + [b"0\r\n\r\n"], 0.02),
    ],
    # The request arrives; no answer ever does.
    "/hang": [HANG],
}


class RequestRecord(typing.NamedTuple):
    method: bytes
    target: bytes
    head: bytes
    body: bytes


class _Stopped(Exception):
    """The server is stopping, the peer went away, or a script ended the connection."""


@typing.final
class FaultServer(ThreadedServer):
    """A scripted HTTP/1.1 server on 127.0.0.1, in threads.

    Args:
        routes: path -> script, on top of ``FAULTS`` (unknown paths get a 404).
        on_accept: scripts played on the first connections, one each, in
            order, before reading anything; later connections are routed.
    """

    name = "fault-server"
    backlog = 64

    def __init__(
        self, routes: Mapping[str, Script] | None = None, on_accept: Sequence[Script] = ()
    ) -> None:
        super().__init__()
        self.routes: dict[str, Script] = {**FAULTS, **(routes or {})}
        self.requests: list[RequestRecord] = []
        self.received = bytearray()
        self.signalled = threading.Event()
        self._on_accept = list(on_accept)

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def _accepted(self, sock: socket.socket, address: typing.Any) -> threading.Thread:
        script = self._on_accept.pop(0) if self._on_accept else None
        return self._serve_in_thread(sock, self._serve_connection, script)

    # One connection.

    def _serve_connection(self, sock: socket.socket, script: Script | None) -> None:
        try:
            sock.settimeout(SAFETY_TIMEOUT)
            if script is not None:
                self._play(sock, script)
            buffer = bytearray()
            while True:
                request = self._read_request(sock, buffer)
                path = request.target.partition(b"?")[0].decode("ascii", "replace")
                self._play(sock, self.routes.get(path, [send(response(404, b"no route"))]))
        except (_Stopped, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _play(self, sock: socket.socket, script: Script) -> None:
        for step in script:
            if step.action == "send":
                sock.sendall(step.data)
            elif step.action == "pause":
                if self.stopping.wait(step.interval):
                    raise _Stopped()
            elif step.action == "close":
                sock.shutdown(socket.SHUT_WR)
                # Drain until the client closes too, so that no RST destroys what we sent.
                with contextlib.suppress(_Stopped, OSError):
                    while self._recv(sock):
                        pass
                raise _Stopped()
            elif step.action == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raise _Stopped()  # the close in _serve_connection sends the RST
            elif step.action == "signal":
                self.signalled.set()
            elif step.action == "stall":
                self.stopping.wait()
                raise _Stopped()
            elif step.action == "hang":
                # Read (and record) whatever comes, answer nothing, until the
                # client hangs up or the server stops.
                while self._recv(sock, timeout=None):
                    pass
                raise _Stopped()
            else:  # pragma: no cover - a typo in a test's script
                raise ValueError(f"unknown step {step.action!r}")

    # Reading requests.

    def _recv(self, sock: socket.socket, timeout: float | None = SAFETY_TIMEOUT) -> bytes:
        """Read once, waking for ``stop()``; ``_Stopped`` on stop or timeout."""
        readable, _, _ = select.select([sock, self._wake_r], [], [], timeout)
        if self._wake_r in readable or not readable:
            raise _Stopped()
        data = sock.recv(READ_SIZE)
        with self.lock:
            self.received += data
        return data

    def _read_request(self, sock: socket.socket, buffer: bytearray) -> RequestRecord:
        while b"\r\n\r\n" not in buffer:
            if len(buffer) > MAX_REQUEST_HEAD:
                raise _Stopped()
            data = self._recv(sock)
            if not data:
                raise _Stopped()
            buffer += data
        end = buffer.index(b"\r\n\r\n") + 4
        head = bytes(buffer[:end])
        del buffer[:end]
        request_line, _, header_block = head.partition(b"\r\n")
        method, _, rest = request_line.partition(b" ")
        target = rest.rpartition(b" ")[0]
        headers = {}
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = self._read_until(sock, buffer, b"0\r\n\r\n")  # no trailers in our tests
        else:
            body = self._read_exactly(sock, buffer, int(headers.get(b"content-length", b"0")))
        record = RequestRecord(method, target, head, body)
        with self.lock:
            self.requests.append(record)
        return record

    def _read_exactly(self, sock: socket.socket, buffer: bytearray, size: int) -> bytes:
        while len(buffer) < size:
            data = self._recv(sock)
            if not data:
                raise _Stopped()
            buffer += data
        body = bytes(buffer[:size])
        del buffer[:size]
        return body

    def _read_until(self, sock: socket.socket, buffer: bytearray, marker: bytes) -> bytes:
        while marker not in buffer:
            data = self._recv(sock)
            if not data:
                raise _Stopped()
            buffer += data
        end = buffer.index(marker) + len(marker)
        body = bytes(buffer[:end])
        del buffer[:end]
        return body
