"""The Python examples of PYPI.md (the description PyPI shows) run as written,
against the test HTTP server on 127.0.0.1 in place of example.org."""

from __future__ import annotations

import pathlib
import re

import pytest

from tests.support.http_server import HTTPServer

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = re.findall(r"```python\n(.*?)```", (ROOT / "PYPI.md").read_text(), re.S)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("source", EXAMPLES, ids=[f"example-{n}" for n in range(len(EXAMPLES))])
def test_example_runs(source: str, server: HTTPServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert "https://example.org/" in source
    code = compile(source.replace("https://example.org/", server.url + "/"), "PYPI.md", "exec")
    exec(code, {"__name__": "__main__"})
    assert capsys.readouterr().out.startswith(("200", "b'HTTP/1.1'"))
