"""What every real server of the interop matrix shares: a private directory, free ports,
trustme TLS material, a child process, and the wait for its ports.

Theory of operation: a ``Server`` subclass names its binary, how to read its version, the
configuration it writes and the command that runs it in the foreground. ``start()`` makes a
private directory (``tempfile.mkdtemp``), writes the static files of ``FILES`` into
``html/``, a certificate for 127.0.0.1 from a fresh trustme CA, then picks free ports on
127.0.0.1, writes the configuration and starts the process with its output going to a file
in that directory. It returns once every port accepts connections; when the process exits
first because another process took a port in the meantime, it retries with new ports.
``stop()`` terminates the process (SIGTERM, then SIGKILL) and removes the directory. Nothing
runs as a system service, nothing touches port 80 or 443, and every server is a child of the
test process, so it dies with the session.

Every server serves the same content, so that the tests can treat them alike:
``/small.txt``, ``/64k.bin`` and ``/1m.bin`` (static files), and ``POST /upload``, which
reads the whole request body and answers 200 with what ``upload_reply(body)`` says it
answers (its length, a digest or the body itself, whatever the server can compute).

The limits the matrix exercises are constructor arguments, so that benchmark drivers can
start the same servers without them: ``keepalive_requests`` (the server closes a connection,
or sends GOAWAY, after that many requests, where the server has such a setting; see
``request_limit_protocols``) and ``idle_timeout`` (seconds a kept-alive connection may stay idle).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import types
from pathlib import Path
from typing import ClassVar

import trustme

SMALL_BODY = b"Hello, world!\n"


def _pattern(size: int) -> bytes:
    # Not all zeros, so that a misplaced chunk changes the digest.
    return bytes(range(256)) * (size // 256)


# Static files served from every document root: name -> content.
FILES: dict[str, bytes] = {
    "small.txt": SMALL_BODY,
    "64k.bin": _pattern(64 * 1024),
    "1m.bin": _pattern(1024 * 1024),
}

# The protocols a server may speak, as the test ids name them.
H1 = "h1"  # HTTP/1.1 in cleartext
H1_TLS = "h1-tls"  # HTTP/1.1 over TLS (the client offers only http/1.1 by ALPN)
H2_TLS = "h2-tls"  # HTTP/2 over TLS, chosen by ALPN
H2C = "h2c"  # HTTP/2 in cleartext with prior knowledge
# HTTP/2 over TLS 1.2 (ALPN): there the server's first frames come with the handshake's
# last flight, which is where a client that drops bytes across start_tls fails (issue
# 15); with TLS 1.3 they come after it.
H2_TLS12 = "h2-tls12"
PROTOCOLS = (H1, H1_TLS, H2_TLS, H2_TLS12, H2C)
TLS_PROTOCOLS = (H1_TLS, H2_TLS, H2_TLS12)

# Per-connection HTTP/2 stream limit, where a server has the setting.
MAX_CONCURRENT_STREAMS = 128
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 10.0


class ServerUnavailable(RuntimeError):
    """The server's binary (or module) is not installed, or lacks a feature the tests need."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (free now; a race may take one later)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def which(name: str) -> str | None:
    """A binary on PATH, or in the sbin directories a non-login shell's PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


class Server:
    """One real server process on 127.0.0.1; a context manager.

    After ``start()``: ``http_url``, ``h2c_url`` and ``https_url`` (each ending in ``/``; a
    server that sniffs the HTTP/2 preface serves HTTP/1.1 and h2c on one port),
    ``version``, and ``client_ssl_context``, a fresh client context trusting the server's
    certificate on every access.
    """

    #: The name test ids use.
    name: ClassVar[str] = ""
    #: The protocols of ``PROTOCOLS`` this server speaks.
    protocols: ClassVar[tuple[str, ...]] = PROTOCOLS
    #: The protocols on which the server ends a connection after ``keepalive_requests``
    #: requests (``Connection: close`` on HTTP/1.1, GOAWAY on HTTP/2).
    request_limit_protocols: ClassVar[tuple[str, ...]] = PROTOCOLS
    #: The protocols on which the server still answers the requests in flight when it
    #: reaches that limit (a server that does not is tested with one request at a time).
    graceful_limit_protocols: ClassVar[tuple[str, ...]] = PROTOCOLS
    #: Whether ``POST /upload`` takes a body of unknown length (chunked on HTTP/1.1).
    streamed_upload: ClassVar[bool] = True
    #: Names of the ports ``start()`` picks; "h2c" may be absent (then it is "http").
    port_names: ClassVar[tuple[str, ...]] = ("http", "h2c", "https")

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        keepalive_requests: int = 10_000,
        idle_timeout: float = 120.0,
    ) -> None:
        self.binary = self.find_binary()
        self.version = self.read_version()
        self.keepalive_requests = keepalive_requests
        self.idle_timeout = idle_timeout
        self._own_directory = directory is None
        self.directory = Path(directory) if directory is not None else Path()
        self._ca = trustme.CA()
        self._process: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}

    # -- what a subclass provides -----------------------------------------

    def find_binary(self) -> str:
        """The path of what runs the server; raises ``ServerUnavailable``."""
        raise NotImplementedError

    def read_version(self) -> str:
        raise NotImplementedError

    def write_config(self) -> None:
        """Write the configuration for ``self.ports`` into ``self.directory``."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def upload_reply(self, body: bytes) -> bytes:
        """What ``POST /upload`` answers for ``body``."""
        raise NotImplementedError

    # -- what clients need -------------------------------------------------

    def _url(self, scheme: str, port_name: str) -> str:
        # The address, not "localhost", which may resolve to ::1 first; the
        # certificate names 127.0.0.1, so the client still verifies it.
        port = self.ports.get(port_name, self.ports.get("http"))
        return f"{scheme}://127.0.0.1:{port}/"

    @property
    def http_url(self) -> str:
        return self._url("http", "http")

    @property
    def h2c_url(self) -> str:
        return self._url("http", "h2c")

    @property
    def https_url(self) -> str:
        return self._url("https", "https")

    @property
    def client_ssl_context(self) -> ssl.SSLContext:
        # Fresh each time: a pool sets ALPN on the context it is given.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._ca.configure_trust(context)
        return context

    @property
    def cert_file(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "key.pem"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def html(self) -> Path:
        return self.directory / "html"

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's error log and output, for failure messages."""
        parts = []
        for path in (self.error_log, self.directory / "output.log"):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            parts.append(f"== {path.name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts) or "(no log)"

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        """Write files and configuration, start the server; return once every port listens.

        Raises ``RuntimeError`` with the end of the logs when the server exits or does not
        listen within ``STARTUP_TIMEOUT`` seconds.
        """
        if self._own_directory:
            self.directory = Path(tempfile.mkdtemp(prefix=f"httpool-{self.name}-"))
            # Servers started as root serve files from workers that run as another
            # user (Apache refuses to serve as root): let them read this directory.
            self.directory.chmod(0o755)
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._write_tree()
        for attempt in range(3):
            self.ports = dict(zip(self.port_names, free_ports(len(self.port_names)), strict=True))
            self.write_config()
            self._spawn()
            if self._wait_until_listening():
                return
            self.stop(remove=False)
            if attempt == 2 or "in use" not in self.log_tail():
                break
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"{self.name} did not start; logs:\n{tail}")

    def stop(self, remove: bool = True) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=SHUTDOWN_TIMEOUT)
        if remove and self._own_directory and self.directory != Path():
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self) -> None:
        # Output to a file, never a pipe: nothing stays open in this process
        # (the test suite counts file descriptors) and the server cannot block on it.
        with open(self.directory / "output.log", "ab") as output:
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                # Its own process group: a Ctrl-C in the terminal reaches the test
                # process, which stops the server, and not the server directly.
                start_new_session=True,
            )

    def _wait_until_listening(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        pending = list(self.ports.values())
        while pending and time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            pending = [port for port in pending if not accepts(port)]
            if pending:
                time.sleep(0.05)
        return not pending

    def _write_tree(self) -> None:
        self.html.mkdir(exist_ok=True)
        for name, content in FILES.items():
            (self.html / name).write_bytes(content)
        certificate = self._ca.issue_cert("localhost", "127.0.0.1", "::1")
        certificate.cert_chain_pems[0].write_to_path(str(self.cert_file))
        certificate.private_key_pem.write_to_path(str(self.key_file))
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        # The key is read by the server's (root) master process only where it drops
        # privileges; everyone else runs as the current user.
        self.key_file.chmod(0o600)
