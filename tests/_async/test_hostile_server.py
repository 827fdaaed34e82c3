"""A hostile HTTP/1.1 server: every framing attack and malformation we could think of.

Each case is a script of raw bytes for ``tests/support/fault_server.py``
(the faults of ``test_faults.py`` and the response splitting of
``test_desync.py`` are not repeated here). Every case must end in its
documented outcome: ``RemoteProtocolError`` (the server broke HTTP), a
network error or a timeout, never ``LocalProtocolError`` (which would blame
the caller); or, where the bytes are valid (if odd) HTTP, the right body.
It must end within its time bound, with the memory the process allocated
meanwhile (tracemalloc's peak, the server's threads included) under
``MEMORY_BOUND``; and then the same pool serves a normal request, on a new
connection whenever the hostile one ended in an error.

Written once; runs on asyncio, trio and (generated) threads.
"""

from __future__ import annotations

import time
import tracemalloc
import typing

import pytest

import httpool
from httpool import AsyncConnectionPool
from tests.support.fault_server import CLOSE, HANG, FaultServer, Script, drip_pieces, send

PROMPT = {"timeout": {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}}
SHORT_READ = {"timeout": {"connect": 2.0, "read": 0.2, "write": 2.0, "pool": 2.0}}
TOTAL = {"timeout": {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0, "total": 0.5}}
# Seconds. The exception type already proves that a prompt case did not end
# in a timeout; the bounds allow for a loaded CI machine under tracemalloc.
PROMPT_BOUND = 5.0
TIMEOUT_BOUND = 5.0  # for cases only a timeout can end (0.2 s read, 0.5 s total)
# Bytes: tracemalloc's peak over one case. The largest seen is about 2.5 MiB,
# for 10,000 header fields in one head (h11's parsed fields); everything
# else stays under 600 KiB.
MEMORY_BOUND = 8 * 1024 * 1024
TOO_LARGE = "larger than 65536 bytes"

RPE = httpool.RemoteProtocolError
OK = None  # the case is valid HTTP: the request succeeds


class Case(typing.NamedTuple):
    name: str
    script: Script
    error: type[Exception] | None
    match: str = ""
    body: bytes = b"ok"
    extensions: dict[str, typing.Any] = PROMPT


def head(*lines: bytes, status: bytes = b"HTTP/1.1 200 OK") -> bytes:
    return b"\r\n".join((status, *lines)) + b"\r\n\r\n"


CHUNKED = b"Transfer-Encoding: chunked"
TRAILER = b"X-T: " + b"t" * 200 + b"\r\n"

CASES = [
    # Content-Length: duplicated, conflicting, signed, spaced, huge, overflowing.
    Case("cl-duplicate-same", [send(head(b"Content-Length: 2", b"Content-Length: 2") + b"ok")], OK),
    Case("cl-list-same", [send(head(b"Content-Length: 2, 2") + b"ok")], OK),
    Case("cl-list-conflicting", [send(head(b"Content-Length: 2, 3") + b"ok"), HANG], RPE),
    Case("cl-plus-sign", [send(head(b"Content-Length: +2") + b"ok"), HANG], RPE),
    Case("cl-negative", [send(head(b"Content-Length: -2") + b"ok"), HANG], RPE),
    Case("cl-hex", [send(head(b"Content-Length: 0x2") + b"ok"), HANG], RPE),
    Case("cl-inner-space", [send(head(b"Content-Length: 1 1") + b"ok"), HANG], RPE),
    Case("cl-outer-spaces", [send(head(b"Content-Length:    2   ") + b"ok")], OK),
    Case("cl-leading-zeros", [send(head(b"Content-Length: 0002") + b"ok")], OK),
    Case("cl-empty", [send(head(b"Content-Length: ") + b"ok"), HANG], RPE),
    Case("cl-nul", [send(head(b"Content-Length: 2\x00") + b"ok"), HANG], RPE),
    Case("cl-space-before-colon", [send(head(b"Content-Length : 2") + b"ok"), HANG], RPE),
    Case(
        "cl-20-digits-then-close", [send(head(b"Content-Length: " + b"9" * 20) + b"ok"), CLOSE], RPE
    ),
    Case("cl-21-digits", [send(head(b"Content-Length: " + b"9" * 21) + b"ok"), HANG], RPE),
    Case("cl-5000-digits", [send(head(b"Content-Length: " + b"9" * 5000) + b"ok"), HANG], RPE),
    Case("cl-2**64", [send(head(b"Content-Length: %d" % 2**64) + b"ok"), CLOSE], RPE),
    # Transfer-Encoding other than exactly "chunked".
    Case(
        "te-chunked-twice",
        [send(head(b"Transfer-Encoding: chunked, chunked") + b"0\r\n\r\n"), HANG],
        RPE,
    ),
    Case(
        "te-gzip-chunked",
        [send(head(b"Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n"), HANG],
        RPE,
    ),
    Case(
        "te-identity",
        [send(head(b"Transfer-Encoding: identity", b"Content-Length: 2") + b"ok"), HANG],
        RPE,
    ),
    Case("te-two-headers", [send(head(CHUNKED, CHUNKED) + b"0\r\n\r\n"), HANG], RPE),
    Case("te-uppercase", [send(head(b"Transfer-Encoding: CHUNKED") + b"2\r\nok\r\n0\r\n\r\n")], OK),
    Case(
        "te-with-cl",
        [send(head(CHUNKED, b"Content-Length: 2") + b"2\r\nok\r\n0\r\n\r\n")],
        RPE,
        "both",
    ),
    # Chunk sizes: huge, negative, with extensions, garbage, missing the final chunk.
    Case("chunk-size-2**64-1", [send(head(CHUNKED) + b"ffffffffffffffff\r\nok"), CLOSE], RPE),
    Case("chunk-size-24-digits", [send(head(CHUNKED) + b"f" * 24 + b"\r\nok"), HANG], RPE),
    Case("chunk-size-negative", [send(head(CHUNKED) + b"-2\r\nok\r\n0\r\n\r\n"), HANG], RPE),
    Case("chunk-size-0x", [send(head(CHUNKED) + b"0x2\r\nok\r\n0\r\n\r\n"), HANG], RPE),
    Case("chunk-size-empty", [send(head(CHUNKED) + b"\r\nok\r\n0\r\n\r\n"), HANG], RPE),
    Case("chunk-extensions", [send(head(CHUNKED) + b'2;a=b;c\r\nok\r\n0;x="y"\r\n\r\n')], OK),
    Case(
        "chunk-extension-100k", [send(head(CHUNKED) + b"2;" + b"x" * 100_000), HANG], RPE, TOO_LARGE
    ),
    Case("chunk-data-longer", [send(head(CHUNKED) + b"2\r\nokEXTRA\r\n0\r\n\r\n"), HANG], RPE),
    Case(
        "chunk-no-final-then-hang",
        [send(head(CHUNKED) + b"2\r\nok\r\n"), HANG],
        httpool.ReadTimeout,
        "",
        b"",
        SHORT_READ,
    ),
    Case("chunk-final-without-crlf", [send(head(CHUNKED) + b"2\r\nok\r\n0\r\n"), CLOSE], RPE),
    # h11 wants CRLF after a chunk size: it waits for one, up to the read timeout.
    Case(
        "chunk-bare-lf",
        [send(head(CHUNKED) + b"2\nok\n0\n\n"), HANG],
        httpool.ReadTimeout,
        "",
        b"",
        SHORT_READ,
    ),
    # Head syntax.
    Case("bare-lf-head", [send(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")], OK),
    Case("obs-fold", [send(head(b"X-A: 1", b" 2", b"Content-Length: 2") + b"ok")], OK),
    Case("obs-fold-first-line", [send(head(b" X-A: 1", b"Content-Length: 2") + b"ok"), HANG], RPE),
    Case("nul-in-value", [send(head(b"X-A: a\x00b", b"Content-Length: 2") + b"ok"), HANG], RPE),
    Case("cr-in-value", [send(head(b"X-A: a\rb", b"Content-Length: 2") + b"ok"), HANG], RPE),
    Case("space-before-colon", [send(head(b"X-A : 1", b"Content-Length: 2") + b"ok"), HANG], RPE),
    Case("space-in-name", [send(head(b"X A: 1", b"Content-Length: 2") + b"ok"), HANG], RPE),
    Case("empty-name", [send(head(b": 1", b"Content-Length: 2") + b"ok"), HANG], RPE),
    Case("bad-name-char", [send(head(b"X(A): 1", b"Content-Length: 2") + b"ok"), HANG], RPE),
    Case("obs-text-value", [send(head(b"X-A: caf\xe9", b"Content-Length: 2") + b"ok")], OK),
    Case("many-tiny-headers", [send(head(*[b"a: b"] * 10_000, b"Content-Length: 2") + b"ok")], OK),
    Case(
        "endless-header-lines",
        [send(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 50_000), HANG],
        RPE,
        TOO_LARGE,
    ),
    Case("reason-100k", [send(b"HTTP/1.1 200 " + b"O" * 100_000 + b"\r\n"), HANG], RPE, TOO_LARGE),
    # Status lines.
    Case("status-no-reason", [send(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok")], OK),
    Case(
        "status-two-digits",
        [send(head(b"Content-Length: 2", status=b"HTTP/1.1 20 OK") + b"ok"), HANG],
        RPE,
    ),
    Case(
        "status-negative",
        [send(head(b"Content-Length: 2", status=b"HTTP/1.1 -200 OK") + b"ok"), HANG],
        RPE,
    ),
    Case(
        "status-099",
        [send(head(b"Content-Length: 2", status=b"HTTP/1.1 099 OK") + b"ok"), HANG],
        RPE,
    ),
    Case(
        "status-lowercase",
        [send(head(b"Content-Length: 2", status=b"http/1.1 200 OK") + b"ok"), HANG],
        RPE,
    ),
    Case("status-icy", [send(head(b"Content-Length: 2", status=b"ICY 200 OK") + b"ok"), HANG], RPE),
    Case(
        "status-http-0.9",
        [send(head(b"Content-Length: 2", status=b"HTTP/0.9 200 OK") + b"ok"), HANG],
        RPE,
        "HTTP/0.9",
    ),
    Case(
        "status-http-2.0",
        [send(head(b"Content-Length: 2", status=b"HTTP/2.0 200 OK") + b"ok"), HANG],
        RPE,
        "HTTP/2.0",
    ),
    Case(
        "status-http-1.2", [send(head(b"Content-Length: 2", status=b"HTTP/1.2 200 OK") + b"ok")], OK
    ),
    Case(
        "status-nul-in-reason",
        [send(head(b"Content-Length: 2", status=b"HTTP/1.1 200 O\x00K") + b"ok"), HANG],
        RPE,
    ),
    # 1xx and 101.
    Case(
        "1xx-with-body",
        [
            send(
                head(b"Content-Length: 5", status=b"HTTP/1.1 100 Continue")
                + b"hello"
                + head(b"Content-Length: 2")
                + b"ok"
            ),
            HANG,
        ],
        RPE,
    ),
    Case(
        "101-unasked",
        [
            send(
                head(
                    b"Upgrade: evil",
                    b"Connection: upgrade",
                    status=b"HTTP/1.1 101 Switching Protocols",
                )
                + b"\x00\x01junk"
            ),
            HANG,
        ],
        RPE,
        "without a pending proposal",
    ),
    Case(
        "endless-1xx-dripped",
        [*drip_pieces([b"HTTP/1.1 103 Early Hints\r\n\r\n"] * 400, 0.02)],
        httpool.ReadTimeout,
        "total",
        b"",
        TOTAL,
    ),
    # Bodies and trailers.
    Case(
        "connection-close-then-more",
        [
            send(head(b"Connection: close", b"Content-Length: 2") + b"ok" + b"HTTP/1.1 200 OK\r\n"),
            CLOSE,
        ],
        OK,
    ),
    Case(
        "head-one-byte-per-write",
        [*drip_pieces([bytes([c]) for c in head(b"Content-Length: 2") + b"ok"], 0.001)],
        OK,
    ),
    Case(
        "body-longer-than-cl", [send(head(b"Content-Length: 2") + b"ok" + b"x" * 100_000), HANG], OK
    ),
    Case(
        "close-delimited-1.0",
        [send(head(b"Connection: keep-alive", status=b"HTTP/1.0 200 OK") + b"ok"), CLOSE],
        OK,
    ),
    Case(
        "trailers",
        [send(head(CHUNKED) + b"2\r\nok\r\n0\r\nX-T: 1\r\nContent-Length: 99\r\n\r\n")],
        OK,
    ),
    Case("trailers-nul", [send(head(CHUNKED) + b"2\r\nok\r\n0\r\nX-T: a\x00b\r\n\r\n"), HANG], RPE),
    # A complete trailer block that arrives by the end of the read after the
    # one that reached the limit is parsed (bounded: twice the limit at most).
    Case(
        "trailers-120k-complete",
        [send(head(CHUNKED) + b"2\r\nok\r\n0\r\n" + TRAILER * 600 + b"\r\n")],
        OK,
    ),
    Case(
        "trailers-endless",
        [send(head(CHUNKED) + b"2\r\nok\r\n0\r\n" + b"X-T: 1\r\n" * 15_000), HANG],
        RPE,
        TOO_LARGE,
    ),
    # A server that trickles one byte just inside every read timeout.
    Case(
        "trickle-head", [*drip_pieces([b"H"] * 400, 0.05)], httpool.ReadTimeout, "total", b"", TOTAL
    ),
    Case(
        "trickle-body",
        [send(head(b"Content-Length: 1000")), *drip_pieces([b"x"] * 400, 0.05)],
        httpool.ReadTimeout,
        "total",
        b"",
        TOTAL,
    ),
    Case(
        "trickle-chunks",
        [send(head(CHUNKED)), *drip_pieces([b"1\r\nx\r\n"] * 400, 0.05)],
        httpool.ReadTimeout,
        "total",
        b"",
        TOTAL,
    ),
]


async def _assert_served_on_a_clean_connection(
    pool: AsyncConnectionPool, server: FaultServer, errored: bool
) -> None:
    pool.check_invariants()
    stats = pool.stats()
    assert (stats.active, stats.streams_in_use, stats.queued) == (0, 0, 0), stats
    if errored:
        assert stats.connections == 0, "the failed connection was kept"
    response = await pool.request("GET", server.url + "/ok", extensions=PROMPT)
    assert (response.status, response.content) == (200, b"ok")
    if errored:
        assert server.connections_accepted == 2
    pool.check_invariants()
    assert pool.stats().connections == 1


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_response(case: Case) -> None:
    with FaultServer(routes={"/hostile": case.script}) as server:
        async with AsyncConnectionPool(max_connections=1) as pool:
            tracemalloc.start()
            try:
                start = time.monotonic()
                if case.error is None:
                    response = await pool.request(
                        "GET", server.url + "/hostile", extensions=case.extensions
                    )
                    assert response.content == case.body
                else:
                    with pytest.raises(case.error, match=case.match or None) as info:
                        await pool.request(
                            "GET", server.url + "/hostile", extensions=case.extensions
                        )
                    assert not isinstance(info.value, httpool.LocalProtocolError)
                elapsed = time.monotonic() - start
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            bound = PROMPT_BOUND if case.extensions is PROMPT else TIMEOUT_BOUND
            assert elapsed < bound
            assert peak < MEMORY_BOUND, f"{peak} bytes"
            await _assert_served_on_a_clean_connection(pool, server, case.error is not None)
