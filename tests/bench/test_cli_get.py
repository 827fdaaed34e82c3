"""``httpool get``: one response printed (status line, header fields, body), ``-v`` for the
connection, and the request options (``-X``, ``-H``, ``-d``, ``--cacert``, ``--insecure``,
``--http2``), run in a subprocess as a user would.
"""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.bench.test_cli import ROOT, TIMEOUT, closed_port

http_server = pytest.importorskip("tests.support.http_server")


def get(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``httpool get`` with bytes out: the body is printed as received."""
    return subprocess.run(
        [sys.executable, "-m", "httpool", "get", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[typing.Any]:
    with http_server.HTTPServer() as running:
        yield running


def test_prints_the_response(server: typing.Any) -> None:
    result = get(server.url + "/")
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"content-length: 13" in [line.lower() for line in lines[1:]]
    assert body == b"Hello, world!"
    assert result.stderr == b""  # quiet without -v


def test_status_of_an_error_response_is_printed_and_exits_0(server: typing.Any) -> None:
    result = get(server.url + "/status/404")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/1.1 404 Not Found\r\n")


def test_verbose_shows_the_connection_request_and_timings(server: typing.Any) -> None:
    result = get("-v", server.url + "/")
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert re.search(r"^\* remote:   127\.0\.0\.1:\d+ \(local 127\.0\.0\.1:\d+\)$", err, re.M)
    assert "* protocol: HTTP/1.1\n" in err
    assert "* TLS:      none (plain TCP)\n" in err
    assert "> GET / HTTP/1.1\n" in err
    assert re.search(r"^> Host: 127\.0\.0\.1:\d+$", err, re.M)
    timings = re.search(
        r"^\* timings ms: connect [\d.]+, send [\d.]+, wait [\d.]+, .*total", err, re.M
    )
    assert timings, err
    assert result.stdout.endswith(b"Hello, world!")


def test_method_headers_and_data(server: typing.Any, tmp_path: Path) -> None:
    result = get(server.url + "/echo", "-d", "a body")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"\r\n\r\na body")
    assert server.requests[-1].method == b"POST"  # a body without -X: POST
    body = tmp_path / "body"
    body.write_bytes(b"from a file")
    result = get(server.url + "/echo", "-X", "PUT", "-d", f"@{body}", "-H", "X-Test: yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"\r\n\r\nfrom a file")
    assert server.requests[-1].method == b"PUT"
    assert (b"x-test", b"yes") in [(n.lower(), v) for n, v in server.requests[-1].headers]
    result = get(server.url + "/headers", "-H", "X-One: 1", "-H", "X-Two: 2")
    assert result.returncode == 0, result.stderr
    assert b"x-one: 1" in result.stdout.lower() and b"x-two: 2" in result.stdout.lower()


def test_failure_exits_1_with_the_error() -> None:
    result = get(f"http://127.0.0.1:{closed_port()}/")
    assert result.returncode == 1
    assert result.stderr.startswith(b"httpool get: error: ConnectError: ")
    assert result.stdout == b""


def test_bad_arguments_exit_2() -> None:
    for args in (["ftp://127.0.0.1/"], ["-X", "NOT A METHOD", "http://127.0.0.1:1/"]):
        result = get(*args)
        assert result.returncode == 2
        assert result.stdout == b""
    assert b"is not an HTTP method" in result.stderr


def test_without_url_asks_the_embedded_server() -> None:
    result = get()
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\n01"
    )
    assert b"httpool get: embedded server on http://127.0.0.1:" in result.stderr


def test_tls_with_cacert_and_insecure(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_context = http_server.make_tls_contexts(ca).server
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with http_server.HTTPServer(ssl_context=server_context) as server:
        url = server.url + "/"
        verified = get("-v", "--cacert", str(ca_file), url)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.endswith(b"Hello, world!")
        assert re.search(rb"\* TLS:      TLSv1\.[23], cipher \S+", verified.stderr)
        insecure = get("--insecure", url)
        assert insecure.returncode == 0, insecure.stderr
        untrusted = get(url)
        assert untrusted.returncode == 1
        assert b"CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


@pytest.mark.parametrize("tls", [False, True])
def test_http2(tls: bool, tmp_path: Path) -> None:
    pytest.importorskip("h2")
    from tests.support.h2_server import H2Server, make_tls_server, tls_material

    server = make_tls_server() if tls else H2Server()
    args = ["--http2", "-v"]
    if tls:
        ca_file = tmp_path / "ca.pem"
        tls_material()[0].cert_pem.write_to_path(str(ca_file))
        args += ["--cacert", str(ca_file)]
    with server:
        result = get(*args, server.url + "/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/2 200\r\n")
    err = result.stderr.decode()
    assert "* protocol: HTTP/2\n" in err
    assert "> GET / HTTP/2\n" in err
    if tls:
        assert ", ALPN h2" in err
