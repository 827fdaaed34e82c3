"""Make sure the real proxies of the interop tests are installed, if we can.

Theory of operation: ``nox -s interop`` runs this before pytest. For each of
tinyproxy (``tinyproxy``), dante (``danted``, package ``dante-server``) and
nginx's stream module (``libnginx-mod-stream``, for the TLS front of the
https:// proxy tests) that is missing, it installs the Debian package when
running as root on a machine with ``apt-get``, then stops the system service
the package may have started (the tests start their own, on free loopback
ports). It always exits 0: whatever cannot be had, the tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

APT_TIMEOUT = 600.0
# package -> (the file that shows it is installed, the service its postinst may start)
PACKAGES = {
    "tinyproxy": ("tinyproxy", "tinyproxy"),
    "dante-server": ("danted", "danted"),
    "libnginx-mod-stream": ("/usr/lib/nginx/modules/ngx_stream_module.so", "nginx"),
}


def _installed(marker: str) -> bool:
    if marker.startswith("/"):
        return Path(marker).exists()
    return bool(shutil.which(marker) or shutil.which(marker, path="/usr/sbin:/usr/bin"))


def _run(*command: str) -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("+", *command, flush=True)
    try:
        result = subprocess.run(command, env=env, timeout=APT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"ensure_proxies: {exc}", flush=True)
        return False
    return result.returncode == 0


def main() -> int:
    missing = [name for name, (marker, _) in PACKAGES.items() if not _installed(marker)]
    if not missing:
        print("ensure_proxies: tinyproxy, danted and nginx's stream module found", flush=True)
        return 0
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"ensure_proxies: cannot install {missing} (not root or no apt-get)", flush=True)
        return 0
    _run("apt-get", "update")
    for name in missing:
        if _run("apt-get", "install", "-y", "--no-install-recommends", name):
            service = PACKAGES[name][1]
            subprocess.run(["service", service, "stop"], check=False, capture_output=True)
    still = [name for name, (marker, _) in PACKAGES.items() if not _installed(marker)]
    if still:
        print(f"ensure_proxies: still missing {still}; their tests will be skipped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
