"""``httpool bench`` as a user meets it: arguments checked up front, help text, ``--version``,
``-c`` capped at ``-n``, runs that fail (or cannot succeed) said to fail, the progress bar on a
terminal only, the latency histogram, Ctrl-C's partial results, and what is sent
(``--method``, ``--header``, ``--data``). Every test runs ``python -m httpool`` in a subprocess.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import httpool
from httpool._bench.cli import build_parser
from httpool._bench.config import BenchConfig
from httpool._bench.results import BenchResult, Recorder
from tests.bench.test_cli import (
    ROOT,
    TIMEOUT,
    closed_port,
    interruptible,
    process_gone,
    read_until,
    run_cli,
)

# Usage errors: exit 2 before anything is sent.


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"httpool {httpool.__version__}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "abc"], "argument -n/--requests: expected a whole number, got 'abc'"),
        (["-c", "1.5"], "argument -c/--concurrency: expected a whole number, got '1.5'"),
        (["--timeout", "soon"], "argument --timeout: expected a number of seconds, got 'soon'"),
        (["--method", "BAD METHOD"], "argument -X/--method: 'BAD METHOD' is not an HTTP method"),
        (["-X", "GET\r\n"], "is not an HTTP method"),
        (["-H", "no colon"], "argument -H/--header: 'no colon' is not a header"),
        (["-H", "Bad Name: x"], "'Bad Name' is not a header name"),
        (["-d", "@/nonexistent/body.bin"], "argument -d/--data: cannot read '/nonexistent/"),
    ],
)
def test_bad_arguments_are_refused_up_front(args: list[str], message: str) -> None:
    # A closed port: had anything been sent, the run would report ConnectErrors.
    result = run_cli("bench", f"http://127.0.0.1:{closed_port()}/", "-n", "3", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "invalid" not in result.stderr  # not argparse's "invalid _positive_int value"
    assert result.stdout == ""


def test_data_and_body_size_exclude_each_other() -> None:
    result = run_cli("bench", f"http://127.0.0.1:{closed_port()}/", "-d", "x", "--body-size", "3")
    assert result.returncode == 2
    assert "--data and --body-size exclude each other" in result.stderr


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest not in ("help", "version")]


def test_every_option_has_help_with_its_default() -> None:
    subparsers = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert set(subparsers.choices) == {"bench", "get"}
    for name, parser in subparsers.choices.items():
        for action in [*_options(parser), *parser._get_positional_actions()]:
            assert action.help, f"httpool {name}: {action.dest} has no help"
            assert "default" in action.help, f"httpool {name}: {action.dest} shows no default"


def test_bench_help_as_printed() -> None:
    result = run_cli("bench", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for expected in (
        "number of requests to send in total (default: 1000)",
        "never more than REQUESTS (default: 10)",
        "(default: asyncio)",
        "pip install 'httpool[trio]'",
        "(default: 30.0)",
        "Exit status: 0 if every request succeeded",
    ):
        assert expected in text
    top = run_cli("--help")
    assert top.returncode == 0
    assert "bench" in top.stdout and "get" in top.stdout and "--version" in top.stdout


# -c is capped at -n.


def test_concurrency_is_capped_at_the_number_of_requests() -> None:
    result = run_cli("bench", "-n", "10", "-c", "40000", "--runtime", "sync")
    assert result.returncode == 0, result.stderr
    assert "-c 40000 capped at -n 10" in result.stderr
    assert "runtime:     sync, concurrency 10, max connections 10" in result.stdout
    assert "requests:    10 sent, 10 succeeded, 0 failed" in result.stdout


# Runs that fail.


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_a_run_that_cannot_succeed_stops_early_and_says_why(runtime: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    result = run_cli("bench", url, "-n", "100000", "-c", "4", "--runtime", runtime)
    assert result.returncode == 1
    out = result.stdout
    sent = re.search(r"requests:    (\d+) sent, 0 succeeded, (\d+) failed \(of 100000 asked\)", out)
    assert sent is not None, out
    assert sent.group(1) == sent.group(2)
    assert 10 <= int(sent.group(1)) < 100  # gave up after ten, plus the ones in flight
    assert "throughput:  none (no request succeeded)" in out
    assert "requests/s" not in out
    assert "result:      run failed: stopped early, the first" in out
    assert "ConnectError" in out.splitlines()[-1]  # the last line names the cause


def test_a_failed_run_in_json() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    result = run_cli("bench", url, "-n", "5", "-c", "2", "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "failed"
    assert summary["stopped_early"] is False  # five requests: all were tried
    assert summary["sent"] == summary["failed"] == 5
    assert summary["throughput_rps"] == 0
    assert summary["verdict"].startswith("run failed: no request succeeded: ConnectError")
    assert "httpool bench: run failed: no request succeeded" in result.stderr


# The progress bar: on a terminal only.


@contextlib.contextmanager
def bench_on_a_terminal(
    *args: str, requests: str = "100000000", server_pid: bool = True
) -> Iterator[tuple[subprocess.Popen[bytes], int, bytes]]:
    """An endless ``httpool bench`` on the embedded server, its stderr a pseudo-terminal:
    yield the process, the server's pid and the stderr seen once a whole progress bar is."""
    parent, child = pty.openpty()
    try:
        command = [sys.executable, "-m", "httpool", "bench", "-n", requests, *args]
        try:
            process = subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.PIPE, stderr=child, preexec_fn=interruptible
            )
        finally:
            os.close(child)
        try:
            seen = read_until(parent, b" failed")  # the end of a progress bar
            pid = re.search(rb"\(pid (\d+)\)", seen)
            assert pid is not None or not server_pid
            yield process, int(pid.group(1)) if pid else 0, seen
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()
    finally:
        os.close(parent)


def test_no_progress_output_when_stderr_is_not_a_terminal() -> None:
    result = run_cli("bench", "-n", "3000", "-c", "8")
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    assert "ETA" not in result.stderr
    assert result.stderr.count("\n") == 1  # the embedded server's line, nothing else


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_progress_bar_then_partial_results_on_ctrl_c(runtime: str) -> None:
    with bench_on_a_terminal("-c", "4", "--runtime", runtime) as (process, pid, seen):
        bar = seen.decode().rpartition("\r")[2]
        assert re.search(
            r"\[[#-]{20}\] +\d+%  [\d,]+/100,000,000  [\d,]+ requests/s  ETA \S+  0 failed", bar
        ), bar
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 130
        assert process.stdout is not None
        out = process.stdout.read().decode()
    assert process_gone(pid)
    sent = re.search(r"requests:    (\d+) sent, (\d+) succeeded, 0 failed \(of 100000000", out)
    assert sent is not None, out
    assert int(sent.group(1)) == int(sent.group(2)) > 0
    assert re.search(r"throughput:  [\d,.]+ requests/s", out)
    assert "latency histogram" in out
    assert "pool:        " in out
    assert "result:      interrupted: partial results" in out


def test_progress_bar_shows_a_stalled_run() -> None:
    http_server = pytest.importorskip("tests.support.http_server")
    with http_server.HTTPServer() as server:
        # /hang never answers: no request finishes, the bar is drawn all the same.
        url = server.url + "/hang"
        with bench_on_a_terminal(url, "-c", "2", requests="2", server_pid=False) as running:
            process, _, seen = running
            assert (
                "[--------------------]   0%  0/2  0 requests/s  ETA ?  0 failed" in seen.decode()
            )
            process.kill()


# The latency histogram.


def test_latency_histogram() -> None:
    result = run_cli("bench", "-n", "500", "-c", "4")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("latency histogram (ms, log scale):")
    rows = [
        re.fullmatch(r"  +([\d.]+) - +([\d.]+)  (#*) +([\d,]+) +([\d.]+)%", line)
        for line in lines[start + 1 : start + 11]
    ]
    assert all(rows), lines[start:]
    counts = [int(row.group(4).replace(",", "")) for row in rows if row]
    assert sum(counts) == 500
    assert max(len(row.group(3)) for row in rows if row) == 40  # the fullest bucket
    edges = [(float(row.group(1)), float(row.group(2))) for row in rows if row]
    assert all(low <= high for low, high in edges)
    assert all(edges[i][1] == edges[i + 1][0] for i in range(len(edges) - 1))
    summary = json.loads(run_cli("bench", "-n", "50", "-c", "2", "--json").stdout)
    assert sum(bucket["count"] for bucket in summary["latency_histogram_ms"]) == 50


# What is sent.


def test_method_headers_and_data_from_a_file(tmp_path: Path) -> None:
    http_server = pytest.importorskip("tests.support.http_server")
    body = tmp_path / "body.bin"
    body.write_bytes(b"\x00payload\xff")
    with http_server.HTTPServer() as server:
        result = run_cli(
            "bench", server.url + "/echo", "-n", "6", "-c", "2", "--json",
            "-X", "PUT", "-H", "X-One: 1", "--header", "x-two:  two ", "-d", f"@{body}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["method"] == "PUT"
        assert summary["body_size"] == len(b"\x00payload\xff")
        assert len(server.requests) == 6
        for head in server.requests:
            assert head.method == b"PUT"
            fields = [(name.lower(), value) for name, value in head.headers]
            assert (b"x-one", b"1") in fields
            assert (b"x-two", b"two") in fields
            assert (b"content-length", b"9") in fields


def test_data_makes_a_post_by_default() -> None:
    http_server = pytest.importorskip("tests.support.http_server")
    with http_server.HTTPServer() as server:
        result = run_cli("bench", server.url + "/echo", "-n", "2", "-c", "1", "-d", "hello")
        assert result.returncode == 0, result.stderr
        assert "target:      POST " in result.stdout
        assert {head.method for head in server.requests} == {b"POST"}


# The statistics behind the report, in process.


def test_histogram_of_equal_latencies_is_one_bucket() -> None:
    config = BenchConfig(url="http://127.0.0.1/", requests=3, concurrency=1)
    result = BenchResult(config, "sync", 1.0, [0.002] * 3, {200: 3}, {}, {}, {}, None)
    assert result.histogram() == [(2.0, 2.0, 3)]
    assert "      2.000 -     2.000  " + "#" * 40 in result.report()


def test_progress_line() -> None:
    recorder = Recorder(1000)
    for _ in range(250):
        recorder.success(200, recorder.started)
    recorder.failure(OSError("x"), recorder.started)
    line = recorder.progress_line(recorder.started + 2.0)
    assert line == "[#####---------------]  25%  251/1,000  126 requests/s  ETA 6s  1 failed"
    assert Recorder(10).progress_line(Recorder(10).started).endswith("ETA ?  0 failed")
