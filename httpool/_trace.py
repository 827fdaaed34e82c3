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
one more (``_logging``'s ``QUIET`` mark: no call into ``logging`` while it is
there), then returns the shared ``NO_TRACE`` object, which allocates nothing
and whose hooks return at once. The info dict of a step is
only built when a callback or a log record will see it.
"""

from __future__ import annotations

import inspect
import logging
import types
import typing

from ._logging import DEBUG, on_change, quiet

if typing.TYPE_CHECKING:
    from ._models import Request

TraceInfo = dict[str, typing.Any]
# Step name ("http11.send_request_headers") -> its scope's logger. A fixed set of names.
_LOGGERS: dict[str, logging.Logger] = {}


def _start_logging(name: str, request: Request | None, info: TraceInfo | None = None) -> Trace:
    """``Trace.start`` while an httpool logger may be enabled for DEBUG."""
    callback = None if request is None else request.extensions.get("trace")
    if callback is None and quiet():
        return NO_TRACE
    logger: logging.Logger | None = _LOGGERS.get(name)
    if logger is None:
        logger = _LOGGERS[name] = logging.getLogger("httpool." + name.partition(".")[0])
    if not logger.isEnabledFor(DEBUG):
        if callback is None:
            return NO_TRACE
        logger = None
    if info is None:
        info = {"request": request} if request is not None else {}
    return Trace(callback, name, info, logger, name.partition(".")[2])


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

        This is the version for when no httpool logger is enabled for DEBUG
        (the hot path: as cheap as it was before logging existed);
        ``_logging`` swaps in ``_start_logging`` while one is.
        """
        if request is None:
            return NO_TRACE
        callback = request.extensions.get("trace")
        if callback is None:
            return NO_TRACE
        return Trace(callback, name, {"request": request} if info is None else info)

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


_start_quiet = Trace.start


def _switch(is_quiet: bool) -> None:
    Trace.start = staticmethod(_start_quiet if is_quiet else _start_logging)  # type: ignore[method-assign]


on_change(_switch)
