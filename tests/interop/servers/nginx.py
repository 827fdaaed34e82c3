"""nginx: HTTP/1.1, h2c (its own port: nginx does not sniff the preface) and TLS with ALPN.

nginx's static handler refuses POST (405), so ``/upload`` proxies to a sink location on the
HTTP/1.1 port: the proxy reads the whole request body first (``proxy_request_buffering`` is
on by default), so the client's upload completes before any response is sent, and the sink
reports the length the proxy forwarded. From 1.19.7 ``keepalive_requests`` and
``keepalive_timeout`` govern HTTP/2 connections too (GOAWAY after the last request).

The config depends on the nginx version: before 1.25.1 HTTP/2 is a flag on ``listen``; from
1.25.1 it is the ``http2 on;`` directive. Debian's nginx flavours may lack modules, so
temp-path directives are written only for the modules the binary has (``nginx -V``).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from .base import MAX_CONCURRENT_STREAMS, Server, ServerUnavailable, which

# (directive, module) for every temp path nginx would otherwise create under
# its compiled-in prefix, often /var/lib/nginx, which a non-root user cannot write.
_TEMP_PATHS = (
    ("client_body_temp_path", None),
    ("proxy_temp_path", "proxy"),
    ("fastcgi_temp_path", "fastcgi"),
    ("uwsgi_temp_path", "uwsgi"),
    ("scgi_temp_path", "scgi"),
)


def find_nginx() -> str | None:
    """The path of an nginx binary, or None."""
    return which("nginx")


class Nginx(Server):
    """nginx; ``workers`` worker processes, ``access_log`` off by default (it costs time
    in benchmarks)."""

    name = "nginx"

    def __init__(self, *args: Any, workers: int = 1, access_log: bool = False, **kwargs: Any):
        self._build_info = ""
        super().__init__(*args, **kwargs)
        self.workers = workers
        self.access_log = access_log

    def find_binary(self) -> str:
        found = find_nginx()
        if found is None:
            raise ServerUnavailable("no nginx binary on PATH or in /usr/sbin")
        return found

    def read_version(self) -> str:
        result = subprocess.run(
            [self.binary, "-V"], capture_output=True, text=True, timeout=30, check=False
        )
        self._build_info = result.stderr + result.stdout
        match = re.search(r"nginx/(\d+\.\d+\.\d+)", self._build_info)
        if match is None:
            raise ServerUnavailable(f"cannot read the version of {self.binary}")
        for module in ("http_v2", "http_ssl"):
            if f"--with-{module}_module" not in self._build_info:
                raise ServerUnavailable(f"{self.binary} was built without {module}_module")
        return match.group(1)

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))

    def upload_reply(self, body: bytes) -> bytes:
        return b"received %d bytes\n" % len(body)

    def command(self) -> list[str]:
        command = [self.binary, "-p", f"{self.directory}/", "-c", "nginx.conf"]
        if self.version_tuple >= (1, 19, 5):
            # Without -e, messages logged before the config is read go to the
            # compiled-in error log, which may not be writable.
            command += ["-e", str(self.error_log)]
        return command

    def _has_module(self, module: str | None) -> bool:
        return module is None or f"--without-http_{module}_module" not in self._build_info

    def write_config(self) -> None:
        (self.directory / "temp").mkdir(exist_ok=True)
        (self.directory / "nginx.conf").write_text(self.config())

    def config(self) -> str:
        """The nginx.conf text for the current ports and nginx version."""
        http_port, h2c_port, https_port = (self.ports[n] for n in ("http", "h2c", "https"))
        new_http2 = self.version_tuple >= (1, 25, 1)
        flag = "" if new_http2 else " http2"
        http2_on = "        http2 on;\n" if new_http2 else ""
        temp = Path(self.directory, "temp")
        temp_paths = "".join(
            f"    {directive} {temp / directive.removesuffix('_temp_path')};\n"
            for directive, module in _TEMP_PATHS
            if self._has_module(module)
        )
        # The workers of a root master would run as "nobody"; keep them root, like the
        # master, so that nothing depends on the directory's permissions.
        user = "user root;\n" if os.geteuid() == 0 else ""
        access_log = (
            f"access_log {self.directory / 'access.log'};" if self.access_log else "access_log off;"
        )
        # nginx takes milliseconds ("500ms") as well as seconds.
        idle = f"{round(self.idle_timeout * 1000)}ms"
        locations = f"""
        root {self.html};
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
# Written by tests/interop/servers/nginx.py for nginx {self.version}.
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
    keepalive_timeout {idle};
    keepalive_requests {self.keepalive_requests};
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
{http2_on}        ssl_certificate {self.cert_file};
        ssl_certificate_key {self.key_file};
        ssl_protocols TLSv1.2 TLSv1.3;
{locations}    }}
}}
"""
