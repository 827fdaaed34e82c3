"""What h11 itself executes per request, driven the way httpool drives it.

Usage: python scripts/h11_cost.py [--requests 4000]   (needs valgrind)

Theory of operation: httpool hands h11 request headers it has already checked
(``_parsed=True``), sends the request and its end, feeds h11 the response and
takes the head from it, then bypasses h11 for a Content-Length body and starts
a fresh parser for the next request (see ``_async/http11.py``). This repeats
exactly those h11 calls on nginx's 9-header response to a small static file,
under ``valgrind --tool=callgrind``, with N requests and with none, and prints
the difference divided by N: h11's own instructions per request, the floor
under any HTTP/1.1 request httpool makes while h11 parses it. Compare it with
a whole request of httpool or its peers in ``nox -s instructions``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from callgrind import count_instructions

SCENARIO = rb"""
import sys
import h11
from httpool._h11 import _trusted_headers

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 13:51:57 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 14\r\n"
    b"Last-Modified: Thu, 26 Nov 2026 13:50:00 GMT\r\nConnection: keep-alive\r\n"
    b'ETag: "abc-e"\r\nAccept-Ranges: bytes\r\n\r\nHello, world!\n'
)
headers = _trusted_headers([(b"Host", b"127.0.0.1:8080"), (b"Accept", b"*/*")])
end = h11.EndOfMessage()
for _ in range(int(sys.argv[1])):
    connection = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=65536)
    request = h11.Request(method=b"GET", target=b"/small.txt", headers=headers, _parsed=True)
    connection.send_with_data_passthrough(request)
    connection.send_with_data_passthrough(end)
    connection.receive_data(RESPONSE)
    assert type(connection.next_event()) is h11.Response
    connection.trailing_data
"""


def _instructions(workdir: str, requests: int) -> int:
    script = os.path.join(workdir, "scenario.py")
    with open(script, "wb") as file:
        file.write(SCENARIO)
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return count_instructions(
        [sys.executable, script, str(requests)],
        os.path.join(workdir, f"callgrind.{requests}"),
        env={**os.environ, "PYTHONPATH": project},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as workdir:
        busy = _instructions(workdir, args.requests)
        idle = _instructions(workdir, 0)
    print(f"h11, as httpool drives it: {(busy - idle) / args.requests:,.0f} instructions/request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
