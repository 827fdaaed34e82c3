"""Every python example of README.md and docs/ runs, against local servers only.

The examples are found and pointed at loopback by ``tests/support/doc_examples.py``
(its docstring says how a block is marked). Each runs in a fresh interpreter,
with a time limit, its made-up hosts replaced by the test servers started here
(HTTP/1.1 and HTTP/2, plain and TLS, an HTTP proxy and a SOCKS5 proxy, all on
127.0.0.1), and the servers' CA as the only trusted one (``SSL_CERT_FILE``,
which the default TLS context reads). The suite needs no mkdocs.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
import trustme

from tests.support.doc_examples import (
    ROOT,
    RUNNER,
    Example,
    all_examples,
    extract,
    markdown_files,
    point_at,
)
from tests.support.h2_server import H2Server, make_tls_server, tls_material
from tests.support.http_server import HTTPServer, make_tls_contexts
from tests.support.proxy_server import HTTPProxyServer, SOCKS5Server

# Generous: an example takes well under a second; a loaded CI machine is slow.
EXAMPLE_LIMIT = 90.0
EXAMPLES = all_examples()
RUNS = [
    pytest.param(example, runtime, id=f"{example.name}[{runtime}]")
    for example in EXAMPLES
    if example.not_run is None
    for runtime in example.runtimes
]
# The credentials the examples use for their proxies.
PROXY_AUTH = ("user", "pass")


class Servers:
    """The local servers and the host map that points the examples at them."""

    def __init__(self, tmp: pathlib.Path) -> None:
        ca = trustme.CA()
        contexts = make_tls_contexts(ca, hostnames=("example.org",))
        self.http = HTTPServer().start()
        self.https = HTTPServer(ssl_context=contexts.server).start()
        self.h2c = H2Server().start()
        self.h2_tls = make_tls_server().start()
        self.proxy = HTTPProxyServer(auth=PROXY_AUTH).start()
        self.socks = SOCKS5Server(auth=PROXY_AUTH).start()
        self.ca_file = tmp / "ca.pem"
        pems = [ca.cert_pem.bytes(), tls_material()[0].cert_pem.bytes()]
        self.ca_file.write_bytes(b"".join(pems))

    def stop(self) -> None:
        for server in (self.http, self.https, self.h2c, self.h2_tls, self.proxy, self.socks):
            server.stop()

    def hosts(self, kind: str) -> dict[str, dict[str, str]]:
        plain, tls = (self.h2c, self.h2_tls) if kind == "h2" else (self.http, self.https)
        origin = {"http": f"127.0.0.1:{plain.port}", "https": f"127.0.0.1:{tls.port}"}
        return {
            "example.org": origin,
            "example.com": origin,
            "proxy.example": {"*": f"127.0.0.1:{self.proxy.port}"},
            "socks.example": {"*": f"127.0.0.1:{self.socks.port}"},
        }


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("docs-examples"))
    try:
        yield started
    finally:
        started.stop()


def _environment(ca_file: pathlib.Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "SSL_CERT_DIR"}
    }
    env["SSL_CERT_FILE"] = str(ca_file)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["NO_PROXY"] = "*"
    return env


@pytest.mark.parametrize(("example", "runtime"), RUNS)
def test_example_runs(
    example: Example, runtime: str, servers: Servers, tmp_path: pathlib.Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(point_at(example.source_for(runtime), servers.hosts(example.server)))
    try:
        done = subprocess.run(
            [sys.executable, "-c", RUNNER, str(script)],
            env=_environment(servers.ca_file),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=EXAMPLE_LIMIT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{example.name} ran longer than {EXAMPLE_LIMIT} s:\n{exc.stderr!r}")
    assert done.returncode == 0, (
        f"{example.name} on {runtime} failed:\n{done.stdout}\n{done.stderr}"
    )


def test_every_block_is_run_or_marked() -> None:
    """The count: every python block runs or carries a reason; the README and
    each documentation page are covered (a page whose blocks vanished from
    the scan would otherwise pass unnoticed)."""
    not_run = [example for example in EXAMPLES if example.not_run is not None]
    assert all(example.not_run for example in not_run)
    run = [example for example in EXAMPLES if example.not_run is None]
    assert len(run) + len(not_run) == len(EXAMPLES)
    assert len(RUNS) >= len(run) >= 30, (len(RUNS), len(run))
    files = {example.path for example in run}
    assert "README.md" in files
    for page in ("index.md", "quickstart/threads.md", "quickstart/trio.md", "backends.md"):
        assert f"docs/{page}" in files
    runtimes = {runtime for example in run for runtime in example.runtimes}
    assert runtimes == {"sync", "asyncio", "trio"}
    assert len(markdown_files()) > 10


def test_a_url_left_unmapped_fails_the_example() -> None:
    hosts = {"example.org": {"https": "127.0.0.1:1"}}
    assert point_at('get("https://example.org/x")', hosts) == 'get("https://127.0.0.1:1/x")'
    assert point_at("http://u:p@[::1]:8/", {}) == "http://u:p@[::1]:8/"
    for leftover in ("http://example.org/", "https://www.python.org", "socks5://10.0.0.1:1080"):
        with pytest.raises(ValueError, match="not pointed at a local server"):
            point_at(f"url = {leftover!r}", hosts)


def test_runner_refuses_other_hosts(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "example.py"
    script.write_text("import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=1)\n")
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "docs examples reach loopback only, not '192.0.2.1'" in done.stderr


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<!-- not-run: -->\n```python\nx\n```\n", "not-run needs a reason"),
        ("<!-- not-run: fragment -->\n\ntext\n", "a directive not above a block"),
        ("<!-- server: h2 -->\n```sh\nls\n```\n", "a directive above a non-python block"),
        ("<!-- runs: x -->\n```python\nx\n```\n", "unknown directive"),
        ("```python\nx\n", "never closed"),
        ("<!-- runtimes: trio -->\n```python\nx = 1\n```\n", "runs under trio only"),
    ],
)
def test_markers_are_checked(tmp_path: pathlib.Path, text: str, error: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(ValueError, match=error):
        extract(page, tmp_path)


def test_markers_apply(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- not-run: a fragment -->\n```python\npool.request()\n```\n"
        "<!-- server: h2 -->\n<!-- runtimes: asyncio trio -->\n"
        "```python\nimport asyncio\nasyncio.run(main())\n```\n"
        "```python\nimport trio\ntrio.run(main)\n```\n"
    )
    fragment, both, trio_only = extract(page, tmp_path)
    assert (fragment.not_run, fragment.runtimes) == ("a fragment", ("sync",))
    assert (both.server, both.runtimes, both.line) == ("h2", ("asyncio", "trio"), 7)
    assert both.source_for("trio").endswith("import trio\n\ntrio.run(main)")
    assert both.source_for("asyncio") == both.code
    assert trio_only.runtimes == ("trio",)
