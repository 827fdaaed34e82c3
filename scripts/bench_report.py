"""Summarise a pytest-benchmark JSON file of the pool benchmarks.

Usage: python scripts/bench_report.py BENCHMARK.json

Prints one row per benchmark with its cost per request in microseconds, then
the ratios that say whether the pool does constant work per request:

- concurrency: the largest batch against the smallest (10,000 vs 10 on the
  mock backend with asyncio), per backend, runtime and number of origins;
- idle connections: 1,000 idle vs 10 idle, per runtime and layout.

A ratio near 1.0 is the goal; a ratio that grows with the batch or the
number of idle connections is a scan hidden somewhere in the pool. The input
comes from ``pytest tests/benchmarks --benchmark-only --benchmark-json=FILE``;
see ``tests/benchmarks/helpers.py`` for the ``extra_info`` fields read here.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from collections import defaultdict
from collections.abc import Sequence

Row = dict[str, typing.Any]


def load(path: str) -> list[Row]:
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    rows = []
    for bench in data.get("benchmarks", []):
        info = dict(bench.get("extra_info") or {})
        if "us_per_request" not in info:
            continue
        info["name"] = bench["name"]
        info["rounds"] = bench.get("stats", {}).get("rounds")
        rows.append(info)
    rows.sort(key=_order)
    return rows


def _order(row: Row) -> tuple[typing.Any, ...]:
    group = row.get("protocol", row.get("origins", row.get("layout", "")))
    size = row.get("batch", row.get("idle", 0))
    return (row.get("kind", ""), row.get("backend", ""), row.get("runtime", ""), str(group), size)


def scenario(row: Row) -> str:
    if row.get("kind") == "idle":
        return f"{row['idle']:,} idle, {row['layout']}"
    if row.get("kind") == "concurrent":
        return f"{row['batch']:,} concurrent, {row['origins']} origin(s)"
    if row.get("kind") == "protocol":
        return f"{row['batch']:,} concurrent, {row['protocol']}"
    return str(row["name"])


def table(rows: list[Row]) -> str:
    headers = ("backend", "runtime", "scenario", "us/request", "rounds")
    lines = [
        (
            str(row.get("backend", "?")),
            str(row.get("runtime", "?")),
            scenario(row),
            f"{row['us_per_request']:,.1f}",
            str(row.get("rounds", "?")),
        )
        for row in rows
    ]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *lines, strict=True)]
    numeric = {3, 4}

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [render(headers), render(["-" * width for width in widths])]
    out.extend(render(line) for line in lines)
    return "\n".join(out)


def ratios(rows: list[Row]) -> list[str]:
    """One line per scenario family: its biggest size against its smallest."""
    families: dict[tuple[str, ...], dict[int, float]] = defaultdict(dict)
    for row in rows:
        if row.get("kind") == "concurrent":
            origins = f"{row['origins']} origin(s)"
            key: tuple[str, ...] = ("concurrent", row["backend"], row["runtime"], origins)
            families[key][row["batch"]] = row["us_per_request"]
        elif row.get("kind") == "idle":
            key = ("idle", row["backend"], row["runtime"], row["layout"])
            families[key][row["idle"]] = row["us_per_request"]
    lines = []
    for key, by_size in sorted(families.items()):
        if len(by_size) < 2:
            continue
        small, big = min(by_size), max(by_size)
        what = "concurrent" if key[0] == "concurrent" else "idle"
        label = ", ".join(key[1:])
        ratio = by_size[big] / by_size[small]
        lines.append(f"{label}: {big:,} vs {small:,} {what}: {ratio:.2f}x")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("json_file", metavar="BENCHMARK.json")
    args = parser.parse_args(argv)
    try:
        rows = load(args.json_file)
    except (OSError, ValueError) as exc:
        print(f"bench_report: cannot read {args.json_file}: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(f"bench_report: no pool benchmarks in {args.json_file}", file=sys.stderr)
        return 1
    print(table(rows))
    lines = ratios(rows)
    if lines:
        print()
        print("Cost per request, biggest vs smallest (1.00x = constant work per request):")
        for line in lines:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
