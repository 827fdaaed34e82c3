"""hypercorn (asyncio worker): HTTP/1.1 and h2c by prior knowledge on one port (it sniffs
the HTTP/2 preface), TLS with ALPN ``h2`` and ``http/1.1``; both binds in one process.

It serves ``hypercorn_app.py``, whose ``POST /upload`` answers the body's length and
SHA-256. ``keep_alive_max_requests`` closes HTTP/1.1 connections and ends HTTP/2 ones
with GOAWAY; ``keep_alive_timeout`` closes idle ones. It runs on the Python that runs the
tests, so hypercorn must be installed there (``nox -s interop`` installs it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import sys
from pathlib import Path

from .base import H1, H1_TLS, MAX_CONCURRENT_STREAMS, Server, ServerUnavailable

APP = Path(__file__).with_name("hypercorn_app.py")


class Hypercorn(Server):
    name = "hypercorn"
    port_names = ("http", "https")
    # At keep_alive_max_requests hypercorn's HTTP/2 side calls h2's close_connection()
    # on receiving a request: GOAWAY(NO_ERROR) naming the streams in flight as processed,
    # after which h2 (python-hyper/h2#1181) refuses to send their responses and hypercorn
    # drops them silently; those requests never get an answer. One request at a time is
    # answered before the GOAWAY goes out.
    graceful_limit_protocols = (H1, H1_TLS)

    def find_binary(self) -> str:
        try:
            importlib.metadata.version("hypercorn")
        except importlib.metadata.PackageNotFoundError:
            raise ServerUnavailable(f"hypercorn is not installed for {sys.executable}") from None
        return sys.executable

    def read_version(self) -> str:
        return importlib.metadata.version("hypercorn")

    def upload_reply(self, body: bytes) -> bytes:
        digest = hashlib.sha256(body).hexdigest().encode()
        return b"received %d bytes, sha256 %s\n" % (len(body), digest)

    def command(self) -> list[str]:
        return [
            self.binary,
            "-m",
            "hypercorn",
            "--config",
            str(self.directory / "hypercorn.toml"),
            "hypercorn_app:app",
        ]

    def environment(self) -> dict[str, str]:
        return dict(
            os.environ,
            HTTPOOL_INTEROP_ROOT=str(self.html),
            PYTHONDONTWRITEBYTECODE="1",
        )

    def write_config(self) -> None:
        # Next to the config, in the working directory ``python -m`` puts on sys.path.
        shutil.copyfile(APP, self.directory / APP.name)
        text = f"""\
# Written by tests/interop/servers/hypercorn.py for hypercorn {self.version}.
bind = ["127.0.0.1:{self.ports["https"]}"]
insecure_bind = ["127.0.0.1:{self.ports["http"]}"]
certfile = "{self.cert_file}"
keyfile = "{self.key_file}"
alpn_protocols = ["h2", "http/1.1"]
keep_alive_timeout = {self.idle_timeout}
keep_alive_max_requests = {self.keepalive_requests}
h2_max_concurrent_streams = {MAX_CONCURRENT_STREAMS}
errorlog = "{self.error_log}"
loglevel = "WARNING"
workers = 1
"""
        (self.directory / "hypercorn.toml").write_text(text)
