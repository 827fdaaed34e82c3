"""Optional dependencies fail loudly: asking for HTTP/2 without h2 installed is an
``ImportError`` naming the extra when the pool or connection is built."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpool

ROOT = str(Path(httpool.__file__).resolve().parents[1])  # the httpool under test

# A None entry in sys.modules makes every import of h2 fail, as if it were not
# installed (in a child process, so that this one keeps its h2).
WITHOUT_H2 = textwrap.dedent(
    """
    import sys
    sys.modules["h2"] = None
    import httpool

    origin = httpool.Origin(b"https", b"example.com", 443)
    builders = {
        "ConnectionPool": lambda **kw: httpool.ConnectionPool(**kw),
        "AsyncConnectionPool": lambda **kw: httpool.AsyncConnectionPool(**kw),
        "HTTPConnection": lambda **kw: httpool.HTTPConnection(origin, **kw),
        "AsyncHTTPConnection": lambda **kw: httpool.AsyncHTTPConnection(origin, **kw),
        "HTTPProxy": lambda **kw: httpool.HTTPProxy("http://127.0.0.1:8080", **kw),
        "AsyncSOCKSProxy": lambda **kw: httpool.AsyncSOCKSProxy("socks5://127.0.0.1:1080", **kw),
    }
    for name, build in builders.items():
        build(http2=False)  # HTTP/1.1 needs no h2
        for http1 in (True, False):
            try:
                build(http1=http1, http2=True)
            except ImportError as exc:
                print(name, http1, exc)
            else:
                print(name, http1, "built without h2")
    """
)


def test_http2_without_h2_raises_import_error_naming_the_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_H2],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ROOT},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 12, done.stdout
    message = "http2=True needs the 'http2' extra (the h2 package): pip install 'httpool[http2]'"
    for line in lines:
        assert line.endswith(message), line
