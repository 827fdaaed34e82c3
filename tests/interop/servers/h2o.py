"""h2o: HTTP/1.1 and h2c by prior knowledge on one port (it sniffs the HTTP/2 preface), TLS
with ALPN ``h2`` and ``http/1.1``.

``POST /upload`` is an mruby handler (Debian's h2o is built with mruby) that reads the whole
body and answers its length. h2o has no per-connection request limit, so the matrix's
keep-alive-limit case does not apply to it; ``http1-request-timeout`` and
``http2-idle-timeout`` (whole seconds) close idle connections.
"""

from __future__ import annotations

import math
import os
import re
import subprocess

from .base import MAX_CONCURRENT_STREAMS, Server, ServerUnavailable, which

UPLOAD_MRUBY = """\
Proc.new do |env|
  body = env["rack.input"].read
  [200, {"content-type" => "text/plain"}, ["received #{body.bytesize} bytes\\n"]]
end
"""


class H2O(Server):
    name = "h2o"
    port_names = ("http", "https")
    request_limit_protocols = ()

    def find_binary(self) -> str:
        found = which("h2o")
        if found is None:
            raise ServerUnavailable("no h2o binary on PATH")
        return found

    def read_version(self) -> str:
        result = subprocess.run(
            [self.binary, "-v"], capture_output=True, text=True, timeout=30, check=False
        )
        match = re.search(r"h2o version (\S+)", result.stdout + result.stderr)
        if match is None:
            raise ServerUnavailable(f"cannot read the version of {self.binary}")
        if "mruby: YES" not in result.stdout + result.stderr:
            raise ServerUnavailable(f"{self.binary} was built without mruby")
        return match.group(1)

    def upload_reply(self, body: bytes) -> bytes:
        return b"received %d bytes\n" % len(body)

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.directory / "h2o.conf")]

    def write_config(self) -> None:
        (self.directory / "upload.rb").write_text(UPLOAD_MRUBY)
        idle = max(1, math.ceil(self.idle_timeout))
        # Started as root, h2o would switch to "nobody"; stay root like the parent.
        user = "user: root\n" if os.geteuid() == 0 else ""
        text = f"""\
# Written by tests/interop/servers/h2o.py for h2o {self.version}.
{user}pid-file: {self.directory / "h2o.pid"}
error-log: {self.error_log}
num-threads: 2
http1-request-timeout: {idle}
http2-idle-timeout: {idle}
http2-max-concurrent-requests-per-connection: {MAX_CONCURRENT_STREAMS}
limit-request-body: 209715200
listen:
  host: 127.0.0.1
  port: {self.ports["http"]}
listen:
  host: 127.0.0.1
  port: {self.ports["https"]}
  ssl:
    certificate-file: {self.cert_file}
    key-file: {self.key_file}
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /upload:
        mruby.handler-file: {self.directory / "upload.rb"}
      /:
        file.dir: {self.html}
"""
        (self.directory / "h2o.conf").write_text(text)
