"""``httpool get URL``: one request through a pool, its response printed, like a tiny curl.

Theory of operation: one blocking ``ConnectionPool`` sends one request
(``pool.stream``, so that a large body is copied to stdout chunk by chunk,
never held whole). The response head (status line and header fields, as
received) and then the body go to stdout, as bytes. With ``--verbose``, what
concerns the connection goes to stderr, each line starting with ``*`` (and
``>`` for the request as sent): the remote and local addresses, the protocol,
TLS version, cipher and ALPN, and the time each step took. Those come from
the response's ``network_stream`` extension and from a ``trace`` callback
that timestamps each step the pool reports; without ``--verbose`` no trace
callback is installed.

Exit status: 0 once a response arrived, whatever its status; 1 when the pool
raised (the error on stderr); 2 for a usage error (``cli.py``).
"""

from __future__ import annotations

import sys
import time
import typing

from .._exceptions import HttpoolError
from .._models import Response
from .._sync.connection_pool import ConnectionPool


class _Timeline:
    """The ``trace`` callback of ``--verbose``: when each step started and ended."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.events: dict[str, float] = {}
        self.request_head: list[bytes] = []

    def __call__(self, name: str, info: dict[str, typing.Any]) -> None:
        self.events.setdefault(name, time.perf_counter())
        if name.endswith(".send_request_headers.started") and "request" in info:
            request = info["request"]
            version = b"HTTP/2" if name.startswith("http2.") else b"HTTP/1.1"
            self.request_head = [b"%s %s %s" % (request.method, request.url.target, version)]
            self.request_head += [b"%s: %s" % (name, value) for name, value in request.headers]

    def span(self, start: str, end: str) -> float | None:
        """Milliseconds between two events whose names end so; None if either is missing."""
        first = self._find(start)
        last = self._find(end)
        if first is None or last is None:
            return None
        return (last - first) * 1000

    def _find(self, suffix: str) -> float | None:
        return next((t for name, t in self.events.items() if name.endswith(suffix)), None)


def run_get(
    url: str,
    *,
    method: str,
    headers: list[tuple[bytes, bytes]],
    content: bytes | None,
    pool_options: dict[str, typing.Any],
    extensions: dict[str, typing.Any],
    verbose: bool,
) -> int:
    """Send one request, print the response; return the exit status."""
    timeline = _Timeline() if verbose else None
    if timeline is not None:
        extensions = {**extensions, "trace": timeline}
    out = sys.stdout.buffer
    try:
        with (
            ConnectionPool(**pool_options) as pool,
            pool.stream(
                method, url, headers=headers or None, content=content, extensions=extensions
            ) as response,
        ):
            if timeline is not None:
                _print_connection(response, timeline)
            out.write(_response_head(response))
            out.flush()
            for chunk in response.iter_stream():
                out.write(chunk)
            out.flush()
    except HttpoolError as exc:
        out.flush()
        print(f"httpool get: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if timeline is not None:
        _print_timings(timeline)
    return 0


def _response_head(response: Response) -> bytes:
    version = response.extensions.get("http_version", b"HTTP/1.1")
    status_line = b"%s %d" % (version, response.status)
    reason = response.extensions.get("reason_phrase", b"")
    if reason:
        status_line += b" " + reason
    lines = [status_line] + [b"%s: %s" % (name, value) for name, value in response.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _print_connection(response: Response, timeline: _Timeline) -> None:
    stream = response.extensions.get("network_stream")
    lines = []
    if stream is not None:
        remote, local = stream.get_extra_info("server_addr"), stream.get_extra_info("client_addr")
        if remote is not None:
            line = f"* remote:   {_address(remote)}"
            if local is not None:
                line += f" (local {_address(local)})"
            lines.append(line)
    version = response.extensions.get("http_version", b"?").decode("ascii", "replace")
    lines.append(f"* protocol: {version}")
    tls = None if stream is None else stream.get_extra_info("ssl_object")
    if tls is None:
        lines.append("* TLS:      none (plain TCP)")
    else:
        cipher = tls.cipher()
        alpn = tls.selected_alpn_protocol()
        lines.append(
            f"* TLS:      {tls.version()}, cipher {cipher[0] if cipher else '?'}"
            + (f", ALPN {alpn}" if alpn else ", no ALPN")
        )
    lines += [f"> {line.decode('latin-1')}" for line in timeline.request_head]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _address(address: typing.Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return str(address)


def _print_timings(timeline: _Timeline) -> None:
    total = (time.perf_counter() - timeline.started) * 1000
    steps = [
        ("connect", timeline.span("connect_tcp.started", "connect_tcp.complete")),
        ("TLS", timeline.span("start_tls.started", "start_tls.complete")),
        ("send", timeline.span("send_request_headers.started", "send_request_body.complete")),
        ("wait", timeline.span("send_request_body.complete", "receive_response_headers.complete")),
        ("body", timeline.span("receive_response_headers.complete", "response_closed.started")),
        ("total", total),
    ]
    shown = ", ".join(f"{name} {ms:.3f}" for name, ms in steps if ms is not None)
    print(f"* timings ms: {shown}", file=sys.stderr, flush=True)
