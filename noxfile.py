"""The sessions CI and developers run: ``nox`` alone runs the tests.

``tests`` runs on every supported Python that is installed (``tests-3.10``
... ``tests-3.13``); under ``CI=true`` one that cannot be found fails the
run. The other sessions run on the interpreter that runs nox, so a machine
with a single python3 (any version >= 3.10) runs them all.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

import nox

# The versions httpool supports; the classifiers in pyproject.toml list the
# same ones, and CI proves each.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# Every version gets the whole suite; the interpreter running nox gets it
# under coverage (coverage is about httpool's code, not the interpreter's).
# Nox on an unsupported Python: the newest one gets the coverage run.
RUNNING = f"{sys.version_info[0]}.{sys.version_info[1]}"
COVERAGE_ON = RUNNING if RUNNING in PYTHONS else PYTHONS[-1]
# One other version also runs the protocol tests with the HTTP/1.1 fast path
# switched off (--h11-only, tests/conftest.py): every test passes on both paths.
H11_ONLY_ON = PYTHONS[0] if PYTHONS[0] != COVERAGE_ON else PYTHONS[-1]
# pytest-xdist workers. The suite mostly waits (servers, timeouts, sleeps), so
# more workers than cores pay: on 2 cores the whole suite takes about 1.5
# minutes with 4 workers against 4 to 5 with one, which is what lets CI run
# all of it on all four versions within its 20 minutes. HTTPOOL_TEST_WORKERS=0
# runs it in one process (pytest-xdist's "-n 0").
WORKERS = os.environ.get("HTTPOOL_TEST_WORKERS", "4")

# nox.project.dependency_groups (2025.02.09) reads the dev tools from pyproject.toml.
nox.needs_version = ">=2025.2.9"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
# A developer's `nox -s tests` skips the versions that are not installed; CI
# fails on them, since a version that silently did not run proves nothing.
nox.options.error_on_missing_interpreters = os.environ.get("CI", "").lower() in {
    "1",
    "true",
    "yes",
}


def _answers(command: str) -> bool:
    """Whether ``command`` is on PATH and runs (a pyenv shim of a version
    that is not active is on PATH but fails)."""
    if shutil.which(command) is None:
        return False
    try:
        done = subprocess.run([command, "-c", ""], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _find_pyenv_pythons() -> None:
    """Put pyenv's interpreters of PYTHONS on PATH, for the versions whose
    ``pythonX.Y`` does not answer.

    pyenv's shims answer only for its active versions (``PYENV_VERSION``, a
    ``.python-version`` file, the global one), and CI's environment makes
    none of the others active. So the newest ``X.Y.Z`` under
    ``$PYENV_ROOT/versions`` (``~/.pyenv`` by default) has its ``bin`` put in
    front of PATH, in this process only: nox finds ``pythonX.Y`` there. (Its
    ``python3`` comes first too, for commands nox runs outside a session's
    virtualenv; the sessions run their own.)
    """
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for version in PYTHONS:
        if _answers(f"python{version}"):
            continue
        found: list[tuple[int, str]] = []
        for path in glob.glob(os.path.join(root, "versions", f"{version}.*")):
            patch = re.fullmatch(re.escape(version) + r"\.(\d+)", os.path.basename(path))
            binary = os.path.join(path, "bin", f"python{version}")
            if patch and os.access(binary, os.X_OK):
                found.append((int(patch.group(1)), os.path.dirname(binary)))
        if found:
            os.environ["PATH"] = max(found)[1] + os.pathsep + os.environ.get("PATH", "")


_find_pyenv_pythons()


def _dependency_group(name: str) -> tuple[str, ...]:
    """The requirements of a PEP 735 dependency group of pyproject.toml.

    Read by nox, not by ``pip install --group``, so that any pip in a session's
    virtualenv will do (``--group`` needs pip 25.1)."""
    return nox.project.dependency_groups(nox.project.load_toml("pyproject.toml"), name)


def _install(session: nox.Session, group: str = "dev") -> None:
    """httpool, editable, and the dev tools (the ``dev`` dependency group)."""
    session.install("-e", ".", *_dependency_group(group))


def _pytest(
    session: nox.Session, *args: str, coverage: bool = False, workers: str = WORKERS
) -> None:
    """Install the package with its dev tools, then run pytest with ``args``
    on ``workers`` processes (pytest-cov gathers coverage from all of them)."""
    _install(session)
    options = ["-n", workers]
    if coverage:
        options += ["--cov", "--cov-report=term-missing:skip-covered"]
        if session.posargs:
            # A chosen subset covers less: the floor (fail_under) is the whole suite's.
            options.append("--cov-fail-under=0")
    session.run("python", "-m", "pytest", *options, *args, *session.posargs)
    if coverage and not session.posargs:
        # The floor, enforced by coverage itself: pytest-cov printed "FAIL Required
        # test coverage" and still exited 0 in one CI run (89.53 % against 90).
        session.run("python", "-m", "coverage", "report", "--format=total")


# Never downloaded: a Python nox fetched is not the one the machine has.
@nox.session(python=PYTHONS, download_python="never")
def tests(session: nox.Session) -> None:
    """The whole test suite (not the benchmarks or interop) on each supported
    Python, under coverage on the one running nox; on one other, the protocol
    tests once more with h11 alone (the HTTP/1.1 fast path off)."""
    _pytest(
        session,
        "--ignore=tests/benchmarks",
        "--ignore=tests/interop",
        coverage=session.python == COVERAGE_ON,
    )
    if session.python == H11_ONLY_ON:
        session.run(
            "python",
            "-m",
            "pytest",
            "-n",
            WORKERS,
            "--h11-only",
            "tests/_async",
            "tests/_sync",
            "tests/runtime",
            "tests/unit/test_http11_fast.py",
            "tests/unit/test_http11_fast_diff.py",
            *session.posargs,
        )


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks; their numbers land in .benchmarks/bench.json."""
    os.makedirs(".benchmarks", exist_ok=True)
    _pytest(
        session,
        "tests/benchmarks",
        "--benchmark-only",
        "--benchmark-json=.benchmarks/bench.json",
        workers="0",  # pytest-benchmark measures nothing under xdist
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
    session.run("mypy", "--strict", "httpool", "unasync.py", "noxfile.py", "tests")


@nox.session
def unasync(session: nox.Session) -> None:
    """Fail if any generated _sync file differs from what unasync.py would write."""
    _install(session)
    session.run("python", "unasync.py", "--check")


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel as PyPI would get them, and prove them.

    ``python -m build`` makes the sdist, then the wheel from the unpacked
    sdist (so the sdist is proved to build on its own); ``twine check
    --strict`` checks both, description included. The wheel must hold the
    whole package (``httpool/``, ``py.typed``, the ``httpool`` command's
    ``_bench``) and its metadata and nothing else (no tests, scripts or
    caches); the metadata must carry the one version of ``httpool/_version.py``,
    the MIT licence and PYPI.md as description, and no dev extra. Then the
    wheel goes into a new virtualenv without extras (h11 only), where httpool
    imports from there, sends requests to a server on 127.0.0.1 on threads
    and on asyncio, and ``httpool bench`` runs against its embedded server.
    Needs the network only for PyPI.
    """
    import email.parser
    import tarfile
    import zipfile

    session.install(*_dependency_group("build"))
    tmp = os.path.abspath(session.create_tmp())
    dist = os.path.join(tmp, "dist")
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", dist, ".")
    wheels = glob.glob(os.path.join(dist, "*.whl"))
    sdists = glob.glob(os.path.join(dist, "*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        session.error(f"expected one wheel and one sdist in {dist}: {os.listdir(dist)}")
    session.run("twine", "check", "--strict", wheels[0], sdists[0])

    with open("httpool/_version.py", encoding="utf-8") as file:
        found = re.search(r'^__version__ = "([^"]+)"$', file.read(), re.MULTILINE)
    if found is None:
        session.error("no __version__ in httpool/_version.py")
    version = found[1]
    problems: list[str] = []

    info = f"httpool-{version}.dist-info/"
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        metadata = email.parser.Parser().parsestr(wheel.read(info + "METADATA").decode())
    sources = {
        path.replace(os.sep, "/")
        for path in glob.glob("httpool/**/*.py", recursive=True)
        if "__pycache__" not in path
    }
    problems += [f"wheel lacks {name}" for name in sorted(sources - names)]
    wanted = ["httpool/py.typed", info + "licenses/LICENSE", info + "entry_points.txt"]
    problems += [f"wheel lacks {name}" for name in wanted if name not in names]
    problems += [
        f"wheel holds {name}"
        for name in sorted(names)
        if not name.startswith(("httpool/", info))
        or any(part in name for part in ("__pycache__", "/tests/", "/test_", "conftest"))
        or name.endswith((".pyc", ".pyo"))
        or (name.startswith("httpool/") and not name.endswith((".py", "/py.typed")))
    ]
    with open("PYPI.md", encoding="utf-8") as file:
        description = file.read()
    expected = {
        "Name": "httpool",
        "Version": version,
        "License-Expression": "MIT",
        "License-File": "LICENSE",
        "Description-Content-Type": "text/markdown",
    }
    for field, value in expected.items():
        if metadata.get(field) != value:
            problems.append(f"METADATA {field}: {metadata.get(field)!r}, expected {value!r}")
    if str(metadata.get_payload()).strip() != description.strip():
        problems.append("METADATA's description is not PYPI.md")
    if "pip install -e" in description:
        problems.append("PYPI.md tells users to install from a source tree")
    extras = set(metadata.get_all("Provides-Extra") or [])
    problems += [f"published extra {name!r}" for name in sorted(extras & {"dev", "interop"})]
    required = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    if [r.split(">")[0].split("<")[0].strip() for r in required] != ["h11"]:
        problems.append(f"required dependencies beyond h11: {required}")

    top = f"httpool-{version}/"
    with tarfile.open(sdists[0]) as sdist:
        members = set(sdist.getnames())
    for name in ("PKG-INFO", "pyproject.toml", "LICENSE", "PYPI.md", "httpool/py.typed"):
        if top + name not in members:
            problems.append(f"sdist lacks {name}")
    problems += [
        f"sdist holds {name}"
        for name in sorted(members)
        if not name.startswith(top)
        or any(part in name for part in ("/.git/", "/.nox/", "/dist/", "__pycache__", ".pyc"))
    ]
    if problems:
        session.error("the distributions are wrong:\n  " + "\n  ".join(problems))

    # A clean virtualenv with the wheel and h11, nothing else; run from outside the
    # source tree (and isolated, -I) so that the tree's httpool cannot be imported.
    venv = os.path.join(tmp, "clean-venv")
    session.run("python", "-m", "venv", "--clear", venv)
    scripts = os.path.join(venv, "Scripts" if sys.platform == "win32" else "bin")
    python = os.path.join(scripts, "python")
    session.run(python, "-I", "-m", "pip", "install", "--quiet", wheels[0], external=True)
    check = """
import asyncio, importlib.metadata, importlib.util, socket, sys, threading
import httpool
assert httpool.__file__.startswith(sys.prefix), httpool.__file__
assert importlib.metadata.version("httpool") == httpool.__version__ == sys.argv[1]
for name in ("h2", "trio", "socksio", "httpx", "idna"):
    assert importlib.util.find_spec(name) is None, name + " is installed"
for name in httpool.__all__:
    try:
        value = getattr(httpool, name)
    except ImportError as exc:  # a name of an extra that is not installed
        assert "pip install httpool[" in str(exc), exc
        continue
    if isinstance(value, type):
        assert value.__module__ == "httpool", name
try:
    httpool.ConnectionPool(http2=True)
except ImportError as exc:
    assert "httpool[http2]" in str(exc), exc
else:
    raise AssertionError("http2=True worked without h2")
RESPONSE = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok"
listener = socket.create_server(("127.0.0.1", 0))
def serve():
    while True:
        connection, _ = listener.accept()
        with connection:
            head = b""
            while b"\\r\\n\\r\\n" not in head:
                head += connection.recv(65536)
            connection.sendall(RESPONSE)
threading.Thread(target=serve, daemon=True).start()
url = "http://127.0.0.1:%d/" % listener.getsockname()[1]
with httpool.ConnectionPool() as pool:
    response = pool.request("GET", url, extensions={"timeout": {"connect": 10, "read": 10}})
    assert (response.status, response.content) == (200, b"ok"), response
async def main():
    async with httpool.AsyncConnectionPool() as pool:
        response = await pool.request("GET", url, extensions={"timeout": {"read": 10}})
        assert (response.status, response.content) == (200, b"ok"), response
asyncio.run(main())
print("httpool", httpool.__version__, "from the wheel: imports and serves requests on h11 alone")
"""
    home = os.getcwd()
    session.chdir(tmp)
    try:
        with open("check_wheel.py", "w", encoding="utf-8") as file:
            file.write(check)
        session.run(python, "-I", "check_wheel.py", version, external=True)
        session.run(python, "-I", "-m", "httpool", "--help", external=True, silent=True)
        command = os.path.join(scripts, "httpool")
        said = session.run(command, "--version", external=True, silent=True)
        if f"httpool {version}" not in str(said):
            session.error(f"httpool --version said {said!r}, not httpool {version}")
        session.run(command, "bench", "-n", "200", "-c", "4", external=True)
    finally:
        session.chdir(home)


@nox.session
def interop(session: nox.Session) -> None:
    """httpool against real servers (nginx, Apache httpd, h2o, Caddy, Node, hypercorn)
    over HTTP/1.1, TLS and HTTP/2 on threads, asyncio and trio; installs the Debian ones
    first when run as root. A missing server skips its tests, except under CI=true,
    where the installer and the tests fail instead."""
    session.run("python", "scripts/ensure_servers.py")
    _install(session, "interop")
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


@nox.session
def peer_suites(session: nox.Session) -> None:
    """httpx 0.28.1's and httpcore 1.0.9's own released test suites, unchanged,
    with ``httpcore`` aliased to httpool (not in CI): ``scripts/peer_suites.py``.
    ``nox -s peer_suites -- --compare -v`` also runs them on the real httpcore
    and lists what fails only on httpool; ``-- --suite httpcore -- -k http11``."""
    session.install("-e", ".[http2,trio]")
    session.install(
        # The suites' own test requirements (their requirements.txt, pinned as
        # they pin them where it changes outcomes: chardet).
        "httpx[brotli,cli,http2,socks,zstd]==0.28.1",
        "httpcore[http2,socks,trio]==1.0.9",
        "pytest",
        "pytest-trio",
        "pytest-httpbin",
        "anyio",
        "trio",
        "trustme",
        "uvicorn",
        "chardet==5.2.0",
        "cryptography",
    )
    session.run("python", "scripts/peer_suites.py", "--python", "python", *session.posargs)


# The dependencies whose internals httpool reaches (_h11.py, _h2.py, the trio
# backend), and hpack and hyperframe, which h2 pins for itself.
UPSTREAM = ["h11", "h2", "hpack", "hyperframe", "trio"]


@nox.session
def upstream(session: nox.Session) -> None:
    """The whole suite against the newest h11, h2, hpack, hyperframe and trio,
    pre-releases included and httpool's upper pins ignored (not in CI: a new
    release may break it, which is what it is for). Prints the versions tested."""
    _install(session)
    # Installed after httpool, by name, with -U: pip takes the newest release
    # even where httpool's pins exclude it (it warns, and that is the point);
    # --pre so that a release candidate that breaks an internal is seen before
    # its release. Their own dependencies move only if they need to.
    session.install("--upgrade", "--pre", *UPSTREAM)
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m, sys;"
        f" print('upstream:', ', '.join(f'{{n}} {{m.version(n)}}' for n in {UPSTREAM!r}),"
        " file=sys.stderr)",
    )
    session.run(
        "python",
        "-m",
        "pytest",
        "-n",
        WORKERS,
        "--ignore=tests/benchmarks",
        "--ignore=tests/interop",
        *session.posargs,
    )


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


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: ``mkdocs build --strict`` (any warning, a broken
    link or anchor included, fails) into build/docs/site, the examples of the
    README and the docs run (tests/runtime/test_docs_examples.py), then the
    built pages opened in Debian's headless Chromium (installed first when
    missing and run as root): console errors or requests to any other host
    fail; screenshots land in build/docs/screenshots."""
    _install(session)
    session.install(*_dependency_group("docs"))
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("python", "-m", "pytest", "tests/runtime/test_docs_examples.py", "-n", WORKERS)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium) and hasattr(os, "geteuid") and os.geteuid() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True)
    session.run(
        "python",
        "scripts/docs_browser_check.py",
        "build/docs/site",
        "build/docs/screenshots",
        "--chromium",
        chromium,
    )
