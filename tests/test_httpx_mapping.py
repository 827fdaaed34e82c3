"""httpool.httpx's exception table, and that ``import httpool`` leaves httpx alone."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

import httpool
from httpool.httpx import httpx_exception

HTTPCORE_NAMES = [
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "TimeoutException",
    "ConnectError",
    "ReadError",
    "WriteError",
    "NetworkError",
    "ProxyError",
    "UnsupportedProtocol",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ProtocolError",
]


@pytest.mark.parametrize("name", HTTPCORE_NAMES)
def test_each_error_maps_to_httpx_namesake(name: str) -> None:
    mapped = httpx_exception(getattr(httpool, name)("boom"))
    assert type(mapped) is getattr(httpx, name)
    assert str(mapped) == "boom"


def test_other_httpool_errors_are_transport_errors() -> None:
    assert type(httpx_exception(httpool.HttpoolError("x"))) is httpx.TransportError
    assert type(httpx_exception(httpool.ConnectionNotAvailable())) is httpx.TransportError


def test_import_httpool_does_not_import_httpx() -> None:
    code = "import sys, httpool; assert 'httpx' not in sys.modules; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
