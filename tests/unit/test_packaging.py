"""The package's metadata claims what CI proves: the Python classifiers in
pyproject.toml are exactly the versions ``nox -s tests`` runs on (PYTHONS in
noxfile.py), and ``requires-python`` starts at the oldest of them."""

from __future__ import annotations

import ast
import pathlib
import re

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
