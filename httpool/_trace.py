"""The ``trace`` request extension: callbacks around each step of a request.

Theory of operation: a caller may put ``extensions={"trace": callback}`` on a
request; httpool then calls ``callback(name, info)`` when a step starts
(``"<scope>.<step>.started"``, info: the step's arguments), completes
(``".complete"``, info: ``{"return_value": ...}``) or fails (``".failed"``,
info: ``{"exception": exc}``). The names and info dicts are httpcore's, so
existing trace callbacks keep working. In async code the callback may be a
coroutine function, whose result is awaited; in sync code it must not be.

Every step is also logged at DEBUG to ``logging.getLogger("httpool.<scope>")``
(``connection``, ``http11``, ``http2``, ``proxy``), as httpcore logs to
``httpcore.<scope>``: ``"send_request_headers.started request=<Request [b'GET']>"``.

Tracing and logging are off for nearly every request, so the off path must
cost next to nothing: ``Trace.start`` does the extension's dict lookup and
reads the scope logger's own level cache (no call into ``logging`` while it
says DEBUG is off), then returns the shared ``NO_TRACE`` object, which
allocates nothing and whose hooks return at once. The info dict of a step is
only built when a callback or a log record will see it.
"""

from __future__ import annotations

import inspect
import logging
import types
import typing

from ._logging import DEBUG, level_cache

if typing.TYPE_CHECKING:
    from ._models import Request

TraceInfo = dict[str, typing.Any]
# Step name ("http11.send_request_headers") -> (its scope's logger, that logger's
# level cache, the step name without the scope). A fixed set of names.
_STEPS: dict[str, tuple[logging.Logger, dict[int, bool], str]] = {}


def _step(name: str) -> tuple[logging.Logger, dict[int, bool], str]:
    scope, _, step = name.partition(".")
    logger = logging.getLogger(f"httpool.{scope}")
    entry = _STEPS[name] = (logger, level_cache(logger), step)
    return entry


def _log(logger: logging.Logger, step: str, info: TraceInfo) -> None:
    # httpcore's format, so that log filters written for it keep working.
    if not info or ("return_value" in info and info["return_value"] is None):
        logger.debug(step)
    else:
        logger.debug("%s %s", step, " ".join(f"{key}={value!r}" for key, value in info.items()))


class Trace:
    """One traced step, used as ``with`` (sync code) or ``async with`` (async code).

    Build it with ``Trace.start``; set ``return_value`` inside the block to
    report what the step produced.
    """

    __slots__ = ("_active", "_callback", "_info", "_logger", "_name", "_return_value", "_step")

    def __init__(
        self,
        callback: typing.Callable[[str, TraceInfo], typing.Any] | None,
        name: str = "",
        info: TraceInfo | None = None,
        logger: logging.Logger | None = None,
        step: str = "",
    ) -> None:
        self._callback = callback
        self._name = name
        self._info = info
        self._logger = logger
        self._step = step
        self._active = callback is not None or logger is not None
        self._return_value: typing.Any = None

    @staticmethod
    def start(name: str, request: Request | None, info: TraceInfo | None = None) -> Trace:
        """The trace of step ``name`` (``"http11.send_request_headers"``) of ``request``.

        ``info`` defaults to ``{"request": request}``. Without a trace
        extension, and with the step's logger not enabled for DEBUG, this
        returns ``NO_TRACE`` and builds nothing.
        """
        callback = None if request is None else request.extensions.get("trace")
        entry = _STEPS.get(name)
        if entry is None:
            entry = _step(name)
        logger: logging.Logger | None = entry[0]
        # The logger's cache says False once it has answered "DEBUG is off";
        # only when it does not (unknown yet, or on) ask the logger itself.
        if entry[1].get(DEBUG) is False or not entry[0].isEnabledFor(DEBUG):
            if callback is None:
                return NO_TRACE
            logger = None
        if info is None:
            info = {"request": request} if request is not None else {}
        return Trace(callback, name, info, logger, entry[2])

    @property
    def return_value(self) -> typing.Any:
        return self._return_value

    @return_value.setter
    def return_value(self, value: typing.Any) -> None:
        # The shared NO_TRACE must not keep the last response alive.
        if self._active:
            self._return_value = value

    def _outcome(self, exc: BaseException | None) -> tuple[str, TraceInfo]:
        if exc is None:
            return f"{self._name}.complete", {"return_value": self._return_value}
        return f"{self._name}.failed", {"exception": exc}

    # Sync code.

    def _call(self, name: str, info: TraceInfo) -> None:
        if self._logger is not None:
            _log(self._logger, self._step + name[len(self._name) :], info)
        if self._callback is None:
            return
        result = self._callback(name, info)
        if inspect.isawaitable(result):
            # Closing a coroutine spares a "never awaited" warning on top of this error.
            getattr(result, "close", lambda: None)()
            raise TypeError(
                "The 'trace' callback of a sync request must be a plain function, "
                "not a coroutine function."
            )

    def __enter__(self) -> Trace:
        if self._active:
            self._call(f"{self._name}.started", self._info or {})
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        if self._active:
            self._call(*self._outcome(exc_value))

    # Async code.

    async def _acall(self, name: str, info: TraceInfo) -> None:
        if self._logger is not None:
            _log(self._logger, self._step + name[len(self._name) :], info)
        if self._callback is None:
            return
        result = self._callback(name, info)
        if inspect.isawaitable(result):
            await result

    async def __aenter__(self) -> Trace:
        if self._active:
            await self._acall(f"{self._name}.started", self._info or {})
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        if self._active:
            await self._acall(*self._outcome(exc_value))


NO_TRACE: typing.Final = Trace(None)
