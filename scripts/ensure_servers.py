"""Make sure the Debian-packaged servers of the interop matrix are installed, if we can.

Theory of operation: ``nox -s interop`` runs this before pytest. For every server the
tests run from a Debian package (``PACKAGES``: binary -> package), it looks for the binary
on PATH and in the sbin directories a non-login root shell may lack. When some are missing
and this runs as root on a machine with ``apt-get`` (CI on a fresh Debian machine), it runs
``apt-get update`` once and one ``apt-get install -y`` for all the missing packages.

No system service is started: the packages' post-install scripts would start nginx and
Apache on port 80, so while installing, a temporary ``/usr/sbin/policy-rc.d`` (the Debian
hook for exactly this, see invoke-rc.d(8)) forbids it, unless the machine has one already.
The tests run every server themselves, on free loopback ports.

Exit status: 0 when every binary is there afterwards. Otherwise 1 under ``CI=true`` (CI
must run the whole matrix) and 0 elsewhere, where the tests of a missing server skip and
say why. hypercorn comes from PyPI (the nox session installs it), not from here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Binary (or file) -> Debian package. tinyproxy and danted are the proxies the proxy
# tests use.
PACKAGES = {
    "nginx": "nginx",
    "apache2": "apache2",
    "h2o": "h2o",
    "caddy": "caddy",
    "node": "nodejs",
    "tinyproxy": "tinyproxy",
    "danted": "dante-server",
    # nginx's stream module: the TLS front of the https:// proxy interop tests.
    "/usr/lib/nginx/modules/ngx_stream_module.so": "libnginx-mod-stream",
}
# apt-get may wait on another apt process's lock; never longer than this.
APT_TIMEOUT = 900.0
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def find(binary: str) -> str | None:
    if binary.startswith("/"):  # a file, not a command
        return binary if Path(binary).exists() else None
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin:/sbin")


def missing() -> list[str]:
    return [binary for binary in PACKAGES if find(binary) is None]


def _apt(*args: str) -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("+ apt-get", *args, flush=True)
    started = time.monotonic()
    try:
        result = subprocess.run(["apt-get", *args], env=env, timeout=APT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"apt-get failed: {exc}", flush=True)
        return False
    print(f"  ({time.monotonic() - started:.1f} s, exit {result.returncode})", flush=True)
    return result.returncode == 0


def install(binaries: list[str]) -> None:
    """Install the packages of ``binaries`` with apt-get, without starting services."""
    packages = [PACKAGES[binary] for binary in binaries]
    own_policy = not POLICY_RC_D.exists()
    if own_policy:
        POLICY_RC_D.write_text(
            "#!/bin/sh\n# Written by httpool's scripts/ensure_servers.py.\nexit 101\n"
        )
        POLICY_RC_D.chmod(0o755)
    try:
        if not _apt("update"):
            print("ensure_servers: apt-get update failed; trying the cached lists", flush=True)
        _apt("install", "-y", "--no-install-recommends", *packages)
    finally:
        if own_policy:
            POLICY_RC_D.unlink(missing_ok=True)


def main() -> int:
    absent = missing()
    if absent:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            print(f"ensure_servers: not root, not installing {absent}", flush=True)
        elif shutil.which("apt-get") is None:
            print(f"ensure_servers: no apt-get here, not installing {absent}", flush=True)
        else:
            install(absent)
    for binary in PACKAGES:
        print(f"ensure_servers: {binary:10} {find(binary) or 'MISSING'}", flush=True)
    absent = missing()
    if not absent:
        return 0
    packages = " ".join(PACKAGES[binary] for binary in absent)
    print(
        f"ensure_servers: missing {absent}; their interop tests will be skipped. "
        f"Install them with `apt-get install {packages}` (Debian) as root.",
        flush=True,
    )
    return 1 if os.environ.get("CI", "").lower() in ("true", "1", "yes") else 0


if __name__ == "__main__":
    sys.exit(main())
