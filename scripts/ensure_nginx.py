"""Make sure an ``nginx`` binary is available for the interop tests, if we can.

Theory of operation: the interop session (``nox -s interop``) runs this before
pytest. When ``nginx`` is already on ``PATH`` (or in ``/usr/sbin``, which a
non-login root shell may lack) nothing happens. Otherwise, when running as root
on a machine with ``apt-get`` (CI on a fresh Debian-like machine), it installs
the Debian ``nginx`` package, falling back to ``nginx-light``. It always exits
0: when no binary can be had, the interop fixture skips with a message saying
why, rather than this script failing the session.

The package's post-install script may start a system nginx on port 80; that is
harmless (the tests use their own ports on 127.0.0.1) but wasteful, so it is
stopped again when this script was the one that installed it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# Debian's nginx (bookworm: 1.22) has HTTP/2 and TLS; nginx-light is the
# smaller flavour on older releases and a transitional name on newer ones.
PACKAGES = ("nginx", "nginx-light")
# apt-get may wait on another apt process's lock; never longer than this.
APT_TIMEOUT = 600.0


def find_nginx() -> str | None:
    """The path of an nginx binary, or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def _apt(*args: str) -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("+ apt-get", *args, flush=True)
    try:
        result = subprocess.run(["apt-get", *args], env=env, timeout=APT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"apt-get failed: {exc}", flush=True)
        return False
    return result.returncode == 0


def _stop_system_nginx() -> None:
    # No systemd in a container: the post-install script starts nginx through
    # its init script, if at all. Either way, ask it to stop and ignore failures.
    for command in (["service", "nginx", "stop"], ["nginx", "-s", "quit"]):
        if shutil.which(command[0]) or shutil.which(command[0], path="/usr/sbin"):
            subprocess.run(command, check=False, capture_output=True, timeout=30)
            return


def install() -> str | None:
    """Install nginx with apt-get when possible; return the binary's path or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        print("ensure_nginx: not root, not installing nginx", flush=True)
        return None
    if shutil.which("apt-get") is None:
        print("ensure_nginx: no apt-get on this machine, not installing nginx", flush=True)
        return None
    if not _apt("update"):
        print("ensure_nginx: apt-get update failed; trying the cached package lists", flush=True)
    for package in PACKAGES:
        if _apt("install", "-y", "--no-install-recommends", package) and find_nginx():
            _stop_system_nginx()
            return find_nginx()
    return None


def main() -> int:
    path = find_nginx()
    if path is not None:
        print(f"ensure_nginx: found {path}", flush=True)
        return 0
    path = install()
    if path is None:
        print("ensure_nginx: no nginx available; the interop tests will be skipped", flush=True)
    else:
        print(f"ensure_nginx: installed {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
