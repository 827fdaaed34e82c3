"""The real servers of the interop matrix, in one place: one module per server (its
configuration and how to run it), ``base.py`` for what they share, and the scripts the
non-Debian ones run (``node_server.js``, ``hypercorn_app.py``).

Importable without pytest (``from tests.interop.servers import Nginx``), for scripts that
compare httpool with other clients. ``scripts/ensure_servers.py`` installs the Debian ones.
"""

from __future__ import annotations

from .apache import Apache
from .base import (
    FILES,
    H1,
    H1_TLS,
    H2_TLS,
    H2_TLS12,
    H2C,
    PROTOCOLS,
    SMALL_BODY,
    TLS_PROTOCOLS,
    Server,
    ServerUnavailable,
)
from .caddy import Caddy
from .h2o import H2O
from .hypercorn import Hypercorn
from .nginx import Nginx, find_nginx
from .node import Node

# Every server of the matrix, by the name test ids use.
SERVERS: dict[str, type[Server]] = {
    cls.name: cls for cls in (Nginx, Apache, H2O, Caddy, Node, Hypercorn)
}

__all__ = [
    "FILES",
    "H1",
    "H1_TLS",
    "H2C",
    "H2O",
    "H2_TLS",
    "H2_TLS12",
    "PROTOCOLS",
    "SERVERS",
    "SMALL_BODY",
    "TLS_PROTOCOLS",
    "Apache",
    "Caddy",
    "Hypercorn",
    "Nginx",
    "Node",
    "Server",
    "ServerUnavailable",
    "find_nginx",
]
