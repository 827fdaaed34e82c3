"""Caddy (Go's net/http and x/net/http2): HTTP/1.1 and h2c by prior knowledge on one port
(``protocols: h1, h2c``), TLS with ALPN ``h2`` and ``http/1.1``.

``POST /upload`` echoes the body (a ``static_response`` whose body is the
``{http.request.body}`` placeholder, which reads it all). Go's server has no per-connection
request limit, so the keep-alive-limit case does not apply; ``idle_timeout`` closes idle
connections of both protocols. Caddy's admin endpoint is disabled and its storage is the
private directory, so it touches no port and no file outside it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

from .base import Server, ServerUnavailable, which


class Caddy(Server):
    name = "caddy"
    port_names = ("http", "https")
    request_limit_protocols = ()

    def find_binary(self) -> str:
        found = which("caddy")
        if found is None:
            raise ServerUnavailable("no caddy binary on PATH")
        return found

    def read_version(self) -> str:
        result = subprocess.run(
            [self.binary, "version"], capture_output=True, text=True, timeout=30, check=False
        )
        match = re.search(r"v?(\d+\.\d+\.\d+\S*)", result.stdout)
        if match is None:
            raise ServerUnavailable(f"cannot read the version of {self.binary}")
        return match.group(1)

    def upload_reply(self, body: bytes) -> bytes:
        return body

    def command(self) -> list[str]:
        return [self.binary, "run", "--config", str(self.directory / "caddy.json")]

    def environment(self) -> dict[str, str]:
        home = str(self.directory / "home")
        return dict(os.environ, HOME=home, XDG_DATA_HOME=home, XDG_CONFIG_HOME=home)

    def write_config(self) -> None:
        routes: list[dict[str, Any]] = [
            {
                "match": [{"path": ["/upload"], "method": ["POST"]}],
                "handle": [{"handler": "static_response", "body": "{http.request.body}"}],
            },
            {"handle": [{"handler": "file_server", "root": str(self.html)}]},
        ]
        idle = f"{round(self.idle_timeout * 1000)}ms"
        config = {
            "admin": {"disabled": True},
            "logging": {
                "logs": {
                    "default": {
                        "writer": {"output": "file", "filename": str(self.error_log)},
                        "level": "WARN",
                    }
                }
            },
            "storage": {"module": "file_system", "root": str(self.directory / "storage")},
            "apps": {
                "http": {
                    "servers": {
                        "cleartext": {
                            "listen": [f"127.0.0.1:{self.ports['http']}"],
                            "protocols": ["h1", "h2c"],
                            "idle_timeout": idle,
                            "automatic_https": {"disable": True},
                            "routes": routes,
                        },
                        "tls": {
                            "listen": [f"127.0.0.1:{self.ports['https']}"],
                            "protocols": ["h1", "h2"],
                            "idle_timeout": idle,
                            "automatic_https": {"disable": True},
                            "tls_connection_policies": [
                                {"certificate_selection": {"any_tag": ["interop"]}}
                            ],
                            "routes": routes,
                        },
                    }
                },
                "tls": {
                    "certificates": {
                        "load_files": [
                            {
                                "certificate": str(self.cert_file),
                                "key": str(self.key_file),
                                "tags": ["interop"],
                            }
                        ]
                    }
                },
            },
        }
        (self.directory / "caddy.json").write_text(json.dumps(config, indent=2))
