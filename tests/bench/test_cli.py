"""The ``httpool bench`` command line, its embedded server and its statistics.

The end-to-end tests run ``python -m httpool`` in a subprocess, as a user
would, and check the printed numbers and that the embedded server process is
gone afterwards (also after Ctrl-C and after the CLI itself is killed).
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from httpool._bench.cli import main
from httpool._bench.config import BenchConfig
from httpool._bench.results import BenchResult, Recorder
from httpool._bench.server import BenchServer

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "httpool", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            state = file.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: ask the kernel directly
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return state in ("Z", "X")


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def closed_port() -> int:
    """A loopback port that nothing listens on, so that connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# End to end, in a subprocess.


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_bench_embedded_server(runtime: str) -> None:
    result = run_cli("bench", "-n", "200", "-c", "8", "--runtime", runtime)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"runtime:     {runtime}, concurrency 8, max connections 8" in out
    assert "requests:    200 sent, 200 succeeded, 0 failed" in out
    assert "statuses:    200: 200" in out
    assert "errors:      none" in out
    throughput = re.search(r"throughput:  ([\d,.]+) requests/s", out)
    assert throughput is not None
    assert float(throughput.group(1).replace(",", "")) > 0
    latency = re.search(r"latency ms:  p50 ([\d.]+)  p90 ([\d.]+)  p99 ([\d.]+)  max ([\d.]+)", out)
    assert latency is not None
    p50, p90, p99, top = (float(value) for value in latency.groups())
    assert 0 < p50 <= p90 <= p99 <= top
    pool = re.search(r"pool:        (.*)", out)
    assert pool is not None
    counters = dict(item.rsplit(" ", 1) for item in pool.group(1).split(", "))
    assert counters["requests"] == "200"
    assert counters["queued"] == "0"
    assert counters["active"] == "0"
    assert 1 <= int(counters["opened"]) <= 8
    # Not a TTY: no progress line on stderr.
    assert "requests/s" not in result.stderr
    pid = re.search(r"server:      embedded, pid (\d+)", out)
    assert pid is not None
    assert process_gone(int(pid.group(1)))


def test_bench_json_output() -> None:
    result = run_cli("bench", "-n", "50", "-c", "4", "--json", "--body-size", "100")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["runtime"] == "asyncio"
    assert summary["method"] == "POST"  # an upload without --method
    assert summary["body_size"] == 100
    assert summary["requests"] == 50
    assert summary["succeeded"] == 50
    assert summary["failed"] == 0
    assert summary["statuses"] == {"200": 50}
    assert summary["errors"] == {}
    assert summary["throughput_rps"] > 0
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert summary["pool"]["requests"] == 50
    assert summary["pool"]["opened"] <= 4
    assert process_gone(summary["server_pid"])


def test_bad_url_exits_2_with_the_error() -> None:
    result = run_cli("bench", "ftp://example.com/", "-n", "1")
    assert result.returncode == 2
    assert "UnsupportedProtocol" in result.stderr
    assert "ftp" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("example.com", "UnsupportedProtocol"),
        ("ws://example.com/", "UnsupportedProtocol"),
        ("http:///path", "LocalProtocolError"),
        ("http://example.com:99999/", "LocalProtocolError"),
    ],
)
def test_bad_urls_in_process(url: str, error: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", url, "-n", "1"]) == 2
    captured = capsys.readouterr()
    assert f"httpool bench: error: {error}:" in captured.err
    assert captured.out == ""


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["bench", "-n", "0"], ["bench", "--runtime", "gevent"], []):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_trio_runtime_without_trio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A None entry in sys.modules makes the import machinery report trio as absent.
    monkeypatch.setitem(sys.modules, "trio", None)
    assert main(["bench", "http://127.0.0.1:1/", "--runtime", "trio"]) == 2
    assert "needs trio installed" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", ["sync", "asyncio"])
def test_failed_requests_exit_1(runtime: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    assert main(["bench", url, "-n", "6", "-c", "2", "--runtime", runtime, "--timeout", "5"]) == 1
    out = capsys.readouterr().out
    assert "requests:    6 sent, 0 succeeded, 6 failed" in out
    assert "ConnectError: 6" in out
    assert "latency ms:  n/a" in out


def test_in_process_against_test_server(capsys: pytest.CaptureFixture[str]) -> None:
    http_server = pytest.importorskip("tests.support.http_server")
    with http_server.HTTPServer() as server:
        url = server.url + "/echo"
        status = main(["bench", url, "-n", "40", "-c", "4", "--body-size", "10", "--json"])
        assert status == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["succeeded"] == 40
        assert summary["server_pid"] is None
        # The server saw every request, each one an upload.
        assert len(server.requests) == 40
        assert {head.method for head in server.requests} == {b"POST"}
        assert summary["pool"]["opened"] == server.connections_accepted <= 4


# Interruption: the server never outlives the CLI.


def read_until(fd: int, pattern: bytes, timeout: float = 20.0) -> bytes:
    """Read ``fd`` until ``pattern`` is seen; fail after ``timeout`` seconds."""
    data = b""
    deadline = time.monotonic() + timeout
    while pattern not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"{pattern!r} not seen in {data!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # a pty reads EIO once the other side closed
                chunk = b""
            assert chunk, f"{pattern!r} not seen before EOF in {data!r}"
            data += chunk
    return data


def interruptible() -> None:
    """A child's ``preexec_fn``: Ctrl-C (SIGINT) at its default, KeyboardInterrupt.
    A suite started in the background by a shell without job control inherits
    SIGINT ignored, and Python leaves an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def cli_under_load(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Run an endless ``httpool bench`` on the embedded server and yield the CLI
    process and the server's pid once requests are flowing; kill the CLI after.

    Its stderr is a pseudo-terminal, so that the CLI shows its progress line.
    """
    parent, child = pty.openpty()
    try:
        command = [sys.executable, "-m", "httpool", "bench", "-n", "100000000", *args]
        try:
            process = subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.PIPE, stderr=child, preexec_fn=interruptible
            )
        finally:
            os.close(child)  # the CLI holds its own copy
        try:
            seen = read_until(parent, b"requests/s")  # the progress line
            pid_match = re.search(rb"\(pid (\d+)\)", seen)
            assert pid_match is not None
            yield process, int(pid_match.group(1))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()
    finally:
        os.close(parent)


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_ctrl_c_stops_the_embedded_server(runtime: str) -> None:
    with cli_under_load("-c", "4", "--runtime", runtime) as (process, server_pid):
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 130
        assert process_gone(server_pid)


def test_killed_cli_leaves_no_server() -> None:
    with cli_under_load("-c", "2") as (process, server_pid):
        process.kill()  # no cleanup code runs: the server must notice on its own
        process.wait(timeout=TIMEOUT)
        assert wait_gone(server_pid)


# The embedded server on its own.


@pytest.fixture(scope="module")
def bench_server() -> Iterator[BenchServer]:
    with BenchServer(body_size=5) as server:
        pid = server.pid
        yield server
    assert process_gone(pid)


class _InterruptedPipe:
    """A child's stdout whose first read is cut short by Ctrl-C."""

    def __init__(self, pipe: typing.IO[bytes]) -> None:
        self._pipe = pipe

    def readline(self) -> bytes:
        raise KeyboardInterrupt

    def close(self) -> None:
        self._pipe.close()


def test_server_interrupted_while_starting_is_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: typing.Any, **kwargs: typing.Any) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)
        assert process.stdout is not None
        process.stdout = _InterruptedPipe(process.stdout)  # type: ignore[assignment]
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(KeyboardInterrupt), BenchServer():
        pytest.fail("the server cannot have started")
    (process,) = started
    assert process.returncode is not None  # waited for: no orphan, no zombie


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` at once and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n"
OK_CLOSE = OK[:-2] + b"Connection: close\r\n\r\n"


def test_server_answers_pipelined_requests_in_order(bench_server: BenchServer) -> None:
    requests = (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    body = b"01234"
    expected = OK + body + OK + body + OK + OK + body + OK_CLOSE + body
    assert exchange(bench_server.port, requests) == expected


def test_server_answers_requests_split_across_reads(bench_server: BenchServer) -> None:
    with socket.create_connection(("127.0.0.1", bench_server.port), timeout=5) as sock:
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nwxyz"
        for byte in range(len(request)):
            sock.sendall(request[byte : byte + 1])
        expected = OK + b"01234"
        received = b""
        while len(received) < len(expected):
            chunk = sock.recv(65536)
            assert chunk
            received += chunk
        assert received == expected


def test_server_rejects_garbage(bench_server: BenchServer) -> None:
    answer = exchange(bench_server.port, b"NONSENSE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    answer = exchange(bench_server.port, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_server_closes_after_http_1_0(bench_server: BenchServer) -> None:
    assert exchange(bench_server.port, b"GET / HTTP/1.0\r\n\r\n") == OK_CLOSE + b"01234"


# The statistics.


def test_percentiles_use_nearest_rank() -> None:
    config = BenchConfig(url="http://example.com/", requests=100, concurrency=1)
    recorder = Recorder(100)
    for ms in range(100, 0, -1):
        recorder.success(200, time_started(recorder, ms))
    recorder.failure(OSError("boom"), 0.0)
    recorder.stop()
    result = BenchResult.from_recorder(config, "sync", recorder, None)
    latency = result.latency_ms()
    assert latency == pytest.approx({"p50": 50, "p90": 90, "p99": 99, "max": 100}, abs=0.5)
    assert result.succeeded == 100
    assert result.failed == 1
    assert result.errors == {"OSError": 1}
    assert result.error_samples == {"OSError": "boom"}
    assert "  OSError: 1 (e.g. 'boom')" in result.report()


def time_started(recorder: Recorder, ms: int) -> float:
    """A start time that makes the request's latency ``ms`` milliseconds."""
    return time.perf_counter() - ms / 1000
