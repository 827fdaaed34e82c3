"""The code examples of README.md and docs/: found, pointed at loopback, run.

Theory of operation: every fenced ```` ```python ```` block of the Markdown
files is an example. HTML comments on the lines right above its fence say how
to run it (a directive that is not followed by a python block is an error):

- ``<!-- not-run: REASON -->``: a fragment, counted and skipped; the reason
  is required.
- ``<!-- server: h2 -->``: the example hosts are HTTP/2 servers (h2c for
  ``http://``, TLS with ALPN ``h2`` for ``https://``) instead of HTTP/1.1 ones.
- ``<!-- runtimes: asyncio trio -->``: an example written with
  ``asyncio.run(main())`` runs under trio too (``trio.run(main)``).

Otherwise an example runs on the runtime it is written for: ``trio.run(``
means trio, ``asyncio.run(`` asyncio, anything else threads.

Examples name made-up hosts (``example.org``, ``proxy.example``, ...).
``point_at`` rewrites every URL's host and port to the local server that
stands for it, and refuses an example in which any URL is left whose host is
not a loopback address: an example never reaches the internet because of a
host nobody mapped. The runner (``RUNNER``) adds a second guard in the
example's process, refusing every connection and name lookup beyond
loopback, so a host built in code (not a URL literal) fails too.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
RUNTIMES = ("sync", "asyncio", "trio")

_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*([a-z-]+)\s*:\s*(.*?)\s*-->\s*$")
# scheme://[userinfo@]host[:port]; the host may be an IPv6 literal.
URL = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?:(?P<userinfo>[^\s/@\"'`]*)@)?"
    r"(?P<host>\[[0-9a-fA-F:.]*\]|[^\s/:\"'`?#\[\]]+)(?::(?P<port>\d+))?"
)
_ASYNCIO_MAIN = "asyncio.run(main())"


@dataclasses.dataclass(frozen=True)
class Example:
    """One python block: where it is, its code and how to run it."""

    path: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    code: str
    not_run: str | None = None
    server: str = "http1"  # or "h2"
    runtimes: tuple[str, ...] = ("sync",)

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}"

    def source_for(self, runtime: str) -> str:
        """The code to run on ``runtime`` (one of ``self.runtimes``)."""
        if runtime == "trio" and "trio.run(" not in self.code:
            return self.code.replace(_ASYNCIO_MAIN, "import trio\n\ntrio.run(main)")
        return self.code


def markdown_files(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """README.md and every page under docs/, in a stable order."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def extract(path: pathlib.Path, root: pathlib.Path = ROOT) -> list[Example]:
    """Every python block of ``path``, with its directives applied.

    Raises ``ValueError`` for an unknown directive, a directive not followed
    by a python block, a ``not-run`` without a reason, an unclosed fence, or
    ``runtimes: ... trio`` on a block without ``asyncio.run(main())``.
    """
    relative = path.relative_to(root).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    examples: list[Example] = []
    directives: dict[str, str] = {}
    directive_line = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        where = f"{relative}:{index + 1}"
        directive = _DIRECTIVE.match(line.strip())
        fence = _FENCE.match(line.strip())
        if directive:
            key, value = directive.groups()
            if key not in ("not-run", "server", "runtimes"):
                raise ValueError(f"{where}: unknown directive {key!r}")
            directives[key] = value
            directive_line = directive_line or index + 1
            index += 1
            continue
        if fence is None:
            if directives:
                raise ValueError(f"{relative}:{directive_line}: a directive not above a block")
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"{where}: a code block that is never closed")
        if fence.group(1) in ("python", "py"):
            examples.append(
                _example(relative, index + 1, "\n".join(lines[index + 1 : end]), directives)
            )
        elif directives:
            raise ValueError(f"{relative}:{directive_line}: a directive above a non-python block")
        directives = {}
        directive_line = 0
        index = end + 1
    if directives:
        raise ValueError(f"{relative}:{directive_line}: a directive at the end of the file")
    return examples


def _example(path: str, line: int, code: str, directives: dict[str, str]) -> Example:
    where = f"{path}:{line}"
    not_run = directives.get("not-run")
    if not_run is not None and not not_run:
        raise ValueError(f"{where}: not-run needs a reason")
    server = directives.get("server", "http1")
    if server not in ("http1", "h2"):
        raise ValueError(f"{where}: unknown server {server!r}")
    if "trio.run(" in code:
        runtimes: tuple[str, ...] = ("trio",)
    elif "asyncio.run(" in code:
        runtimes = ("asyncio",)
    else:
        runtimes = ("sync",)
    wanted = tuple(directives.get("runtimes", " ".join(runtimes)).split())
    if not set(wanted) <= set(RUNTIMES):
        raise ValueError(f"{where}: unknown runtime in {wanted}")
    if "trio" in wanted and runtimes != ("trio",) and _ASYNCIO_MAIN not in code:
        raise ValueError(f"{where}: runs under trio only when written for it or {_ASYNCIO_MAIN}")
    if "sync" in wanted and runtimes != ("sync",):
        raise ValueError(f"{where}: an async example cannot run on threads")
    return Example(path, line, code, not_run, server, wanted)


def all_examples(root: pathlib.Path = ROOT) -> list[Example]:
    return [example for path in markdown_files(root) for example in extract(path, root)]


def point_at(code: str, hosts: dict[str, dict[str, str]]) -> str:
    """``code`` with every URL's host (and port) replaced by the address that
    ``hosts[host][scheme]`` (or ``hosts[host]["*"]``) gives, e.g.
    ``{"example.org": {"http": "127.0.0.1:8080", "https": "127.0.0.1:8443"}}``.

    Raises ``ValueError`` naming every URL left whose host is not loopback.
    """

    def replace(match: re.Match[str]) -> str:
        by_scheme = hosts.get(match["host"].lower())
        if by_scheme is None:
            return match[0]
        address = by_scheme.get(match["scheme"], by_scheme.get("*"))
        if address is None:
            return match[0]
        userinfo = f"{match['userinfo']}@" if match["userinfo"] is not None else ""
        return f"{match['scheme']}://{userinfo}{address}"

    pointed = URL.sub(replace, code)
    left = [m[0] for m in URL.finditer(pointed) if m["host"].lower() not in LOOPBACK]
    if left:
        raise ValueError(f"URLs not pointed at a local server: {', '.join(left)}")
    return pointed


# Run in the example's own process: ``python -c RUNNER example.py``.
RUNNER = """
import runpy, socket, sys

ALLOWED = {"127.0.0.1", "localhost", "::1", None}


def _check(host):
    if host not in ALLOWED:
        raise OSError(f"docs examples reach loopback only, not {host!r}")


_connect, _connect_ex, _getaddrinfo = (
    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
)


def connect(self, address):
    _check(address[0] if isinstance(address, tuple) else None)
    return _connect(self, address)


def connect_ex(self, address):
    _check(address[0] if isinstance(address, tuple) else None)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    _check(host.decode() if isinstance(host, bytes) else host)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (
    connect, connect_ex, getaddrinfo
)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
