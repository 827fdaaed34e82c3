"""The snapshot returned by ``pool.stats()``."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PoolStats:
    """Counts of a pool at one instant. Reading them costs O(1).

    Attributes:
        connections: open connections, including those still being established.
        connecting: connections still being established (protocol not yet known).
        idle: established connections carrying no request.
        active: connections carrying at least one request.
        streams_in_use: requests in flight on connections (for HTTP/1.1, equal to ``active``).
        queued: requests waiting for a connection.
        requests: requests assigned a connection since the pool was created.
        opened: connections opened since the pool was created.
        closed: connections closed since the pool was created.
    """

    connections: int
    connecting: int
    idle: int
    active: int
    streams_in_use: int
    queued: int
    requests: int
    opened: int
    closed: int
