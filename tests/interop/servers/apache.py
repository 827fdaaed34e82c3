"""Apache httpd with mod_http2 (event MPM): HTTP/1.1 and h2c by prior knowledge on one port
(``H2Direct``: it sniffs the HTTP/2 preface), TLS with ALPN ``h2`` and ``http/1.1``.

``POST /upload`` runs ``upload.lua`` (mod_lua), which reads the whole body and answers its
length and SHA-1 (mod_lua's ``r:sha1``). ``MaxKeepAliveRequests`` closes HTTP/1.1
connections (mod_http2 does not apply it to HTTP/2 sessions); ``KeepAliveTimeout`` (milliseconds
allowed) closes idle ones of both.

Apache will not serve requests as root: started as root it runs its workers as ``nobody``,
which reads the document root thanks to the directory's permissions (see ``base.py``).
"""

from __future__ import annotations

import grp
import hashlib
import os
import re
import subprocess
from pathlib import Path

from .base import H1, H1_TLS, MAX_CONCURRENT_STREAMS, Server, ServerUnavailable, which

MODULES = Path("/usr/lib/apache2/modules")
# mod_unixd, mod_log_config and mod_so are compiled into Debian's binary.
LOAD = (
    "mpm_event",
    "authz_core",
    "mime",
    "ssl",
    "socache_shmcb",
    "http2",
    "lua",
)

UPLOAD_LUA = """\
function handle(r)
    r.content_type = "text/plain"
    local body = r:requestbody()
    r:puts(string.format("received %d bytes, sha1 %s\\n", #body, r:sha1(body)))
    return apache2.OK
end
"""


class Apache(Server):
    name = "apache"
    port_names = ("http", "https")
    # mod_http2 ignores MaxKeepAliveRequests (its GOAWAY comes from child limits such
    # as MaxConnectionsPerChild, per process, not per connection).
    request_limit_protocols = (H1, H1_TLS)
    # mod_lua's r:requestbody() returns nil for a body without Content-Length.
    streamed_upload = False

    def find_binary(self) -> str:
        found = which("apache2") or which("httpd")
        if found is None:
            raise ServerUnavailable("no apache2 (httpd) binary on PATH or in /usr/sbin")
        missing = [m for m in LOAD if not (MODULES / f"mod_{m}.so").exists()]
        if missing:
            raise ServerUnavailable(f"Apache modules missing from {MODULES}: {missing}")
        return found

    def read_version(self) -> str:
        result = subprocess.run(
            [self.binary, "-v"], capture_output=True, text=True, timeout=30, check=False
        )
        match = re.search(r"Apache/(\S+)", result.stdout)
        if match is None:
            raise ServerUnavailable(f"cannot read the version of {self.binary}")
        return match.group(1)

    def upload_reply(self, body: bytes) -> bytes:
        return b"received %d bytes, sha1 %s\n" % (
            len(body),
            hashlib.sha1(body).hexdigest().encode(),
        )

    def command(self) -> list[str]:
        return [self.binary, "-d", str(self.directory), "-f", "httpd.conf", "-DFOREGROUND"]

    def environment(self) -> dict[str, str]:
        # Debian's apache2 reads no environment from our config; keep its locale quiet.
        return dict(os.environ, LANG="C")

    def write_config(self) -> None:
        (self.directory / "upload.lua").write_text(UPLOAD_LUA)
        (self.directory / "run").mkdir(exist_ok=True)
        loads = "".join(f"LoadModule {m}_module {MODULES}/mod_{m}.so\n" for m in LOAD)
        if os.geteuid() == 0:
            group = "nogroup"
            try:
                grp.getgrnam(group)
            except KeyError:
                group = "nobody"
            user = f"User nobody\nGroup {group}\n"
        else:
            user = ""
        idle_ms = round(self.idle_timeout * 1000)
        text = f"""\
# Written by tests/interop/servers/apache.py for Apache {self.version}.
ServerRoot {self.directory}
{loads}{user}ServerName 127.0.0.1
PidFile {self.directory / "run" / "httpd.pid"}
DefaultRuntimeDir {self.directory / "run"}
Mutex file:{self.directory / "run"} default
ErrorLog {self.error_log}
LogLevel warn
TypesConfig /dev/null
AddType text/plain .txt

StartServers 1
ServerLimit 2
ThreadsPerChild 64
MaxRequestWorkers 128
H2MaxSessionStreams {MAX_CONCURRENT_STREAMS}

KeepAlive On
MaxKeepAliveRequests {self.keepalive_requests}
KeepAliveTimeout {idle_ms}ms
LimitRequestBody 0

DocumentRoot {self.html}
<Directory />
    Require all granted
</Directory>
LuaMapHandler ^/upload$ {self.directory / "upload.lua"} handle

SSLSessionCache shmcb:{self.directory / "run" / "ssl_scache"}(512000)

Listen 127.0.0.1:{self.ports["http"]}
Listen 127.0.0.1:{self.ports["https"]}

<VirtualHost 127.0.0.1:{self.ports["http"]}>
    Protocols h2c http/1.1
    H2Direct on
</VirtualHost>

<VirtualHost 127.0.0.1:{self.ports["https"]}>
    Protocols h2 http/1.1
    SSLEngine on
    SSLCertificateFile {self.cert_file}
    SSLCertificateKeyFile {self.key_file}
</VirtualHost>
"""
        (self.directory / "httpd.conf").write_text(text)
