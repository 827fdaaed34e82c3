"""The threaded base of the test servers: listen, accept, wake up, stop.

Theory of operation: ``start()`` listens on 127.0.0.1 (an ephemeral port) or
on a Unix socket and runs an accept thread, which polls the listening socket
and the read end of a wake-up socket pair. Each accepted connection is handed
to the subclass under ``lock`` (``_accepted``), which returns the thread that
will serve it, unstarted. Every blocking wait of a server thread also waits
on ``_wake_r``, so ``stop()`` writes one byte to wake them all, joins the
accept thread, closes the listener, then ends the connections
(``_stop_connections``: by default shut every registered socket down, which
also breaks a ``sendall`` that a client stopped reading, and join every
thread) and closes the wake-up pair. Nothing survives ``stop()``: no socket,
no thread.

``_serve_in_thread`` is the usual ``_accepted``: one thread per connection,
counted in ``connections_accepted`` and ``open_connections`` and registered
for ``stop()``; the subclass's target runs, then the bookkeeping is undone.

This module knows nothing of what is served (HTTP/1.1, HTTP/2, proxying,
scripted faults): each server keeps only that.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import typing
from collections.abc import Callable
from types import TracebackType

_S = typing.TypeVar("_S", bound="ThreadedServer")


class ThreadedServer:
    """Accept loop, wake-up pair and a ``stop()`` that leaves nothing behind.

    Args:
        uds: listen on this Unix socket path instead of TCP (removed on stop).

    Subclasses set ``name`` (the threads' names) and implement ``_accepted``.
    """

    name = "server"
    backlog = 128

    def __init__(self, *, uds: str | None = None) -> None:
        self.uds = uds
        self.port = 0
        self.connections_accepted = 0
        self.open_connections = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        # For the threads of _serve_in_thread: what stop() shuts down and joins.
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()

    # Lifecycle.

    def start(self: _S) -> _S:
        if self.uds is not None:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.uds)
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            self.port = listener.getsockname()[1]
        self._listening(listener)
        listener.listen(self.backlog)
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{self.name}-accept", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Wake every thread, close every socket, join every thread."""
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join()
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.uds is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.uds)
        # No connection starts now that the accept thread is gone.
        self._stop_connections()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # What subclasses provide or use.

    def _listening(self, listener: socket.socket) -> None:
        """Configure the bound listener before it listens (by default, nothing)."""

    def _accepted(self, sock: socket.socket, address: typing.Any) -> threading.Thread:
        """Take charge of ``sock``, connected from ``address`` (called under
        ``lock``, after ``connections_accepted`` counted it); return the thread
        to serve it, unstarted."""
        raise NotImplementedError

    def _serve_in_thread(
        self, sock: socket.socket, target: Callable[..., None], *args: typing.Any
    ) -> threading.Thread:
        """A thread running ``target(sock, *args)``; registered (under ``lock``)
        so that ``stop()`` shuts ``sock`` down and joins it."""
        thread = threading.Thread(
            target=self._connection_thread,
            args=(sock, target, args),
            name=f"{self.name}-conn",
            daemon=True,
        )
        self.open_connections += 1
        self._sockets.add(sock)
        self._threads.add(thread)
        return thread

    def _stop_connections(self) -> None:
        with self.lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also for an SSLSocket: its own
                # would tear down the TLS state under the thread serving it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for thread in threads:
            thread.join()

    # Threads.

    def _accept_loop(self) -> None:
        assert self._listener is not None
        # poll, not select: a test with many sockets open may pass FD_SETSIZE.
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            ready = poller.poll()
            if any(fd == self._wake_r.fileno() for fd, _ in ready):
                return
            try:
                sock, address = self._listener.accept()
            except OSError:  # pragma: no cover - the client gave up mid-accept
                continue
            with self.lock:
                self.connections_accepted += 1
                thread = self._accepted(sock, address)
            thread.start()

    def _connection_thread(
        self, sock: socket.socket, target: Callable[..., None], args: tuple[typing.Any, ...]
    ) -> None:
        try:
            target(sock, *args)
        finally:
            with self.lock:
                self.open_connections -= 1
                self._sockets.discard(sock)
                self._threads.discard(threading.current_thread())
