"""httpool's loggers, and the check that keeps them free when DEBUG is off.

Theory of operation: each step of a request is logged at DEBUG to
``httpool.<scope>`` (``connection``, ``http11``, ``http2``, ``proxy``) by
``_trace``; the pool's own decisions (a request queued or given a connection,
a connection opened, made idle, closed and why) go to
``httpool.connection_pool`` from here. Nothing is logged above DEBUG.

With logging off, the hot path must not get slower, so it asks ``logging``
nothing. Every change to a logger's level (``setLevel``, ``logging.disable``,
any configuration) makes ``logging`` clear, in place, the level cache of
every logger. httpool keeps one key of its own, ``QUIET``, in the cache of the
``httpool`` logger while none of its loggers is enabled for DEBUG: the pool
checks ``QUIET in QUIET_CACHE`` (one dict lookup) where it would log a
decision, and only when the key is gone asks the loggers again (``quiet()``),
which puts it back if they are off. ``quiet()`` also tells its listeners when
the answer changes: ``_trace`` then swaps ``Trace.start`` between a version
that never looks at logging (the steps of a request cost what they did before
logging existed) and one that logs. So a change is noticed at the pool's next
decision, or when a connection is made (``check()``); a connection used
without a pool notices it when it is made.
"""

from __future__ import annotations

import logging
import typing

DEBUG = logging.DEBUG
SCOPES = ("connection", "http11", "http2", "proxy", "connection_pool")
POOL_LOGGER = logging.getLogger("httpool.connection_pool")
_LOGGERS = [logging.getLogger(f"httpool.{scope}") for scope in SCOPES]
QUIET = "httpool: no logger of httpool is enabled for DEBUG"

_cache = getattr(logging.getLogger("httpool"), "_cache", None)
# Without logging's cache (another Python), there is nothing to remember the
# answer in: every check asks the loggers.
_REMEMBER = isinstance(_cache, dict)
QUIET_CACHE: dict[object, bool] = typing.cast(dict[object, bool], _cache if _REMEMBER else {})


_listeners: list[typing.Callable[[bool], None]] = []
_told: bool | None = None  # what the listeners last heard


def on_change(listener: typing.Callable[[bool], None]) -> None:
    """Call ``listener(is_quiet)`` now and whenever ``quiet()``'s answer changes."""
    _listeners.append(listener)
    listener(quiet())


def quiet() -> bool:
    """Whether no httpool logger is enabled for DEBUG (and remember it)."""
    if QUIET in QUIET_CACHE:
        return True
    answer = not any(logger.isEnabledFor(DEBUG) for logger in _LOGGERS)
    if answer and _REMEMBER:
        QUIET_CACHE[QUIET] = True
        # A level changed between the question and the answer: forget it.
        if any(logger.isEnabledFor(DEBUG) for logger in _LOGGERS):
            QUIET_CACHE.pop(QUIET, None)
            answer = False
    _tell(answer)
    return answer


def _tell(answer: bool) -> None:
    global _told
    if answer != _told:
        _told = answer
        for listener in _listeners:
            listener(answer)


def check() -> None:
    """Notice a change of logging levels now (called where connections are made)."""
    if QUIET not in QUIET_CACHE:
        quiet()


def pool_log(message: str, *args: object) -> None:
    """Log a pool decision; call as ``if QUIET not in QUIET_CACHE: pool_log(...)``."""
    if not quiet() and POOL_LOGGER.isEnabledFor(DEBUG):
        POOL_LOGGER.debug(message, *args)
