"""``ReadableProbe``: the liveness probe of one socket, its poll object made once,
answers as ``socket_is_readable`` does, call after call, until and after a close."""

from __future__ import annotations

import socket

from httpool._backends.sync import ReadableProbe, socket_is_readable


def test_the_probe_answers_as_socket_is_readable_each_time() -> None:
    ours, peer = socket.socketpair()
    probe = ReadableProbe(ours)
    try:
        assert probe() is False  # nothing waiting
        assert probe() is False  # asked again, on the poll object it made
        peer.sendall(b"x")
        assert probe() is True and socket_is_readable(ours) is True
        assert ours.recv(1) == b"x"
        assert probe() is False
        peer.close()  # end of stream: readable, so not reusable
        assert probe() is True and socket_is_readable(ours) is True
    finally:
        ours.close()
        peer.close()
    # Closed on our side: -1 as descriptor, reported readable (do not reuse),
    # even when its old number now belongs to an idle socket the poll object
    # would otherwise ask about.
    assert probe() is True
    reused, other = socket.socketpair()
    try:
        assert not socket_is_readable(reused)
        assert probe() is True
    finally:
        reused.close()
        other.close()


def test_a_probe_first_asked_after_the_close_says_readable() -> None:
    ours, peer = socket.socketpair()
    probe = ReadableProbe(ours)
    ours.close()
    peer.close()
    assert probe() is True


class _BusyPoller:
    """A poll object another thread is polling: CPython refuses a second call."""

    def poll(self, timeout: int) -> list[tuple[int, int]]:
        raise RuntimeError("concurrent poll() invocation")


def test_a_thread_that_finds_the_poll_object_busy_polls_on_its_own() -> None:
    # An HTTP/2 connection on threads is probed by each of its requests, at once.
    ours, peer = socket.socketpair()
    try:
        probe = ReadableProbe(ours)
        assert probe() is False
        probe._poller = _BusyPoller()
        assert probe() is False
        peer.sendall(b"x")
        assert probe() is True
    finally:
        ours.close()
        peer.close()
