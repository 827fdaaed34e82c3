"""The build step that writes the blocking twins of the hand-written async code.

Theory of operation: every ``.py`` file under ``httpool/_async`` and
``tests/_async`` is rewritten token by token with the ``unasync`` package
(``async``/``await`` dropped, names renamed) into the same path under
``_sync``, given a one-line banner naming its source, and formatted with ruff
under this project's configuration, so that the output depends only on the
source and on the pinned ruff version.

``python unasync.py`` writes every generated file and deletes ``_sync`` files
that no longer have a source. ``python unasync.py --check`` builds the same
output in memory, writes nothing, and exits 1 if any file on disk is stale,
missing or stray (each shown with a unified diff), or if an entry of
``REPLACEMENTS`` was never used: a rename nobody needs is a rename that will
one day hit something it should not. ``--root`` points both at another tree
(the tests use a temporary one).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.machinery
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import types
import typing
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "pyproject.toml"
DIRS = (("httpool/_async", "httpool/_sync"), ("tests/_async", "tests/_sync"))

# Renames on top of the unasync package's own table (``__aenter__``,
# ``AsyncIterator``, ``StopAsyncIteration``, ...). ``AsyncFoo`` -> ``Foo`` is a
# rule, not an entry, see ``_NameRule``. Add an entry together with its first
# use (``anext``, ``aiter_bytes``, ...): --check rejects entries no file needs.
REPLACEMENTS = {
    "_async": "_sync",
    "aclose": "close",
    "aconnect": "connect",
    "aiter_bytes": "iter_bytes",
    "aiter_stream": "iter_stream",
    "aread": "read",
    "asynccontextmanager": "contextmanager",
    "async_default_backend": "default_backend",
    "handle_async_request": "handle_request",
}


def _load_unasync_package() -> types.ModuleType:
    # This script is itself called unasync.py, and its directory comes first on
    # sys.path, so a plain `import unasync` would import this file again.
    path = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    found = importlib.machinery.PathFinder.find_spec("unasync", path)
    if found is None or found.origin is None:
        sys.exit("unasync.py: the 'unasync' package is missing (pip install -e . --group dev)")
    spec = importlib.util.spec_from_file_location(
        "_unasync_package",
        found.origin,
        submodule_search_locations=[str(Path(found.origin).parent)],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its relative imports look the package up here
    spec.loader.exec_module(module)
    return module


_unasync = _load_unasync_package()
_Rule: typing.Any = _unasync.Rule


class _NameRule(_Rule):  # type: ignore[misc]
    """unasync's rule, except that ``AsyncFoo`` becomes ``Foo``, not ``SyncFoo``."""

    def __init__(self) -> None:
        super().__init__("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)
        self.used: set[str] = set()

    def _unasync_name(self, name: str) -> str:
        if name in REPLACEMENTS:
            self.used.add(name)
        if name in self.token_replacements:
            replacement: str = self.token_replacements[name]
            return replacement
        if len(name) > 5 and name.startswith("Async") and name[5].isupper():
            return name[5:]
        return name


def _ruff(*args: str) -> None:
    command = [sys.executable, "-m", "ruff"]
    if importlib.util.find_spec("ruff") is None:
        exe = shutil.which("ruff")
        if exe is None:
            sys.exit("unasync.py: ruff is not installed (pip install -e . --group dev)")
        command = [exe]
    command += [*args, "--no-cache", "--quiet", "--config", str(CONFIG)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"unasync.py: {' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def format_all(code: dict[Path, str], root: Path) -> dict[Path, str]:
    """Return ``code`` sorted and formatted as ruff would at each path under ``root``."""
    # One ruff run over a scratch copy instead of two per file: far fewer
    # process starts. Files named on the command line are never excluded.
    with tempfile.TemporaryDirectory() as scratch:
        copies = {dest: Path(scratch) / dest.relative_to(root) for dest in code}
        for dest, copy in copies.items():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(code[dest], encoding="utf-8")
        if copies:
            names = [str(copy) for copy in copies.values()]
            _ruff("check", "--select", "I", "--fix-only", "--exit-zero", *names)
            _ruff("format", *names)
        return {dest: copy.read_text(encoding="utf-8") for dest, copy in copies.items()}


def build(root: Path, rule: _NameRule) -> tuple[dict[Path, str], set[Path]]:
    """Return the expected generated files and the ``.py`` files now in the _sync dirs."""
    code: dict[Path, str] = {}
    present: set[Path] = set()
    for from_dir, to_dir in DIRS:
        for source in sorted((root / from_dir).rglob("*.py")):
            rel = source.relative_to(root / from_dir)
            tokens = _unasync.tokenize_rt.src_to_tokens(source.read_text(encoding="utf-8"))
            text: str = _unasync.tokenize_rt.tokens_to_src(rule._unasync_tokens(tokens))
            banner = f"# GENERATED by unasync.py from {from_dir}/{rel.as_posix()}; do not edit.\n"
            code[root / to_dir / rel] = banner + text
        present.update((root / to_dir).rglob("*.py"))
    return format_all(code, root), present


def check(root: Path, expected: dict[Path, str], present: set[Path]) -> int:
    """Print every difference between ``expected`` and the tree; return how many."""
    problems = 0
    for dest in sorted(expected.keys() | present):
        rel = dest.relative_to(root).as_posix()
        want = expected.get(dest)
        have = dest.read_text(encoding="utf-8") if dest in present else None
        if want == have:
            continue
        problems += 1
        if have is None:
            label, old, new = "missing", "/dev/null", f"b/{rel}"
        elif want is None:
            label, old, new = "stray (no source in _async)", f"a/{rel}", "/dev/null"
        else:
            label, old, new = "stale", f"a/{rel}", f"b/{rel}"
        diff = difflib.unified_diff(
            (have or "").splitlines(keepends=True), (want or "").splitlines(keepends=True), old, new
        )
        print(f"{label}: {rel}\n{''.join(diff)}")
    return problems


def write(root: Path, expected: dict[Path, str], present: set[Path]) -> None:
    for dest, text in expected.items():
        if dest not in present or dest.read_text(encoding="utf-8") != text:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
            print(f"wrote {dest.relative_to(root).as_posix()}")
    for stray in sorted(present - expected.keys()):
        stray.unlink()
        print(f"deleted {stray.relative_to(root).as_posix()} (no source in _async)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the _sync trees from the _async ones.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--root", type=Path, default=HERE, help="tree to work on")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    rule = _NameRule()
    expected, present = build(root, rule)
    unused = sorted(REPLACEMENTS.keys() - rule.used)
    if not args.check:
        write(root, expected, present)
        if unused:
            print(f"warning: REPLACEMENTS entries never used: {', '.join(unused)}", file=sys.stderr)
        return 0
    failed = False
    if check(root, expected, present):
        print("unasync.py --check: generated files are out of date; run `python unasync.py`.")
        failed = True
    if unused:
        print(f"unasync.py --check: REPLACEMENTS entries never used: {', '.join(unused)}")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
