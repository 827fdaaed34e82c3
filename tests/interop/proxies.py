"""Real proxies nobody here wrote, started as child processes on 127.0.0.1.

``TinyProxy`` (HTTP proxy with CONNECT, optional Basic auth, CONNECT allowed
only to the ports given), ``Dante`` (``danted``, SOCKS5, optionally
requiring username/password authentication) and ``NginxTLSFront`` (nginx's
stream module terminating TLS in front of another proxy: an ``https://``
proxy built from real parts). Each gets a free loopback port, its own
temporary configuration and log, runs in the foreground as our child (never
as a system service), and is stopped with its process. A missing binary
raises ``ProxyUnavailable`` (the tests skip); one that does not start raises
``RuntimeError`` with the end of its log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import typing
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 15.0
NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


class ProxyUnavailable(Exception):
    """The proxy's binary (or a module it needs) is not installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _find(binary: str) -> str:
    for directory in (*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/usr/bin"):
        path = Path(directory or ".") / binary
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise ProxyUnavailable(f"{binary} is not installed")


_P = typing.TypeVar("_P", bound="_ChildProxy")


class _ChildProxy:
    """A proxy process with a config file in ``directory``, listening on ``port``."""

    binary = ""

    def __init__(self) -> None:
        self.executable = _find(self.binary)
        # Not pytest's tmp_path: run as root, the proxies drop privileges to
        # nobody, who cannot enter /tmp/pytest-of-root (mode 0700).
        self.directory = Path(tempfile.mkdtemp(prefix=f"httpool-proxy-test-{self.binary}-"))
        self.directory.chmod(0o777)
        self.port = free_port()
        self.log = self.directory / f"{self.binary}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    def start(self: _P) -> _P:
        self.write_config()
        output = (self.directory / f"{self.binary}.out").open("wb")
        with output:
            self.process = subprocess.Popen(
                self.command(), stdout=output, stderr=subprocess.STDOUT, cwd=self.directory
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                message = f"{self.binary} exited at start:\n{self.log_tail()}"
                self.remove()
                raise RuntimeError(message)
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0),
            ):
                return self
            if time.monotonic() > deadline:
                message = f"{self.binary} did not listen:\n{self.log_tail()}"
                self.remove()
                raise RuntimeError(message)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        """Stop, and delete the directory with the config and the logs."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.log, self.directory / f"{self.binary}.out"):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def __enter__(self: _P) -> _P:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()


class TinyProxy(_ChildProxy):
    """tinyproxy: forwards http://, tunnels CONNECT to ``connect_ports`` only
    (all ports when empty), requires ``auth`` when given."""

    binary = "tinyproxy"

    def __init__(
        self, *, auth: tuple[str, str] | None = None, connect_ports: typing.Sequence[int] = ()
    ) -> None:
        super().__init__()
        self.auth = auth
        self.connect_ports = connect_ports

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.executable, "-d", "-c", str(self.directory / "tinyproxy.conf")]

    def write_config(self) -> None:
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 60",
            f'LogFile "{self.log}"',
            "LogLevel Info",
            "MaxClients 200",
            "Allow 127.0.0.1",
            "DisableViaHeader Yes",
        ]
        if os.geteuid() == 0:
            lines += ["User nobody", "Group nogroup"]
        if self.auth is not None:
            lines.append(f"BasicAuth {self.auth[0]} {self.auth[1]}")
        lines += [f"ConnectPort {port}" for port in self.connect_ports]
        (self.directory / "tinyproxy.conf").write_text("\n".join(lines) + "\n")

    def connect_count(self) -> int:
        """CONNECT requests tinyproxy has logged so far."""
        if not self.log.exists():
            return 0
        lines = self.log.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if "): CONNECT " in line)


class Dante(_ChildProxy):
    """danted, SOCKS5 CONNECT only; ``username=True`` requires username/password
    authentication (checked against the system's users, so only refusals are
    testable here); ``blocked_port``: CONNECTs to it are refused by a rule."""

    binary = "danted"

    def __init__(self, *, username: bool = False, blocked_port: int | None = None) -> None:
        super().__init__()
        self.username = username
        self.blocked_port = blocked_port

    def url(self, scheme: str = "socks5") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        conf = str(self.directory / "danted.conf")
        return [self.executable, "-f", conf, "-N", "1", "-p", str(self.directory / "d.pid")]

    def write_config(self) -> None:
        method = "username" if self.username else "none"
        lines = [
            f"logoutput: {self.log}",
            f"internal: 127.0.0.1 port = {self.port}",
            "external: 127.0.0.1",
            "clientmethod: none",
            f"socksmethod: {method}",
        ]
        if os.geteuid() == 0:  # settings come before the rules
            lines += ["user.privileged: root", "user.unprivileged: nobody"]
        lines.append("client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }")
        if self.blocked_port is not None:
            lines.append(
                "socks block { from: 0.0.0.0/0 to: 0.0.0.0/0"
                f" port = {self.blocked_port} command: connect }}"
            )
        lines.append("socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }")
        (self.directory / "danted.conf").write_text("\n".join(lines) + "\n")


class NginxTLSFront(_ChildProxy):
    """nginx's stream module: TLS on ``port``, the plain bytes to ``backend_port``."""

    binary = "nginx"

    def __init__(self, *, backend_port: int, ca: typing.Any) -> None:
        if not NGINX_STREAM_MODULE.exists():
            raise ProxyUnavailable(
                f"nginx's stream module ({NGINX_STREAM_MODULE}) is not installed"
                " (apt-get install libnginx-mod-stream)"
            )
        super().__init__()
        self.backend_port = backend_port
        self.cert, self.key = tls_files(self.directory, ca)
        self.log = self.directory / "nginx-error.log"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        conf = str(self.directory / "nginx.conf")
        return [self.executable, "-p", str(self.directory), "-c", conf, "-e", str(self.log)]

    def write_config(self) -> None:
        user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
        (self.directory / "nginx.conf").write_text(
            f"load_module {NGINX_STREAM_MODULE};\n{user}"
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            f"error_log {self.log} info;\npid {self.directory / 'nginx.pid'};\n"
            "events { worker_connections 256; }\n"
            "stream {\n"
            f"  server {{\n    listen 127.0.0.1:{self.port} ssl;\n"
            f"    ssl_certificate {self.cert};\n    ssl_certificate_key {self.key};\n"
            f"    proxy_pass 127.0.0.1:{self.backend_port};\n  }}\n"
            "}\n"
        )


def tls_files(directory: Path, ca: typing.Any) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 from the trustme ``ca``, as files."""
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = directory / "proxy.pem", directory / "proxy.key"
    leaf.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return cert, key


def client_context(ca: typing.Any) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context
