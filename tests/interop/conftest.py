"""Fixtures of the interop matrix: the real servers, started once per session on demand.

These tests run only in ``nox -s interop``, which installs the servers first when it can
(``scripts/ensure_servers.py``). A server that is not installed skips its tests with the
reason, except under ``CI=true``, where it fails them: CI must run the whole matrix. A
server that is installed but fails to start is an error, with the end of its logs. When a
test fails, the end of its server's logs is attached to its report.
"""

from __future__ import annotations

import os
import ssl
import typing
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .servers import H1, H1_TLS, H2_TLS12, SERVERS, TLS_PROTOCOLS, Server, ServerUnavailable

# The limits every server of the matrix runs with: a connection ends after this many
# requests (where the server has the setting), or after this many seconds idle.
KEEPALIVE_REQUESTS = 100
IDLE_TIMEOUT = 1.0


class Servers:
    """Starts each server the first time a test asks for it; stops them all at the end."""

    def __init__(self) -> None:
        self._started: dict[str, Server] = {}
        self._unavailable: dict[str, str] = {}
        self._failed: dict[str, str] = {}

    def get(self, name: str) -> Server:
        if name in self._unavailable:
            _unavailable(name, self._unavailable[name])
        if name not in self._started:
            try:
                server = SERVERS[name](
                    keepalive_requests=KEEPALIVE_REQUESTS, idle_timeout=IDLE_TIMEOUT
                )
            except ServerUnavailable as exc:
                self._unavailable[name] = str(exc)
                _unavailable(name, str(exc))
            try:
                server.start()
            except RuntimeError as exc:
                # Once is enough: the other tests of this server fail at once.
                self._failed[name] = str(exc)
            else:
                self._started[name] = server
        if name in self._failed:
            pytest.fail(self._failed[name], pytrace=False)
        return self._started[name]

    def versions(self) -> dict[str, str]:
        return {name: server.version for name, server in self._started.items()}

    def stop(self) -> None:
        for server in self._started.values():
            server.stop()


def _unavailable(name: str, reason: str) -> typing.NoReturn:
    message = (
        f"interop server {name} is unavailable: {reason}. Install it with "
        "`python scripts/ensure_servers.py` as root (Debian), or see tests/interop/servers/."
    )
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(message + " (CI=true: every server of the matrix must run)", pytrace=False)
    pytest.skip(message)


# name -> version of every server this session started, for the terminal summary.
_VERSIONS: dict[str, str] = {}


@pytest.fixture(scope="session")
def interop_servers() -> Iterator[Servers]:
    servers = Servers()
    try:
        yield servers
    finally:
        _VERSIONS.update(servers.versions())
        servers.stop()


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    if _VERSIONS:
        versions = ", ".join(f"{name} {version}" for name, version in _VERSIONS.items())
        terminalreporter.write_line(f"interop servers: {versions}")


@dataclass
class Target:
    """One cell of the matrix: a running server and the protocol to speak to it."""

    server: Server
    protocol: str
    ssl_context: ssl.SSLContext | None

    @property
    def http2(self) -> bool:
        return self.protocol not in (H1, H1_TLS)

    @property
    def http_version(self) -> bytes:
        return b"HTTP/2" if self.http2 else b"HTTP/1.1"

    @property
    def url(self) -> str:
        """The base URL, ending in ``/``."""
        if self.protocol in TLS_PROTOCOLS:
            return self.server.https_url
        return self.server.h2c_url if self.http2 else self.server.http_url

    def pool_options(self, **options: Any) -> dict[str, Any]:
        """Keyword arguments for a pool speaking this protocol, plus ``options``."""
        if self.protocol == H1_TLS:
            options.update(ssl_context=self.ssl_context)
        elif self.protocol in TLS_PROTOCOLS:
            options.update(ssl_context=self.ssl_context, http2=True)
        elif self.http2:
            options.update(http1=False, http2=True)
        return options


@pytest.fixture
def target(request: pytest.FixtureRequest, interop_servers: Servers) -> Target:
    """Parametrized indirectly with ``"server-protocol"`` strings (see ``cases()``)."""
    name, protocol = request.param.split("-", 1)
    return make_target(interop_servers.get(name), protocol)


def make_target(server: Server, protocol: str) -> Target:
    # One client context per target: the pools a test opens may share it, since they
    # all set the same ALPN protocols on it.
    context = None
    if protocol in TLS_PROTOCOLS:
        context = server.client_ssl_context
        if protocol == H2_TLS12:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
    return Target(server, protocol, context)


@pytest.fixture
def server(request: pytest.FixtureRequest, interop_servers: Servers) -> Server:
    """Parametrized indirectly with a server name."""
    return interop_servers.get(request.param)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, typing.Any, None]:
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    server = funcargs.get("server") or getattr(funcargs.get("target"), "server", None)
    if report.failed and isinstance(server, Server):
        report.sections.append((f"{server.name} {server.version} logs (tail)", server.log_tail()))
