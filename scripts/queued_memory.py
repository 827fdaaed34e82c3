"""Memory of an async pool holding many queued requests, measured with tracemalloc.

    python scripts/queued_memory.py [--requests 100000] [--runtime asyncio|trio|both]

The measurement itself (its theory of operation included) lives in
``tests/support/queued_memory.py``, which ``tests/runtime/test_resources.py``
runs with 10,000 requests to assert a bound; this script is its command line.
"""

from __future__ import annotations

import argparse
import os
import sys

# Runs from a checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.queued_memory import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runtime", choices=("asyncio", "trio", "both"), default="both")
    args = parser.parse_args()
    runtimes = ("asyncio", "trio") if args.runtime == "both" else (args.runtime,)
    print(f"{args.requests:,} requests queued on a pool of one connection (mock backend)")
    print("runtime  total MiB  bytes/queued request  of which a bare parked task  httpool's share")
    for runtime in runtimes:
        f = run(runtime, args.requests)
        print(
            f"{runtime:<8} {f.with_requests / 2**20:>9.1f} {f.per_request:>21.0f}"
            f" {f.bare_tasks / f.queued:>28.0f} {f.pool_share:>16.0f}"
        )


if __name__ == "__main__":
    main()
