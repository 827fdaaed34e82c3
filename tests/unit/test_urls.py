"""Tests of URL parsing, validation and its round trip through bytes."""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from httpool import _urls
from httpool._exceptions import ConnectError, LocalProtocolError, UnsupportedProtocol
from httpool._models import Request
from httpool._urls import URL, enforce_url

# URL parsing


def test_url_parses_every_part() -> None:
    url = URL("HTTPS://Example.COM:8443/a/b?x=1&y=2#section")
    assert url.scheme == b"https"
    assert url.host == b"example.com"
    assert url.port == 8443
    assert url.target == b"/a/b?x=1&y=2"
    assert bytes(url) == b"https://example.com:8443/a/b?x=1&y=2"


def test_url_bytes_and_str_agree() -> None:
    assert URL(b"http://example.com/x?y") == URL("http://example.com/x?y")


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("http://example.com", b"/"),
        ("http://example.com?q=1", b"/?q=1"),
        ("http://example.com#frag", b"/"),
        ("http://example.com/p#frag?not-a-query", b"/p"),
        ("http://example.com//double", b"//double"),
    ],
)
def test_url_target_defaults_and_fragment(text: str, target: bytes) -> None:
    assert URL(text).target == target


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("http://example.com/caf\u00e9", b"/caf%C3%A9"),
        ("http://example.com/?q=\u00fc", b"/?q=%C3%BC"),
        (b"http://example.com/\xff", b"/%FF"),
        ("http://example.com/a\x7fb\x01", b"/a%7Fb%01"),
        ("http://example.com/already%20encoded", b"/already%20encoded"),
    ],
)
def test_url_percent_encodes_the_target(text: str | bytes, target: bytes) -> None:
    assert URL(text).target == target


@pytest.mark.parametrize(
    ("text", "host", "port", "origin"),
    [
        ("http://[::1]/", b"::1", None, "http://[::1]:80"),
        ("https://[::1]:8443/", b"::1", 8443, "https://[::1]:8443"),
        ("http://[2001:DB8::A]/", b"2001:db8::a", None, "http://[2001:db8::a]:80"),
        ("http://[fe80::1%25Eth0]/", b"fe80::1%Eth0", None, "http://[fe80::1%Eth0]:80"),
    ],
)
def test_url_ipv6(text: str, host: bytes, port: int | None, origin: str) -> None:
    url = URL(text)
    assert (url.host, url.port) == (host, port)
    assert str(url.origin) == origin
    assert URL(bytes(url)) == url


def test_url_idna_host() -> None:
    url = URL("https://B\u00fccher.example/")
    assert url.host == b"xn--bcher-kva.example"
    assert URL("https://b\u00fccher.example/".encode()).host == b"xn--bcher-kva.example"
    assert URL(scheme="https", host="b\u00fccher.example").host == b"xn--bcher-kva.example"
    assert URL("http://xn--bcher-kva.example").host == b"xn--bcher-kva.example"


def test_idna_is_2008_with_uts46_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    # The declared choice, the idna package: the standard library's IDNA 2003
    # codec would map the sharp s to "ss" (b"fass.example").
    monkeypatch.setattr(_urls, "_valid_hosts", {})
    assert URL("http://Fa\u00df.example/").host == b"xn--fa-hia.example"


def test_non_ascii_host_without_idna_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if idna were not installed: no silent fallback to another IDNA.
    monkeypatch.setitem(sys.modules, "idna", None)
    monkeypatch.setattr(_urls, "_valid_hosts", {})
    monkeypatch.setattr(_urls, "_parsed_urls", {})
    with pytest.raises(ImportError, match=r"'idna' extra.*pip install httpool\[idna\]"):
        URL("http://b\u00fccher.example/")
    with pytest.raises(ImportError, match="idna"):
        Request("GET", "http://b\u00fccher.example/")
    # ASCII hosts, IDNA-encoded ones included, never need it.
    assert URL("http://xn--bcher-kva.example/").host == b"xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ("http://a/", 80),
        ("https://a/", 443),
        ("ws://a/", 80),
        ("wss://a/", 443),
        ("socks5://a/", 1080),
        ("http://a:8080/", 8080),
        ("https://a:80/", 80),
        ("http://a:/", 80),
    ],
)
def test_url_origin_fills_default_port(text: str, port: int) -> None:
    url = URL(text)
    assert url.origin.port == port
    assert url.origin.host == b"a"
    assert url.origin is url.origin


def test_url_drops_userinfo() -> None:
    url = URL("http://user:p%40ss@example.com/")
    assert url.host == b"example.com"
    assert b"user" not in bytes(url)


def test_url_from_parts() -> None:
    url = URL(scheme=b"HTTP", host=b"Proxy.Local", port=3128, target=b"http://example.com/x")
    assert url.scheme == b"http"
    assert url.host == b"proxy.local"
    assert url.target == b"http://example.com/x"
    assert URL(scheme="https", host="example.com", target="*").target == b"*"
    assert URL(scheme="https", host="example.com").target == b"/"
    assert URL(scheme="http", host="a", target="/caf\u00e9?q=\x01").target == b"/caf%C3%A9?q=%01"
    assert URL(scheme="http", host="a", target=b"/\xff").target == b"/%FF"
    assert URL(scheme="http", host="[::1]", port=0).host == b"::1"
    assert URL(scheme="http", host="::1").host == b"::1"


def test_url_copy_constructor_and_equality() -> None:
    url = URL("http://example.com:81/p")
    origin = url.origin
    copied = URL(url)
    assert copied == url and copied is not url
    assert copied.origin is origin
    assert url != URL("http://example.com:81/q")
    assert url != URL("http://example.com/p")
    assert url != b"http://example.com:81/p"
    assert enforce_url(url, name="url") is url
    assert enforce_url("http://example.com:81/p", name="url") == url


def test_url_repr() -> None:
    assert repr(URL("http://a:1/b")) == "URL(scheme=b'http', host=b'a', port=1, target=b'/b')"


MISSING = "Request URL is missing an 'http://' or 'https://' protocol."


@pytest.mark.parametrize(
    "text", ["", "example.com", "example.com/path", "localhost:8080", "//example.com/", "/p", "1:2"]
)
def test_url_missing_scheme(text: str) -> None:
    # Built as httpcore builds it; refused when its origin is needed (sending).
    url = URL(text)
    assert not url.is_requestable()
    with pytest.raises(UnsupportedProtocol) as info:
        _ = url.origin
    assert str(info.value) == MISSING


def test_url_parts_missing_scheme() -> None:
    url = URL(host=b"example.com")
    with pytest.raises(UnsupportedProtocol, match="missing an 'http://'"):
        _ = url.origin


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "h2c"])
def test_url_unsupported_scheme_is_named(scheme: str) -> None:
    for url in (URL(f"{scheme}://example.com/"), URL(scheme=scheme, host="example.com")):
        assert url.scheme == scheme.encode()
        with pytest.raises(UnsupportedProtocol, match=f"'{scheme}://'"):
            _ = url.origin


@pytest.mark.parametrize(
    "text", ["http://", "http:///path", "http://user@/", "http://:80/", "http:example.com"]
)
def test_url_without_host_is_refused_at_origin(text: str) -> None:
    url = URL(text)
    assert not url.is_requestable()
    with pytest.raises(LocalProtocolError, match="host is empty"):
        _ = url.origin


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("http://exa<mple.com/", "not a valid host"),
        ("http://exa\\mple.com/", "not a valid host"),
        ("http://example.com:http/", "port"),
        ("http://example.com:-1/", "port"),
        ("http://example.com:65536/", "port"),
        ("http://example.com:1:2/", "port"),
        ("http://[::1/", "unterminated IPv6"),
        ("http://[::1]junk/", "unexpected"),
        ("http://[not-ipv6]/", "not an IPv6 address"),
        ("http://[1.2.3.4]/", "not an IPv6 address"),
        ("http://\u2603\u2603.example/", "IDNA"),
    ],
)
def test_url_invalid(text: str, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        URL(text)


@pytest.mark.parametrize("char", ["\r", "\n", "\x00", " ", "\t"])
@pytest.mark.parametrize(
    "template",
    [
        "http://exa{}mple.com/",
        "http://example.com/pa{}th",
        "http://example.com/?q={}",
        "{}http://a/",
    ],
)
def test_url_forbidden_characters(char: str, template: str) -> None:
    with pytest.raises(LocalProtocolError, match="forbidden byte"):
        URL(template.format(char))
    with pytest.raises(LocalProtocolError, match="forbidden byte"):
        URL(template.format(char).encode())


@pytest.mark.parametrize("userinfo", ["us\r\ner:pw", "user:p\nw", "user:p\rw"])
def test_url_userinfo_with_crlf(userinfo: str) -> None:
    with pytest.raises(LocalProtocolError):
        URL(f"http://{userinfo}@example.com/")


def test_url_invalid_parts() -> None:
    with pytest.raises(LocalProtocolError, match="forbidden byte"):
        URL(scheme="http", host="a", target="/x\r\nHost: evil")
    with pytest.raises(LocalProtocolError, match="not a valid host"):
        URL(scheme="http", host="a\r\nb")
    # What httpcore accepts when building, httpool refuses when sending.
    with pytest.raises(LocalProtocolError, match="host is empty"):
        _ = URL(scheme="http", host="").origin
    for port in (65536, -1):  # httpcore fails to connect to it: a ConnectError
        with pytest.raises(ConnectError, match="port"):
            _ = URL(scheme="http", host="a", port=port).origin
    with pytest.raises(TypeError, match="port"):
        URL(scheme="http", host="a", port="80")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="port"):
        URL(scheme="http", host="a", port=True)
    with pytest.raises(TypeError, match="host"):
        URL(scheme="http", host=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [123, None, 1.5, ["http://a/"]])
def test_url_wrong_type(value: Any) -> None:
    with pytest.raises(TypeError):
        enforce_url(value, name="url")
    if value:
        with pytest.raises(TypeError):
            URL(value)


# One property: valid parts survive bytes(URL(...)) -> URL.

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_reg_name = st.lists(_label, min_size=1, max_size=4).map(".".join)
_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(lambda a: a.compressed)
_host = st.one_of(_reg_name, _ipv4, _ipv6)
_target_chars = st.sampled_from([chr(c) for c in range(0x21, 0x7F) if chr(c) != "#"])
_target = st.lists(_target_chars, max_size=30).map(lambda cs: "/" + "".join(cs))


@given(
    scheme=st.sampled_from(["http", "https", "ws", "wss"]),
    host=_host,
    port=st.none() | st.integers(0, 65535),
    target=_target,
)
def test_url_round_trips_through_bytes(
    scheme: str, host: str, port: int | None, target: str
) -> None:
    url = URL(scheme=scheme, host=host, port=port, target=target)
    again = URL(bytes(url))
    assert again == url
    assert again.origin == url.origin
    assert hash(again.origin) == hash(url.origin)


def test_ipv6_helper_matches_stdlib() -> None:
    # The round-trip strategy relies on compressed IPv6 text being accepted as is.
    address = ipaddress.IPv6Address("2001:db8::1")
    assert URL(f"http://[{address.compressed}]/").host == address.compressed.encode()


def test_non_ascii_url_string_is_encoded_not_refused() -> None:
    # Decided: where httpcore raises TypeError, httpool encodes as a browser
    # does (README, deliberate differences): UTF-8, host IDNA, the rest %-escaped.
    url = URL("https://B\u00fccher.example/\u263a?q=\u00e9")
    assert url.host == b"xn--bcher-kva.example"
    assert url.target == b"/%E2%98%BA?q=%C3%A9"
    assert bytes(url) == b"https://xn--bcher-kva.example/%E2%98%BA?q=%C3%A9"
    assert URL(scheme="https", host="example.com", target="/\u263a").target == b"/%E2%98%BA"
