"""Run a real nginx on 127.0.0.1 for interop tests and peer comparisons.

Theory of operation: ``Nginx`` owns one nginx master process and everything
it writes. ``start()`` picks three free ports on 127.0.0.1, writes a config,
a static root and trustme TLS material into a private directory, and starts
``nginx -p DIR -c DIR/nginx.conf`` in the foreground (``daemon off``) with its
pid file, logs and every temp path inside that directory, so it needs no
system paths and leaves nothing behind. It returns once all three ports
accept connections. ``stop()`` terminates the master and waits for it.

Three server blocks, one per port:

- ``http_url``: HTTP/1.1 in cleartext;
- ``h2c_url``: HTTP/2 in cleartext with prior knowledge (nginx does not do
  the HTTP/1.1 Upgrade dance);
- ``https_url``: TLS offering ALPN ``h2`` and ``http/1.1``.

Each serves the static files in ``FILES`` and ``/upload``, which accepts a
POST body of up to 200 MB and answers ``200`` with ``received N bytes``.
nginx's static handler refuses POST (405), so ``/upload`` proxies to a sink
location on the HTTP/1.1 port: the proxy reads the whole request body first
(``proxy_request_buffering`` is on by default), so the client's upload
completes before any response is sent, and the sink reports the length the
proxy forwarded.

The config depends on the nginx version: before 1.25.1 HTTP/2 is a flag on
``listen``; from 1.25.1 it is the ``http2 on;`` directive. Debian's nginx
flavours may lack modules, so temp-path directives are written only for the
modules the binary has (``nginx -V``).

The module is importable without pytest (``from tests.interop.nginx import
Nginx``), for scripts that compare httpool with other clients.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import types
from pathlib import Path

import trustme

SMALL_BODY = b"Hello, world!\n"


def _pattern(size: int) -> bytes:
    # Not all zeros, so that a misplaced chunk changes the digest.
    return bytes(range(256)) * (size // 256)


# Static files served from the document root: name -> content.
FILES: dict[str, bytes] = {
    "small.txt": SMALL_BODY,
    "64k.bin": _pattern(64 * 1024),
    "1m.bin": _pattern(1024 * 1024),
}

# Both the per-connection HTTP/2 stream limit and the ceiling the tests assume.
MAX_CONCURRENT_STREAMS = 128
# Far above what any test sends on one connection, so nginx never closes a
# connection for having served too many requests.
KEEPALIVE_REQUESTS = 10_000
STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0

# (directive, module) for every temp path nginx would otherwise create under
# its compiled-in prefix, often /var/lib/nginx, which a non-root user cannot write.
_TEMP_PATHS = (
    ("client_body_temp_path", None),
    ("proxy_temp_path", "proxy"),
    ("fastcgi_temp_path", "fastcgi"),
    ("uwsgi_temp_path", "uwsgi"),
    ("scgi_temp_path", "scgi"),
)


class NginxUnavailable(RuntimeError):
    """No nginx binary, or one without the HTTP/2 or TLS module."""


def find_nginx() -> str | None:
    """The path of an nginx binary (``/usr/sbin`` included, which a user's PATH may lack)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def nginx_build(binary: str) -> tuple[tuple[int, ...], str]:
    """The version of ``binary`` and its ``nginx -V`` output (which goes to stderr)."""
    result = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=30, check=False)
    output = result.stderr + result.stdout
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output)
    if match is None:
        raise NginxUnavailable(f"cannot read the version of {binary}: {output!r}")
    return tuple(int(part) for part in match.groups()), output


def _free_ports(count: int) -> list[int]:
    # Bound all at once so the kernel hands out distinct ports. Another
    # process may take one before nginx binds it; start() retries then.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


class Nginx:
    """An nginx serving ``FILES`` and ``/upload`` over HTTP/1.1, h2c and TLS on 127.0.0.1.

    Use as a context manager, or call ``start()`` and ``stop()``. After
    ``start()``: ``http_url``, ``h2c_url`` and ``https_url`` (each ending in
    ``/``), ``version``, and ``client_ssl_context``, a fresh client context
    trusting the server's certificate on every access.

    Args:
        directory: where config, files and logs go; default a new temporary
            directory, removed again by ``stop()``.
        binary: the nginx to run; default the one on PATH.
        workers: nginx worker processes.
        access_log: write an access log (off by default: it costs time in benchmarks).

    Raises:
        NginxUnavailable: from the constructor, when there is no usable nginx.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        binary: str | None = None,
        workers: int = 1,
        access_log: bool = False,
    ) -> None:
        found = binary or find_nginx()
        if found is None:
            raise NginxUnavailable("no nginx binary on PATH or in /usr/sbin")
        self.binary = found
        self.version, self._build_info = nginx_build(found)
        for module in ("http_v2", "http_ssl"):
            if f"--with-{module}_module" not in self._build_info:
                raise NginxUnavailable(f"{found} was built without {module}_module")
        self._own_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="httpool-nginx-"))
        self.workers = workers
        self.access_log = access_log
        self._ca = trustme.CA()
        self._process: subprocess.Popen[bytes] | None = None
        self.ports: tuple[int, int, int] = (0, 0, 0)

    # -- what clients need -------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}/"

    @property
    def h2c_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[1]}/"

    @property
    def https_url(self) -> str:
        # The address, not "localhost", which may resolve to ::1 first; the
        # certificate names 127.0.0.1, so the client still verifies it.
        return f"https://127.0.0.1:{self.ports[2]}/"

    @property
    def client_ssl_context(self) -> ssl.SSLContext:
        # Fresh each time: a pool may set ALPN on the context it is given.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._ca.configure_trust(context)
        return context

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def error_log_tail(self, lines: int = 40) -> str:
        """The end of nginx's error log, for failure messages."""
        try:
            text = self.error_log.read_text(errors="replace")
        except OSError:
            return "(no error log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        """Write the config and start nginx; return once every port accepts connections.

        Raises ``RuntimeError`` with the end of the error log when nginx exits or
        does not listen within ``STARTUP_TIMEOUT`` seconds.
        """
        self._write_tree()
        for attempt in range(3):
            http_port, h2c_port, https_port = _free_ports(3)
            self.ports = (http_port, h2c_port, https_port)
            (self.directory / "nginx.conf").write_text(self.config())
            self._spawn()
            if self._wait_until_listening():
                return
            self.stop(remove=False)
            if "Address already in use" not in self.error_log_tail() or attempt == 2:
                break
        raise RuntimeError(f"nginx did not start; error log:\n{self.error_log_tail()}")

    def stop(self, remove: bool = True) -> None:
        """Stop nginx (SIGTERM, then SIGKILL) and wait for it; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=SHUTDOWN_TIMEOUT)
        if remove and self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Nginx:
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
        command = [self.binary, "-p", f"{self.directory}/", "-c", "nginx.conf"]
        if self.version >= (1, 19, 5):
            # Without -e, messages logged before the config is read go to the
            # compiled-in error log, which may not be writable.
            command += ["-e", str(self.error_log)]
        # Output to a file, never a pipe: nothing stays open in this process
        # (the test suite counts file descriptors) and nginx cannot block on it.
        with open(self.directory / "stderr.log", "ab") as output:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )

    def _wait_until_listening(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        pending = list(self.ports)
        while pending and time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            pending = [port for port in pending if not _accepts(port)]
            if pending:
                time.sleep(0.05)
        return not pending

    # -- files ------------------------------------------------------------

    def _write_tree(self) -> None:
        root = self.directory / "html"
        root.mkdir(parents=True, exist_ok=True)
        for name, content in FILES.items():
            (root / name).write_bytes(content)
        self._temp_dir.mkdir(exist_ok=True)
        certificate = self._ca.issue_cert("localhost", "127.0.0.1", "::1")
        certificate.private_key_and_cert_chain_pem.write_to_path(str(self.directory / "tls.pem"))

    @property
    def _temp_dir(self) -> Path:
        return self.directory / "temp"

    def _has_module(self, module: str | None) -> bool:
        return module is None or f"--without-http_{module}_module" not in self._build_info

    def config(self) -> str:
        """The nginx.conf text for the current ports and nginx version."""
        http_port, h2c_port, https_port = self.ports
        new_http2 = self.version >= (1, 25, 1)
        flag = "" if new_http2 else " http2"
        http2_on = "        http2 on;\n" if new_http2 else ""
        temp_paths = "".join(
            f"    {directive} {self._temp_dir / directive.removesuffix('_temp_path')};\n"
            for directive, module in _TEMP_PATHS
            if self._has_module(module)
        )
        # The workers of a root master would run as "nobody", who cannot read a
        # private temporary directory; as anyone else the directive is ignored.
        user = "user root;\n" if os.geteuid() == 0 else ""
        access_log = (
            f"access_log {self.directory / 'access.log'};"
            if self.access_log
            else ("access_log off;")
        )
        locations = f"""
        root {self.directory / "html"};
        location = /upload {{
            client_max_body_size 200m;
            proxy_pass http://127.0.0.1:{http_port}/upload-sink;
        }}
        location = /upload-sink {{
            client_max_body_size 200m;
            default_type text/plain;
            return 200 "received $content_length bytes\\n";
        }}
"""
        return f"""\
# Written by tests/interop/nginx.py for nginx {".".join(map(str, self.version))}.
{user}daemon off;
master_process on;
worker_processes {self.workers};
pid {self.directory / "nginx.pid"};
error_log {self.error_log} info;

events {{
    worker_connections 1024;
}}

http {{
    {access_log}
{temp_paths}    default_type application/octet-stream;
    keepalive_timeout 120s;
    keepalive_requests {KEEPALIVE_REQUESTS};
    http2_max_concurrent_streams {MAX_CONCURRENT_STREAMS};
    client_body_buffer_size 1m;

    server {{
        listen 127.0.0.1:{http_port};
{locations}    }}

    server {{
        listen 127.0.0.1:{h2c_port}{flag};
{http2_on}{locations}    }}

    server {{
        listen 127.0.0.1:{https_port} ssl{flag};
{http2_on}        ssl_certificate {self.directory / "tls.pem"};
        ssl_certificate_key {self.directory / "tls.pem"};
        ssl_protocols TLSv1.2 TLSv1.3;
{locations}    }}
}}
"""
