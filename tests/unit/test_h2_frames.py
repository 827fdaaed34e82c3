"""Received frames cost no debug text: h2 formats ``repr(frame)`` for a trace
log line on every frame, which ``ClientH2`` makes free (``_h2.py``), while
h2 handles every frame as before."""

from __future__ import annotations

import types
import typing

import h2.events
import hpack
import pytest
from hyperframe.frame import (
    DataFrame,
    ExtensionFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from httpool._h2 import ClientH2


def server_bytes() -> bytes:
    settings = SettingsFrame(0)
    head = HeadersFrame(1, hpack.Encoder().encode([(b":status", b"200"), (b"server", b"x")]))
    head.flags.add("END_HEADERS")
    data = DataFrame(1, b"hello")
    data.flags.add("END_STREAM")
    frames: list[Frame] = [settings, PingFrame(0, b"12345678"), head, WindowUpdateFrame(0, 10)]
    # A frame of a type h2 does not know (0xfa) on stream 1, one byte long.
    unknown = b"\x00\x00\x01\xfa\x00\x00\x00\x00\x01?"
    return b"".join(f.serialize() for f in frames) + unknown + data.serialize()


def connect() -> ClientH2:
    connection = ClientH2()
    connection.start()
    connection.send_headers(
        1,
        [(b":method", b"GET"), (b":authority", b"a"), (b":scheme", b"http"), (b":path", b"/")],
        end_stream=True,
    )
    connection.take_output()
    return connection


def test_no_frame_repr_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_repr(self: Frame) -> str:
        raise AssertionError(f"repr of a received {type(self).__name__} built")

    monkeypatch.setattr(Frame, "__repr__", no_repr)
    connection = connect()
    events = connection.receive_data(server_bytes())
    kinds = [type(event) for event in events]
    assert kinds == [
        h2.events.RemoteSettingsChanged,
        h2.events.PingReceived,
        h2.events.ResponseReceived,
        h2.events.WindowUpdated,
        h2.events.UnknownFrameReceived,
        h2.events.DataReceived,
        h2.events.StreamEnded,
    ]
    response = typing.cast(h2.events.ResponseReceived, events[2])
    assert response.headers == [(b":status", b"200"), (b"server", b"x")]
    data = typing.cast(h2.events.DataReceived, events[5])
    assert data.data == b"hello"
    # The PING is answered, the SETTINGS acknowledged, as h2 does.
    assert connection.take_output()


def test_received_frames_keep_their_class_and_name() -> None:
    connection = connect()
    events = connection.receive_data(server_bytes())
    unknown = typing.cast(h2.events.UnknownFrameReceived, events[4])
    frame = unknown.frame
    assert isinstance(frame, ExtensionFrame)
    assert type(frame).__name__ == "ExtensionFrame"
    assert repr(frame) == "ExtensionFrame"


def test_h2_debug_lines_cost_no_python_call() -> None:
    logger = ClientH2().config.logger
    for log in (logger.debug, logger.trace):
        assert isinstance(log, types.BuiltinMethodType)
        assert log("Send headers %s on %r", [(b"a", b"b")], object()) == ""
