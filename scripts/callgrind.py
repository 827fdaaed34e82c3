"""Count the instructions a command executes, with valgrind's callgrind tool.

Shared by the scripts that measure instructions per request
(``instructions_per_request.py``, ``instructions_compare.py``, ``h11_cost.py``):
each runs a scenario with N requests and with none, and divides the
difference by N.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence


def count_instructions(
    argv: Sequence[str],
    out: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run ``argv`` under callgrind (its output file ``out``) and return the
    instructions it executed; RuntimeError with the last line of its stderr if
    it failed."""
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=dict(env or os.environ)
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise RuntimeError(lines[-1][:100])
    with open(out, encoding="utf-8") as file:
        for line in file:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")
