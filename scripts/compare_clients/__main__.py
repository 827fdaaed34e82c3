"""Run one client on one workload and print its numbers as one JSON line.

Usage (``scripts/`` on ``sys.path``, as ``scripts/compare.py`` arranges):
``python -m compare_clients CLIENT WORKLOAD URL REQUESTS SECONDS``: at most
REQUESTS requests, and none started after SECONDS (the table shows rates).
With ``COMPARE_PROFILE=N`` in the environment the run is profiled (cProfile,
on CPU time, warm-up included) and the N functions with the most own time
are printed to stderr.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import typing

from compare_clients import CLIENTS, WORKLOADS
from compare_clients._harness import asyncio_spawn_all, run_async, run_sync, trio_spawn_all


def main(argv: list[str]) -> int:
    client, workload_name, url, count_text, seconds_text = argv
    module_name, library = CLIENTS[client]
    family: typing.Any = importlib.import_module(f"compare_clients.{module_name}")
    workload = WORKLOADS[workload_name]
    count, seconds = int(count_text), float(seconds_text)
    lib = library or client

    def open_async() -> typing.Any:
        return family.open_async(lib, url, workload)

    if workload.runtime == "sync":
        result = run_sync(family.open_sync(lib, url, workload), workload, count, seconds)
    elif workload.runtime == "asyncio":
        result = asyncio.run(run_async(open_async, workload, count, seconds, asyncio_spawn_all))
    else:
        import trio

        result = trio.run(run_async, open_async, workload, count, seconds, trio_spawn_all)
    print(json.dumps(result), flush=True)
    return 0


def profiled(argv: list[str], top: int) -> int:
    import cProfile
    import pstats
    import time

    profile = cProfile.Profile(time.process_time)
    status = profile.runcall(main, argv)
    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(top)
    return status


if __name__ == "__main__":
    top = os.environ.get("COMPARE_PROFILE")
    sys.exit(profiled(sys.argv[1:], int(top)) if top else main(sys.argv[1:]))
