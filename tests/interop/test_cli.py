"""``httpool bench --http2`` against every real server of the matrix: h2c by prior knowledge
and TLS by ALPN with ``--cacert`` (the server's CA file), and ``--insecure``; run in a
subprocess, as a user would. Test ids name the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .servers import SERVERS, Server

ROOT = Path(__file__).resolve().parents[2]
# Below the servers' per-connection request limit (conftest.KEEPALIVE_REQUESTS): hypercorn
# drops the requests in flight at its limit (see servers/hypercorn.py).
REQUESTS = 90


def bench(*args: str) -> dict[str, object]:
    command = [sys.executable, "-m", "httpool", "bench", "--http2", "--json", *args]
    result = subprocess.run(
        [*command, "-n", str(REQUESTS), "-c", "16", "--timeout", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
@pytest.mark.parametrize("server", list(SERVERS), indirect=True)
def test_bench_http2(server: Server, runtime: str) -> None:
    h2c = bench(server.h2c_url + "small.txt", "--runtime", runtime)
    tls = bench(
        server.https_url + "small.txt", "--cacert", str(server.ca_file), "--runtime", runtime
    )
    insecure = bench(server.https_url + "small.txt", "--insecure", "--runtime", runtime)
    for summary in (h2c, tls, insecure):
        assert summary["http_versions"] == {"HTTP/2": REQUESTS}
        assert summary["statuses"] == {"200": REQUESTS}
