"""The one-shot top-level ``httpool.request()`` and ``httpool.stream()``."""

from __future__ import annotations

import pytest

import httpool
from tests.support.http_server import HTTPServer


def test_request(server: HTTPServer) -> None:
    response = httpool.request("POST", server.url + "/echo", content=b"ping")
    assert response.status == 200 and response.content == b"ping"
    assert server.requests[0].method == b"POST"


def test_stream(server: HTTPServer) -> None:
    with httpool.stream("GET", server.url + "/bytes?size=200000") as response:
        assert sum(len(part) for part in response.iter_stream()) == 200000


def test_request_bad_url() -> None:
    with pytest.raises(httpool.UnsupportedProtocol):
        httpool.request("GET", "no-scheme.example/")
