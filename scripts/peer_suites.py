"""Run httpx's and httpcore's own released test suites with ``httpcore`` aliased to httpool.

The measure of the drop-in promise: the suites run UNCHANGED, from the sdists on PyPI,
with one pytest plugin (written to a temporary directory outside their trees, loaded with
``-p``) that sets ``sys.modules["httpcore"] = httpool`` before either suite imports
anything. ``--real`` runs the same suites on the real httpcore, the baseline to compare
against; ``--compare`` runs both and lists the tests that pass on httpcore and fail on
httpool.

    python scripts/peer_suites.py                      # both suites, aliased
    python scripts/peer_suites.py --suite httpcore -- -k http11
    python scripts/peer_suites.py --compare            # what fails only on httpool

The suites need their own test dependencies (uvicorn, trustme, chardet 5, anyio,
pytest-trio, pytest-httpbin, ...), which ``nox -s peer_suites`` installs; ``--python``
picks another interpreter that has them (and httpx 0.28.1 and httpcore 1.0.9: httpcore's
own modules are never imported when aliased, but the baseline needs them). The sdists are
downloaded into ``--sdists`` when missing.

Nothing is sent anywhere but 127.0.0.1 / ::1: the tests that need the internet are
deselected by node id (``INTERNET``, with the reason), and a second plugin, loaded in
both runs, makes any other connection or name lookup fail at once (``socket.connect``
to a non-loopback address, ``getaddrinfo`` of anything but ``localhost`` or a loopback
literal raise ``OSError``), so a test that would reach out fails instead of leaking.

The figures last measured, and every test that passes on httpcore and fails on httpool
with its reason, are in README.md ("The drop-in promise, measured").
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUITES = {"httpx": "httpx-0.28.1", "httpcore": "httpcore-1.0.9"}

# Tests that need the internet, deselected (a node id prefix deselects every parameter).
INTERNET = {
    "httpx": {
        "tests/client/test_proxies.py::test_async_proxy_close": (
            "marked network: GET http://example.com (DNS, then the origin)"
        ),
        "tests/client/test_proxies.py::test_sync_proxy_close": (
            "marked network: GET http://example.com (DNS, then the origin)"
        ),
        "tests/test_timeouts.py::test_connect_timeout": (
            "marked network: connects to 10.255.255.1 to provoke a connect timeout"
        ),
    },
    "httpcore": {},
}

LOOPBACK_PLUGIN = '''\
"""Loaded with -p in every run: no connection and no name lookup leaves this host."""
import ipaddress
import socket

_LOCAL_NAMES = {None, b"", "", "localhost", b"localhost"}


def _loopback(host):
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    if host in _LOCAL_NAMES or _loopback(host):
        return _getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"peer_suites: no lookup of {host!r} (loopback only)")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        raise ConnectionRefusedError(f"peer_suites: no connection to {address!r} (loopback only)")


def connect(self, address):
    _check(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(self, address)
    return _connect_ex(self, address)


socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
'''

ALIAS_PLUGIN = '''\
"""Loaded with -p before the suite's conftest: httpcore is httpool from here on.

A finder first on sys.meta_path answers every later import of httpcore with
httpool too, so a test that drops httpcore from sys.modules and imports it
again (httpx's test_httpcore_lazy_loading) gets httpool, not the real one.
"""
import importlib.abc
import importlib.util
import sys

import httpool


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == "httpcore":
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return httpool

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Alias())
sys.modules["httpcore"] = httpool
'''


def ensure_sdist(sdists: pathlib.Path, name: str, python: str) -> pathlib.Path:
    tree = sdists / name
    if tree.is_dir():
        return tree
    archive = sdists / f"{name}.tar.gz"
    if not archive.exists():
        project, version = name.rsplit("-", 1)
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                *[f"{project}=={version}", "-d", str(sdists)],
            ],
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(sdists, filter="data")
    return tree


def run_suite(
    tree: pathlib.Path,
    python: str,
    *,
    real: bool,
    junit: pathlib.Path,
    log: pathlib.Path,
    extra: list[str],
) -> int:
    env = dict(os.environ)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        env.pop(var, None)
        env.pop(var.lower(), None)
    args = [python, "-m", "pytest", "-q", "--tb=line", "-p", "no:cacheprovider"]
    # A module that imports a name httpool lacks fails alone, not the whole run.
    args.append("--continue-on-collection-errors")
    args.append(f"--junitxml={junit}")
    for node in INTERNET[tree.name.rsplit("-", 1)[0]]:
        args.append(f"--deselect={node}")
    with tempfile.TemporaryDirectory() as shim:
        (pathlib.Path(shim) / "_loopback_only.py").write_text(LOOPBACK_PLUGIN)
        args += ["-p", "_loopback_only"]
        paths = [shim, env.get("PYTHONPATH", "")]
        if not real:
            (pathlib.Path(shim) / "_httpool_alias.py").write_text(ALIAS_PLUGIN)
            args += ["-p", "_httpool_alias"]
            paths.insert(1, str(ROOT))
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        with log.open("w") as out:
            proc = subprocess.run(
                [*args, "tests", *extra], cwd=tree, env=env, stdout=out, stderr=out
            )
    return proc.returncode


def outcomes(junit: pathlib.Path) -> tuple[dict[str, str], dict[str, str]]:
    """Test id -> passed / failed / error / skipped, and test id -> the failure's first
    line, from a JUnit XML report."""
    result: dict[str, str] = {}
    messages: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        state = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                state = {"failure": "failed"}.get(child.tag, child.tag)
                text = child.get("message") or child.text or ""
                messages[test_id] = " ".join(text.split())[:200]
        result[test_id] = state
    return result, messages


def summary(results: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for state in results.values():
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=[*SUITES, "both"], default="both")
    parser.add_argument("--python", default=sys.executable, help="runs the suites")
    parser.add_argument("--sdists", type=pathlib.Path, default=ROOT / ".peer_suites" / "sdists")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / ".peer_suites")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--real", action="store_true", help="run on the real httpcore")
    mode.add_argument("--compare", action="store_true", help="real and aliased; list the gap")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every failure")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    opts = parser.parse_args()

    opts.sdists.mkdir(parents=True, exist_ok=True)
    opts.out.mkdir(parents=True, exist_ok=True)
    suites = list(SUITES) if opts.suite == "both" else [opts.suite]
    status = 0
    for suite in suites:
        tree = ensure_sdist(opts.sdists, SUITES[suite], opts.python)
        runs = [True, False] if opts.compare else [opts.real]
        results: dict[bool, dict[str, str]] = {}
        for real in runs:
            name = f"{suite}-{'httpcore' if real else 'httpool'}"
            junit, log = opts.out / f"{name}.xml", opts.out / f"{name}.log"
            code = run_suite(
                tree, opts.python, real=real, junit=junit, log=log, extra=opts.pytest_args
            )
            status = status or (code if not real else 0)
            results[real], messages = outcomes(junit)
            label = "real httpcore" if real else "httpcore = httpool"
            print(f"== {suite} on {label}: {summary(results[real])} (log: {log})", flush=True)
            if opts.verbose:
                for test, message in sorted(messages.items()):
                    if results[real][test] != "skipped":
                        print(f"   {results[real][test]} {test}: {message}")
        if opts.compare:
            gap = sorted(
                test
                for test, state in results[False].items()
                if state in ("failed", "error") and results[True].get(test) == "passed"
            )
            print(f"== {suite}: {len(gap)} pass on httpcore and fail on httpool")
            for test in gap:
                print(f"   {test}")
    return status


if __name__ == "__main__":
    sys.exit(main())
