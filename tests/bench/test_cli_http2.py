"""``httpool bench --http2`` for real: h2c with prior knowledge and TLS with ALPN, with
``--cacert`` and ``--insecure``, run as a user would in a subprocess against the test suite's
HTTP/2 server (``tests/support/h2_server.py``) and the embedded server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("h2")

from tests.bench.test_cli import process_gone, run_cli
from tests.support.h2_server import H2Server, make_tls_server, tls_material


@pytest.fixture
def tls_server() -> Iterator[H2Server]:
    with make_tls_server() as server:
        yield server


@pytest.fixture
def cacert(tmp_path: Path) -> str:
    """A PEM file with the CA that signed ``tls_server``'s certificate."""
    path = tmp_path / "ca.pem"
    tls_material()[0].cert_pem.write_to_path(str(path))
    return str(path)


def bench_json(*args: str) -> dict[str, object]:
    result = run_cli("bench", "-n", "60", "-c", "6", "--timeout", "20", "--json", *args)
    assert result.returncode == 0, result.stderr + result.stdout
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_http2_embedded_server_speaks_h2c(runtime: str) -> None:
    summary = bench_json("--http2", "--runtime", runtime)
    assert summary["http2"] is True
    assert summary["succeeded"] == 60
    assert summary["http_versions"] == {"HTTP/2": 60}
    # HTTP/2 multiplexes the six workers on one connection.
    assert summary["pool"]["opened"] == 1  # type: ignore[index]
    assert process_gone(summary["server_pid"])  # type: ignore[arg-type]


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_http2_prior_knowledge_on_an_http_url(runtime: str) -> None:
    with H2Server() as server:
        summary = bench_json(server.url + "/", "--http2", "--runtime", runtime)
        assert summary["http_versions"] == {"HTTP/2": 60}
        assert server.streams_completed == 60
        assert server.connections_accepted == 1


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_http2_over_tls_with_cacert(tls_server: H2Server, cacert: str, runtime: str) -> None:
    summary = bench_json(tls_server.url + "/", "--http2", "--cacert", cacert, "--runtime", runtime)
    assert summary["http_versions"] == {"HTTP/2": 60}
    assert tls_server.streams_completed == 60


def test_http2_over_tls_insecure(tls_server: H2Server) -> None:
    summary = bench_json(tls_server.url + "/", "--http2", "--insecure")
    assert summary["http_versions"] == {"HTTP/2": 60}


def test_untrusted_certificate_fails_every_request(tls_server: H2Server) -> None:
    # Neither --cacert nor --insecure: the pool verifies against the system's CAs,
    # which do not include the test CA.
    result = run_cli("bench", tls_server.url + "/", "--http2", "-n", "4", "-c", "2", "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["succeeded"] == 0
    assert "CERTIFICATE_VERIFY_FAILED" in json.dumps(summary["error_samples"])


def test_human_report_names_the_protocol(tls_server: H2Server, cacert: str) -> None:
    result = run_cli("bench", tls_server.url + "/", "--http2", "--cacert", cacert, "-n", "10")
    assert result.returncode == 0, result.stderr
    assert "http2 on" in result.stdout
    assert "protocols:   HTTP/2: 10" in result.stdout


def test_bad_cacert_exits_2(tmp_path: Path) -> None:
    result = run_cli("bench", "https://127.0.0.1:1/", "--cacert", str(tmp_path / "missing.pem"))
    assert result.returncode == 2
    assert "--cacert" in result.stderr and "missing.pem" in result.stderr
    assert result.stdout == ""


def test_cacert_and_insecure_exclude_each_other(cacert: str) -> None:
    result = run_cli("bench", "https://127.0.0.1:1/", "--cacert", cacert, "--insecure")
    assert result.returncode == 2
    assert "not allowed with" in result.stderr


def test_http2_embedded_server_refuses_large_bodies() -> None:
    result = run_cli("bench", "--http2", "--response-size", "1000000", "-n", "1")
    assert result.returncode == 2
    assert "at most" in result.stderr


def test_untrusted_certificate_stops_the_run_early(tls_server: H2Server) -> None:
    result = run_cli("bench", tls_server.url + "/", "--http2", "-n", "100000", "-c", "2", "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "failed"
    assert summary["stopped_early"] is True
    assert 10 <= summary["sent"] < 100
    assert "CERTIFICATE_VERIFY_FAILED" in summary["verdict"]
    assert "stopped early" in result.stderr and "CERTIFICATE_VERIFY_FAILED" in result.stderr
