"""The sessions CI and developers run: ``nox`` alone runs the tests.

No session pins a Python version: each runs on the interpreter that runs nox,
so a machine with a single python3 (any version >= 3.10) runs them all.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
# CI=true would otherwise turn a missing interpreter into a failure.
nox.options.error_on_missing_interpreters = False


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


def _pytest(session: nox.Session, *args: str, coverage: bool = False) -> None:
    """Install the package with its dev extras, then run pytest with ``args``."""
    _install(session)
    if coverage:
        session.run("coverage", "run", "-m", "pytest", *args, *session.posargs)
        session.run("coverage", "report")
    else:
        session.run("python", "-m", "pytest", *args, *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite except the benchmarks, with a coverage report."""
    _pytest(session, "--ignore=tests/benchmarks", "--ignore=tests/interop", coverage=True)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks; their numbers land in .benchmarks/bench.json."""
    os.makedirs(".benchmarks", exist_ok=True)
    _pytest(
        session,
        "tests/benchmarks",
        "--benchmark-only",
        "--benchmark-json=.benchmarks/bench.json",
    )
    session.run("python", "scripts/bench_report.py", ".benchmarks/bench.json")


@nox.session
def lint(session: nox.Session) -> None:
    _install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    _install(session)
    session.install("nox")  # so that mypy can check this file
    session.run("mypy", "--strict", "httpool", "unasync.py", "noxfile.py")


@nox.session
def unasync(session: nox.Session) -> None:
    """Fail if any generated _sync file differs from what unasync.py would write."""
    _install(session)
    session.run("python", "unasync.py", "--check")


@nox.session
def interop(session: nox.Session) -> None:
    """httpool against real servers (nginx, Apache httpd, h2o, Caddy, Node, hypercorn)
    over HTTP/1.1, TLS and HTTP/2 on threads, asyncio and trio; installs the Debian ones
    first when run as root. A missing server skips its tests, except under CI=true,
    where the installer and the tests fail instead."""
    session.run("python", "scripts/ensure_servers.py")
    session.install("-e", ".[dev,interop]")
    session.run("python", "-m", "pytest", "tests/interop", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Mixed traffic on sync, asyncio and trio for 5 minutes (not in CI):
    fails on any invariant violation, unexpected failure or leaked fd.
    ``nox -s soak -- --duration 20`` for a quick try."""
    _install(session)
    session.run("python", "scripts/soak.py", "--duration", "300", *session.posargs)


@nox.session
def compare(session: nox.Session) -> None:
    """httpool against its peers on loopback (not in CI): ``scripts/compare.py``.
    The peers are installed in this session only, never as httpool dependencies.
    ``nox -s compare -- --rounds 3 --workloads asyncio_64,sync_seq`` for a subset."""
    _install_peers(session)
    session.run("python", "scripts/compare.py", *session.posargs)


@nox.session
def instructions(session: nox.Session) -> None:
    """Instructions per request, httpool against its peers, counted by valgrind
    (not in CI): ``scripts/instructions_compare.py``, the noise-free twin of
    ``compare``. ``nox -s instructions -- --nginx --workloads sync_seq,h2_64``."""
    _install_peers(session)
    session.run("python", "scripts/instructions_compare.py", *session.posargs)


def _install_peers(session: nox.Session) -> None:
    session.install("-e", ".[http2,trio]")
    session.install(
        "httpcore[http2,trio]",
        "httpcore2[asyncio,http2,trio]",
        "urllib3",
        "aiohttp",
        "httpx[http2]",
        "httpx2[http2]",
        "trustme",  # for --nginx (tests/interop/nginx.py)
    )
