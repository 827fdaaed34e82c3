"""A small, fast HTTP/1.1 server to aim the load generator at.

Theory of operation: the server exists to cost the client as little as
possible, so that a benchmark measures the pool and not the server. It runs
in its own process (``python -m httpool._bench.server``) so that on a small
machine it does not share the client's GIL. Each connection is an asyncio
``Protocol`` that scans its buffer for complete requests: a head ends at the
first ``b"\\r\\n\\r\\n"``; a ``Content-Length`` or chunked body after it is
skipped without being kept. Every complete request is answered with the same
prebuilt response, in arrival order, and all answers produced by one
``data_received`` call go out in one write, so pipelined requests are safe
and cheap. ``Connection: close`` or HTTP/1.0 closes the connection after its
answer; malformed input gets a 400 and a close. The body is ``--body-size``
bytes, except for a target ``/size/N``, answered with a body of N bytes (up to
64 MiB; each size's responses are built once, on first use), so that one
server serves small requests and large streamed bodies alike.

With ``--h2c`` the server speaks HTTP/2 with prior knowledge instead (the h2
library, one state machine per connection; small bodies only, so that no
answer ever waits for a flow-control window).

The server knows nothing about httpool. With ``--port 0`` it binds an
ephemeral port and prints it as the first line of stdout. With
``--watch-stdin`` it exits when its stdin reaches end of file, which is how
the parent process makes sure no server outlives it, even if the parent is
killed; in that mode it also ignores Ctrl-C, which the parent handles.

Client side, ``BenchServer`` starts the process, reads its port and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import subprocess
import sys
import threading
import types
import typing
from collections.abc import Sequence

_HEAD_END = b"\r\n\r\n"
# Bound the memory a client can make us buffer while we look for a head end.
_MAX_HEAD = 64 * 1024
_SIZE_PREFIX = b"/size/"
_MAX_SIZED_BODY = 64 * 1024 * 1024
# Over h2c every body goes out in one DATA frame, within the initial windows.
MAX_H2C_BODY = 16 * 1024


def build_response(body_size: int, *, close: bool = False, head_only: bool = False) -> bytes:
    """The bytes of the one response the server sends, for a body of ``body_size`` bytes."""
    pattern = b"0123456789abcdef"
    body = (pattern * (body_size // len(pattern) + 1))[:body_size]
    lines = [
        b"HTTP/1.1 200 OK",
        b"Content-Type: application/octet-stream",
        b"Content-Length: " + str(body_size).encode("ascii"),
    ]
    if close:
        lines.append(b"Connection: close")
    head = b"\r\n".join(lines) + _HEAD_END
    return head if head_only else head + body


_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Responses:
    """The four prebuilt variants of the answer, computed once per server,
    and those of each ``/size/N`` target, computed on its first request."""

    __slots__ = ("_sized", "close", "head_close", "head_keep_alive", "keep_alive")

    def __init__(self, body_size: int) -> None:
        self.keep_alive = build_response(body_size)
        self.close = build_response(body_size, close=True)
        self.head_keep_alive = build_response(body_size, head_only=True)
        self.head_close = build_response(body_size, close=True, head_only=True)
        self._sized: dict[int, _Responses] = {}

    def for_target(self, target: bytes) -> _Responses:
        if not target.startswith(_SIZE_PREFIX):
            return self
        digits = target[len(_SIZE_PREFIX) :]
        if not digits.isdigit() or int(digits) > _MAX_SIZED_BODY:
            raise _BadRequest()
        size = int(digits)
        sized = self._sized.get(size)
        if sized is None:
            sized = self._sized[size] = _Responses(size)
        return sized


class _BadRequest(Exception):
    pass


class HTTPProtocol(asyncio.Protocol):
    """One client connection. States: reading a head, skipping a body of
    known length, or skipping a chunked body."""

    def __init__(self, responses: _Responses) -> None:
        self._responses = responses
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._body_left = 0  # bytes of a Content-Length body not yet seen
        self._chunked = False  # inside a chunked body
        self._pending = b""  # the answer owed once the request body ends
        self._pending_close = False
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._closing or self._transport is None:
            return
        self._buffer += data
        out: list[bytes] = []
        try:
            self._process(out)
        except _BadRequest:
            out.append(_BAD_REQUEST)
            self._closing = True
        if out:
            self._transport.write(b"".join(out))
        if self._closing:
            self._transport.close()

    def _process(self, out: list[bytes]) -> None:
        buf = self._buffer
        while not self._closing:
            if self._body_left:
                taken = min(self._body_left, len(buf))
                del buf[:taken]
                self._body_left -= taken
                if self._body_left:
                    return
                self._finish(out)
            elif self._chunked:
                if not self._skip_chunks():
                    return
                self._chunked = False
                self._finish(out)
            else:
                end = buf.find(_HEAD_END)
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise _BadRequest()
                    return
                head = bytes(buf[:end])
                del buf[: end + 4]
                self._start_request(head, out)

    def _start_request(self, head: bytes, out: list[bytes]) -> None:
        # Tolerate stray CRLFs between pipelined requests (RFC 9112 section 2.2).
        head = head.lstrip(b"\r\n")
        request_line, _, fields = head.partition(b"\r\n")
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise _BadRequest()
        lowered = fields.lower()
        close = parts[2] == b"HTTP/1.0" or b"connection: close" in lowered
        responses = self._responses.for_target(parts[1])
        if parts[0] == b"HEAD":
            self._pending = responses.head_close if close else responses.head_keep_alive
        else:
            self._pending = responses.close if close else responses.keep_alive
        self._pending_close = close
        if b"transfer-encoding:" in lowered:
            if b"chunked" not in lowered:
                raise _BadRequest()
            self._chunked = True
            return
        self._body_left = _content_length(lowered)
        if not self._body_left:
            self._finish(out)

    def _skip_chunks(self) -> bool:
        """Drop chunked body bytes from the buffer; ``True`` once the body ended."""
        buf = self._buffer
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                if len(buf) > _MAX_HEAD:
                    raise _BadRequest()
                return False
            size_field = bytes(buf[:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise _BadRequest() from None
            if size == 0:
                # The last chunk: the body ends after the (ignored) trailers.
                trailer_end = buf.find(_HEAD_END, line_end)
                if trailer_end < 0:
                    return False
                del buf[: trailer_end + 4]
                return True
            total = line_end + 2 + size + 2
            if len(buf) < total:
                return False
            del buf[:total]

    def _finish(self, out: list[bytes]) -> None:
        out.append(self._pending)
        self._closing = self._pending_close


def _content_length(lowered_fields: bytes) -> int:
    start = lowered_fields.find(b"content-length:")
    if start < 0:
        return 0
    start += len(b"content-length:")
    end = lowered_fields.find(b"\r\n", start)
    value = lowered_fields[start : end if end >= 0 else len(lowered_fields)].strip()
    if not value.isdigit():
        raise _BadRequest()
    return int(value)


class H2CProtocol(asyncio.Protocol):
    """One HTTP/2 client connection with prior knowledge: every request gets
    the same small body, in one DATA frame that ends the stream."""

    def __init__(self, body: bytes) -> None:
        # Imported here: the h2 library is optional, and only this mode needs it.
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self._body = body
        self._headers = [
            (b":status", b"200"),
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        self._h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._h2.initiate_connection()
        transport.write(self._h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        from h2.events import ConnectionTerminated, DataReceived, RequestReceived
        from h2.exceptions import ProtocolError

        transport, h2 = self._transport, self._h2
        if transport is None or transport.is_closing():
            return
        try:
            events = h2.receive_data(data)
        except ProtocolError:
            transport.write(h2.data_to_send())
            transport.close()
            return
        closing = False
        for event in events:
            if isinstance(event, RequestReceived) and event.stream_id is not None:
                h2.send_headers(event.stream_id, self._headers)
                h2.send_data(event.stream_id, self._body, end_stream=True)
            elif isinstance(event, DataReceived) and event.stream_id is not None:
                # Request bodies are dropped; give their window back at once.
                h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, ConnectionTerminated):
                closing = True
        transport.write(h2.data_to_send())
        if closing:
            transport.close()


async def serve(
    host: str, port: int, body_size: int, *, watch_stdin: bool, h2c: bool = False
) -> None:
    """Serve until cancelled (or until stdin closes, with ``watch_stdin``)."""
    loop = asyncio.get_running_loop()
    factory: typing.Callable[[], asyncio.Protocol]
    if h2c:
        body = build_response(body_size).partition(_HEAD_END)[2]
        factory = functools.partial(H2CProtocol, body)
    else:
        responses = _Responses(body_size)
        factory = functools.partial(HTTPProtocol, responses)
    server = await loop.create_server(factory, host, port, reuse_address=True, backlog=1024)
    bound_port = server.sockets[0].getsockname()[1]
    print(bound_port, flush=True)
    stop = asyncio.Event()
    if watch_stdin:
        # A blocking read in a daemon thread works for pipes, files and
        # terminals alike, where connect_read_pipe does not.
        def wait_for_eof() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, daemon=True).start()
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m httpool._bench.server",
        description="Answer every HTTP/1.1 request with the same small response.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--body-size",
        type=int,
        default=2,
        metavar="N",
        help="response body bytes (default 2)",
    )
    parser.add_argument(
        "--watch-stdin",
        action="store_true",
        help="exit when stdin closes; ignore Ctrl-C",
    )
    parser.add_argument(
        "--h2c",
        action="store_true",
        help=f"speak HTTP/2 with prior knowledge (needs h2; bodies <= {MAX_H2C_BODY} bytes)",
    )
    args = parser.parse_args(argv)
    if args.body_size < 0:
        parser.error("--body-size must be >= 0")
    if args.h2c and args.body_size > MAX_H2C_BODY:
        parser.error(f"--h2c serves bodies of at most {MAX_H2C_BODY} bytes")
    if args.watch_stdin:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(args.host, args.port, args.body_size, watch_stdin=args.watch_stdin, h2c=args.h2c)
        )
    return 0


@typing.final
class BenchServer:
    """Run the bench server in a child process for the duration of a ``with`` block
    (speaking h2c with ``h2c=True``).

    ``url`` is the server's root URL once started. Leaving the block, even by
    an exception or Ctrl-C, stops and reaps the process; the child also exits
    by itself if this process dies, because its stdin pipe closes then.
    """

    def __init__(self, *, body_size: int = 2, host: str = "127.0.0.1", h2c: bool = False) -> None:
        self.host = host
        self.body_size = body_size
        self.h2c = h2c
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def pid(self) -> int:
        assert self._process is not None, "BenchServer is not running"
        return self._process.pid

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "httpool._bench.server",
            "--host",
            self.host,
            "--port",
            "0",
            "--body-size",
            str(self.body_size),
            "--watch-stdin",
        ]
        if self.h2c:
            argv.append("--h2c")
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._process.stdout is not None
        # ``with`` calls stop() only once start() returned: a Ctrl-C while the
        # child boots must reap it here.
        try:
            line = self._process.stdout.readline()
            if not line.strip().isdigit():
                raise RuntimeError(f"the bench server did not start (its first output: {line!r})")
        except BaseException:
            self.stop()
            raise
        self.port = int(line)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # Closing stdin asks the child to exit; escalate if it does not.
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> BenchServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
