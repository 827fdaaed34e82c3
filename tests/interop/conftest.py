"""The ``nginx`` fixture: one real nginx for the whole interop session.

These tests run only in ``nox -s interop``, which installs nginx first when it
can (``scripts/ensure_nginx.py``). Without a usable nginx binary every test
here is skipped with the reason; a binary that is there but fails to start is
an error, with the end of its error log. When a test using the fixture fails,
the end of nginx's error log is attached to its report.
"""

from __future__ import annotations

import typing
from collections.abc import Generator, Iterator

import pytest

from .nginx import Nginx, NginxUnavailable


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    try:
        server = Nginx(directory=tmp_path_factory.mktemp("nginx"))
    except NginxUnavailable as exc:
        pytest.skip(
            f"interop tests need nginx with HTTP/2 and TLS: {exc}. Install it with "
            "`apt-get install nginx` or run `python scripts/ensure_nginx.py` as root."
        )
    with server:
        yield server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, typing.Any, None]:
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("nginx")
    if report.failed and isinstance(server, Nginx):
        report.sections.append(("nginx error log (tail)", server.error_log_tail()))
