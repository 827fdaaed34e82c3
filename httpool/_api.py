"""One-shot ``httpool.request()`` and ``httpool.stream()``, each on a pool of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from ._models import Extensions, HeaderTypes, Response
from ._sync.connection_pool import ConnectionPool
from ._urls import URL


def request(
    method: bytes | str,
    url: URL | bytes | str,
    *,
    headers: HeaderTypes = None,
    content: bytes | Iterable[bytes] | None = None,
    extensions: Extensions | None = None,
) -> Response:
    """Send one request on a fresh connection and return the read response.

    For more than one request, use a ``ConnectionPool``: it reuses connections.
    """
    with ConnectionPool() as pool:
        return pool.request(method, url, headers=headers, content=content, extensions=extensions)


@contextlib.contextmanager
def stream(
    method: bytes | str,
    url: URL | bytes | str,
    *,
    headers: HeaderTypes = None,
    content: bytes | Iterable[bytes] | None = None,
    extensions: Extensions | None = None,
) -> Iterator[Response]:
    """Send one request and yield the response with its body unread."""
    with (
        ConnectionPool() as pool,
        pool.stream(
            method, url, headers=headers, content=content, extensions=extensions
        ) as response,
    ):
        yield response
