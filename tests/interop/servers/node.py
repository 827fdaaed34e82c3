"""Node.js: ``node_server.js`` on node:http (HTTP/1.1), node:http2 (h2c by prior knowledge,
its own port) and node:http2's secure server with ``allowHTTP1`` (TLS, ALPN ``h2`` and
``http/1.1``). ``POST /upload`` answers the body's length and SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

from .base import MAX_CONCURRENT_STREAMS, Server, ServerUnavailable, which

SCRIPT = Path(__file__).with_name("node_server.js")
MIN_VERSION = (18, 0)


class Node(Server):
    name = "node"

    def find_binary(self) -> str:
        found = which("node") or which("nodejs")
        if found is None:
            raise ServerUnavailable("no node (Node.js) binary on PATH")
        return found

    def read_version(self) -> str:
        result = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        match = re.search(r"v(\d+)\.(\d+)\.(\d+)", result.stdout)
        if match is None:
            raise ServerUnavailable(f"cannot read the version of {self.binary}")
        if (int(match.group(1)), int(match.group(2))) < MIN_VERSION:
            # maxRequestsPerSocket (HTTP/1.1) came in Node 16.10; 18 is Debian 12's.
            raise ServerUnavailable(f"{self.binary} is {match.group(0)}, older than 18")
        return match.group(0).removeprefix("v")

    def upload_reply(self, body: bytes) -> bytes:
        digest = hashlib.sha256(body).hexdigest().encode()
        return b"received %d bytes, sha256 %s\n" % (len(body), digest)

    def command(self) -> list[str]:
        return [self.binary, str(SCRIPT), str(self.directory / "node.json")]

    def write_config(self) -> None:
        config = {
            **self.ports,
            "cert": str(self.cert_file),
            "key": str(self.key_file),
            "root": str(self.html),
            "keepaliveRequests": self.keepalive_requests,
            "idleTimeoutMs": round(self.idle_timeout * 1000),
            "maxConcurrentStreams": MAX_CONCURRENT_STREAMS,
        }
        (self.directory / "node.json").write_text(json.dumps(config))
