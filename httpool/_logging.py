"""httpool's loggers, and the check that keeps them free when DEBUG is off.

Theory of operation: each step of a request is logged at DEBUG to
``httpool.<scope>`` (``connection``, ``http11``, ``http2``, ``proxy``) by
``_trace``; the pool's own decisions (a request queued or given a connection,
a connection opened, made idle, closed and why) go to
``httpool.connection_pool`` from here. Nothing is logged above DEBUG.

With logging off, the hot path must not get slower. ``logging.Logger`` keeps
a per-logger cache of "is this level enabled?" that ``setLevel``,
``logging.disable`` and every configuration change clear (in place); reading
``cache.get(DEBUG) is False`` costs one dict lookup, and only when the cache
does not say False (not asked yet, or DEBUG on) is ``isEnabledFor`` called.
So a message, its arguments and any repr are built only for an enabled logger.
"""

from __future__ import annotations

import logging
import typing

if typing.TYPE_CHECKING:
    from ._models import Origin

DEBUG = logging.DEBUG
POOL_LOGGER = logging.getLogger("httpool.connection_pool")


def level_cache(logger: logging.Logger) -> dict[int, bool]:
    """``logger``'s own level cache, or (on a Python without one) an empty
    dict that is never filled, so that every check asks the logger."""
    cache = getattr(logger, "_cache", None)
    return cache if isinstance(cache, dict) else {}


POOL_LEVELS = level_cache(POOL_LOGGER)


def pool_log(message: str, *args: object) -> None:
    """Log a pool decision; call as ``if POOL_LEVELS.get(DEBUG) is not False: pool_log(...)``."""
    if POOL_LOGGER.isEnabledFor(DEBUG):
        POOL_LOGGER.debug(message, *args)


def describe(origin: Origin, connection: object) -> str:
    return f"{origin} {connection!r}"
