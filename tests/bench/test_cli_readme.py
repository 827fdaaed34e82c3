"""The README's command-line examples run as written: each ``python3 -m httpool`` line of
its "The command line" section, and the main-job command of "On a fresh machine", in a
subprocess (``python3`` being this interpreter; the ``pip install`` lines are the test
environment's job). They need no server: without a URL the CLI starts its own.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys

import pytest

from tests.bench.test_cli import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def cli_lines(text: str) -> list[str]:
    """The ``python3 -m httpool`` commands of the ``sh`` blocks of ``text``, without comments."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for command in line.split("&&"):
                words = shlex.split(command, comments=True)
                if words[:3] == ["python3", "-m", "httpool"]:
                    commands.append(shlex.join(words))
    return commands


EXAMPLES = cli_lines(section("The command line"))


def test_the_section_has_examples() -> None:
    assert len(EXAMPLES) >= 8
    assert "python3 -m httpool bench --runtime trio" in EXAMPLES
    assert any(example.startswith("python3 -m httpool get") for example in EXAMPLES)


def run(command: str) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    if "trio" in words and importlib.util.find_spec("trio") is None:
        pytest.skip("trio is not installed")
    if "--http2" in words and importlib.util.find_spec("h2") is None:
        pytest.skip("h2 is not installed")
    return subprocess.run(
        [sys.executable, *words[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("command", EXAMPLES)
def test_readme_example_runs(command: str) -> None:
    result = run(command)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout


def test_the_main_job_command() -> None:
    (command,) = cli_lines(section("On a fresh machine"))
    assert command == "python3 -m httpool bench -n 20000 -c 64"
    result = run(command)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "requests:    20000 sent, 20000 succeeded, 0 failed" in out
    assert re.search(r"throughput:  [\d,.]+ requests/s", out)
    assert "latency histogram" in out
    assert "result:" not in out  # no verdict: nothing went wrong
