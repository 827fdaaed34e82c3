"""The ``trace`` request extension: callbacks around each step of a request.

Theory of operation: a caller may put ``extensions={"trace": callback}`` on a
request; httpool then calls ``callback(name, info)`` when a step starts
(``"<scope>.<step>.started"``, info: the step's arguments), completes
(``".complete"``, info: ``{"return_value": ...}``) or fails (``".failed"``,
info: ``{"exception": exc}``). The names and info dicts are httpcore's, so
existing trace callbacks keep working. In async code the callback may be a
coroutine function, whose result is awaited; in sync code it must not be.

Tracing is off for nearly every request, so the off path must cost nothing:
``Trace.start`` does one dict lookup and returns the shared ``NO_TRACE``
object, which allocates nothing and whose hooks return at once. The info dict
of a step is only built when a callback will see it.
"""

from __future__ import annotations

import inspect
import types
import typing

if typing.TYPE_CHECKING:
    from ._models import Request

TraceInfo = dict[str, typing.Any]


class Trace:
    """One traced step, used as ``with`` (sync code) or ``async with`` (async code).

    Build it with ``Trace.start``; set ``return_value`` inside the block to
    report what the step produced.
    """

    __slots__ = ("_callback", "_info", "_name", "_return_value")

    def __init__(
        self,
        callback: typing.Callable[[str, TraceInfo], typing.Any] | None,
        name: str = "",
        info: TraceInfo | None = None,
    ) -> None:
        self._callback = callback
        self._name = name
        self._info = info
        self._return_value: typing.Any = None

    @staticmethod
    def start(name: str, request: Request | None, info: TraceInfo | None = None) -> Trace:
        """The trace of step ``name`` (``"http11.send_request_headers"``) of ``request``.

        ``info`` defaults to ``{"request": request}``. Without a trace
        extension this returns ``NO_TRACE`` and builds nothing.
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
        if self._callback is not None:
            self._return_value = value

    def _outcome(self, exc: BaseException | None) -> tuple[str, TraceInfo]:
        if exc is None:
            return f"{self._name}.complete", {"return_value": self._return_value}
        return f"{self._name}.failed", {"exception": exc}

    # Sync code.

    def _call(self, name: str, info: TraceInfo) -> None:
        assert self._callback is not None
        result = self._callback(name, info)
        if inspect.isawaitable(result):
            # Closing a coroutine spares a "never awaited" warning on top of this error.
            getattr(result, "close", lambda: None)()
            raise TypeError(
                "The 'trace' callback of a sync request must be a plain function, "
                "not a coroutine function."
            )

    def __enter__(self) -> Trace:
        if self._callback is not None:
            self._call(f"{self._name}.started", self._info or {})
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        if self._callback is not None:
            self._call(*self._outcome(exc_value))

    # Async code.

    async def _acall(self, name: str, info: TraceInfo) -> None:
        assert self._callback is not None
        result = self._callback(name, info)
        if inspect.isawaitable(result):
            await result

    async def __aenter__(self) -> Trace:
        if self._callback is not None:
            await self._acall(f"{self._name}.started", self._info or {})
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        if self._callback is not None:
            await self._acall(*self._outcome(exc_value))


NO_TRACE: typing.Final = Trace(None)
