"""The backend a connection uses when it is given none, for each kind of code.

The async source calls ``async_default_backend()``; the unasync step renames
that to ``default_backend()`` in the generated blocking code. So the shared
source never names a backend class whose name differs between the two
(``AutoBackend`` and ``SyncBackend``), and the generated code carries no
``Sync``-prefixed name.
"""

from __future__ import annotations

from .auto import AutoBackend
from .base import AsyncNetworkBackend, NetworkBackend
from .sync import SyncBackend


def async_default_backend() -> AsyncNetworkBackend:
    """asyncio or trio, whichever is running when the backend is first used."""
    return AutoBackend()


def default_backend() -> NetworkBackend:
    """Blocking sockets, for threads."""
    return SyncBackend()
