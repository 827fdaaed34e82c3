"""``Proxy`` configuration, and SOCKS without socksio installed."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

import httpool
from httpool import URL, ConnectionPool, Origin, Proxy
from httpool._async.http_proxy import authority


def test_credentials_from_the_url_are_decoded_and_removed_from_it() -> None:
    proxy = Proxy("http://us%3Aer:p%40ss@proxy.example:3128/ignored")
    assert proxy.auth == (b"us:er", b"p@ss")
    assert proxy.url == URL("http://proxy.example:3128/ignored")
    assert proxy.headers == [(b"Proxy-Authorization", b"Basic " + base64.b64encode(b"us:er:p@ss"))]
    assert "p@ss" not in repr(proxy) and "us" not in repr(proxy).replace("Proxy", "")


def test_explicit_auth_wins_and_goes_before_the_headers() -> None:
    proxy = Proxy(b"http://a:b@proxy.example", auth=("x", "y"), headers={"X-Custom": "1"})
    assert proxy.auth == (b"x", b"y")
    assert proxy.headers[0][0] == b"Proxy-Authorization"
    assert proxy.headers[1] == (b"X-Custom", b"1")


def test_no_credentials() -> None:
    proxy = Proxy(URL("https://proxy.example"))
    assert proxy.auth is None and proxy.headers == [] and not proxy.is_socks
    assert Proxy("socks5h://127.0.0.1").url.origin.port == 1080
    assert Proxy("socks5://u:p@127.0.0.1:9050").auth == (b"u", b"p")


def test_unknown_proxy_scheme() -> None:
    with pytest.raises(httpool.UnsupportedProtocol):
        Proxy("ftp://proxy.example")
    with pytest.raises(httpool.UnsupportedProtocol, match="proxy scheme 'wss://'"):
        Proxy("wss://proxy.example")


def test_connect_target_brackets_ipv6() -> None:
    assert authority(Origin(b"https", b"::1", 8443)) == b"[::1]:8443"
    assert authority(Origin(b"https", b"fe80::1%eth0", 443)) == b"[fe80::1]:443"
    assert authority(Origin(b"wss", b"example.com", 443)) == b"example.com:443"


def test_socks_without_socksio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "socksio", None)
    monkeypatch.setitem(sys.modules, "socksio.socks5", None)
    with pytest.raises(ImportError, match=r"'socks' extra"):
        ConnectionPool(proxy=Proxy("socks5://127.0.0.1:1080"))
    with pytest.raises(ImportError, match=r"httpool\[socks\]"):
        httpool.SOCKSProxy("socks5h://127.0.0.1:1080")
    # HTTP proxies need nothing more.
    ConnectionPool(proxy=Proxy("http://127.0.0.1:3128")).close()


def test_import_httpool_without_socksio() -> None:
    code = (
        "import sys; sys.modules['socksio'] = None\n"
        "import httpool\n"
        "assert 'socksio' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(httpool.SOCKSProxy.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SOCKSProxy"
