"""Name resolution for ``socks5://`` proxies, which are sent addresses, not names.

Theory of operation: the network backends resolve names inside
``connect_tcp``; a SOCKS5 proxy told to resolve nothing needs the address
itself. ``AsyncResolver`` asks the running runtime (asyncio's or trio's
``getaddrinfo``, both off the event loop), ``Resolver`` the blocking
``socket.getaddrinfo``; unasync turns one name into the other. An IP literal
is returned as it is, without a lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing

from ._exceptions import ConnectError
from ._synchronization import current_async_library, trio_runtime

_AddrInfo = list[tuple[typing.Any, typing.Any, typing.Any, typing.Any, tuple[typing.Any, ...]]]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _first_address(host: str, infos: _AddrInfo) -> str:
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise ConnectError(f"No address found for {host!r}.")
    return str(infos[0][4][0])


class AsyncResolver:
    async def resolve(self, host: str, port: int) -> str:
        """The first address ``host`` resolves to. Raises ``ConnectError``."""
        if _is_ip(host):
            return host
        try:
            if current_async_library() == "trio":
                infos = await trio_runtime().getaddrinfo(host, port)
            else:
                loop = asyncio.get_running_loop()
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectError(f"Cannot resolve {host!r}: {exc}") from exc
        return _first_address(host, infos)


class Resolver:
    def resolve(self, host: str, port: int) -> str:
        """The first address ``host`` resolves to. Raises ``ConnectError``."""
        if _is_ip(host):
            return host
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectError(f"Cannot resolve {host!r}: {exc}") from exc
        return _first_address(host, infos)
