"""The package's metadata claims what CI proves: the Python classifiers in
pyproject.toml are exactly the versions ``nox -s tests`` runs on (PYTHONS in
noxfile.py), and ``requires-python`` starts at the oldest of them; the version
is written once; the console script names a function that exists."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import pathlib
import re

import pytest

import httpool

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _noxfile_pythons() -> list[str]:
    # Parsed, not imported: the test environment has no nox.
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [
            t.id for t in node.targets if isinstance(t, ast.Name)
        ] == ["PYTHONS"]:
            return list(ast.literal_eval(node.value))
    raise AssertionError("noxfile.py assigns no PYTHONS list")


def test_classifiers_list_exactly_the_pythons_ci_tests() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    pythons = _noxfile_pythons()
    assert classified == pythons
    oldest = min(pythons, key=lambda v: tuple(map(int, v.split("."))))
    assert f'requires-python = ">={oldest}"' in pyproject


def test_the_version_is_written_once() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'build-backend = "hatchling.build"' in pyproject
    assert re.search(r"^version\s*=", pyproject, re.MULTILINE) is None
    assert 'dynamic = ["version"]' in pyproject
    assert '[tool.hatch.version]\npath = "httpool/_version.py"' in pyproject
    # Hatch's default pattern for that file.
    source = (ROOT / "httpool" / "_version.py").read_text()
    pattern = r"""(?i)^(__version__|VERSION) *= *(['"])v?(?P<version>.+?)\2"""
    found = re.search(pattern, source, re.MULTILINE)
    assert found is not None and found["version"] == httpool.__version__


def test_installed_metadata_reports_the_version() -> None:
    try:
        installed = importlib.metadata.version("httpool")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("httpool is not installed, only importable")
    assert installed == httpool.__version__


def test_console_script_names_the_cli() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'^\[project\.scripts\]\nhttpool = "([\w.]+):(\w+)"$', pyproject, re.M)
    assert found is not None
    module = importlib.import_module(found[1])
    assert module.__name__ == "httpool._bench.cli" and callable(getattr(module, found[2]))


def _section(pyproject: str, name: str) -> str:
    """The text of one ``[name]`` table of pyproject.toml (parsed by hand: no
    tomllib on Python 3.10)."""
    found = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", pyproject, re.M | re.S)
    assert found is not None, name
    return found[1]


def test_the_licence_is_declared_once() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    project = _section(pyproject, "project")
    assert 'license = "MIT"\n' in project and 'license-files = ["LICENSE"]\n' in project
    # PEP 639: the expression replaces the licence classifiers.
    assert "License ::" not in pyproject
    assert '"/LICENSE"' in _section(pyproject, "tool.hatch.build.targets.sdist")


def test_dev_tools_are_a_dependency_group_not_an_extra() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = re.findall(r"^([\w-]+) = ", _section(pyproject, "project.optional-dependencies"), re.M)
    assert "dev" not in extras and "interop" not in extras
    groups = re.findall(r"^([\w-]+) = ", _section(pyproject, "dependency-groups"), re.M)
    assert {"dev", "interop", "build"} <= set(groups)
    for path in ("noxfile.py", "README.md", "unasync.py", ".ci/run"):
        assert "[dev" not in (ROOT / path).read_text(), path


def test_pypi_description_is_about_using_httpool() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'readme = "PYPI.md"' in _section(pyproject, "project")
    assert '"/PYPI.md"' in _section(pyproject, "tool.hatch.build.targets.sdist")
    description = (ROOT / "PYPI.md").read_text()
    assert "pip install httpool" in description and "pip install -e" not in description
    # PyPI cannot follow a link into the repository.
    links = re.findall(r"\]\(([^)]*)\)", description)
    assert all(link.startswith("https://") for link in links), links
