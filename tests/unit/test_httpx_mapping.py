"""httpool.httpx's exception table, and that ``import httpool`` leaves httpx alone."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

import httpool
from httpool.httpx import HTTPTransport, httpx_exception

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


def test_proxy_is_handed_to_httpool_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpool.Proxy and ConnectionPool(proxy=) come from other work; the
    # transport's part is to translate httpx's proxy settings into them.
    made: dict[str, dict[str, object]] = {}

    class FakeProxy:
        def __init__(self, **kwargs: object) -> None:
            made["proxy"] = kwargs

    class FakePool:
        def __init__(self, **kwargs: object) -> None:
            made["pool"] = kwargs

    monkeypatch.setattr(httpool, "Proxy", FakeProxy, raising=False)
    monkeypatch.setattr(httpool, "ConnectionPool", FakePool)
    proxy = httpx.Proxy("http://user:secret@127.0.0.1:3128", headers={"X-Via": "test"})
    HTTPTransport(proxy=proxy, http2=True)
    assert isinstance(made["pool"]["proxy"], FakeProxy)
    assert made["pool"]["http2"] is True
    url = made["proxy"]["url"]
    assert isinstance(url, httpool.URL)
    assert (url.scheme, url.host, url.port) == (b"http", b"127.0.0.1", 3128)
    assert made["proxy"]["auth"] == (b"user", b"secret")
    assert (b"X-Via", b"test") in made["proxy"]["headers"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"headers": {"X": "a\nb"}}, "Invalid value for header"),
        ({"headers": {"X y": "1"}}, "Invalid header name"),
        ({"method": "GE T"}, "Invalid method"),
    ],
)
def test_invalid_request_is_an_httpx_error(kwargs: dict[str, object], match: str) -> None:
    # Built inside the transport, or (httpcore aliased to httpool) by httpx
    # outside its mapping: either way httpx's error, raised when sent.
    method = str(kwargs.pop("method", "GET"))
    with (
        httpx.Client(transport=HTTPTransport()) as client,
        pytest.raises(httpx.LocalProtocolError, match=match),
    ):
        client.request(method, "http://127.0.0.1:1/", **kwargs)  # type: ignore[arg-type]
    request = httpool.Request(method, "http://127.0.0.1:1/", headers=kwargs.get("headers"))  # type: ignore[arg-type]
    with pytest.raises(httpool.LocalProtocolError, match=match):
        _ = request.url.origin
