"""Turn pytest-benchmark JSON into the Markdown tables of RESULTS.md.

    python benchmarks/report.py benchmarks/results/codec.json [more.json ...]
    python benchmarks/report.py --slim benchmarks/results/codec.json   # drop raw timings

One table per benchmark group: each implementation's median time, its
throughput (messages, frames or bytes per second, from ``extra_info``), and
its speed relative to the fastest in the group. Given several runs of the
same benchmarks, each implementation keeps its best run (lowest median): on a
shared VM a neighbour can slow a whole run down, never speed one up.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict


def human(value: float, unit: str) -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def seconds(value: float) -> str:
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value / 1e-9:.0f} ns"


def rate(bench: dict) -> str:
    median = bench["stats"]["median"]
    info = bench.get("extra_info", {})
    if "bytes" in info:
        return human(info["bytes"] / median, "B/s")
    if "messages" in info:
        return human(info["messages"] / median, "msg/s")
    if "frames" in info:
        return human(info["frames"] / median, "frames/s")
    return human(1 / median, "ops/s")


def label(bench: dict) -> str:
    if "impl" in bench.get("extra_info", {}):
        return bench["extra_info"]["impl"]
    name = bench["name"]
    if "[" in name:
        parts = name[name.index("[") + 1:-1].split("-")
        return "-".join(p for p in parts if not p.endswith(("B", "KiB", "MiB")) and p not in
                        ("plain", "deflate", "True", "False")) or name
    return name


def main(paths: list[str]) -> int:
    groups: dict[str, list] = defaultdict(list)
    machine = None
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        machine = machine or data.get("machine_info", {})
        for bench in data["benchmarks"]:
            if bench["stats"]["rounds"] > 1 or "memory" not in (bench.get("group") or ""):
                groups[bench.get("group") or bench["name"]].append(bench)
    for group, benches in groups.items():
        best: dict[str, dict] = {}
        for bench in benches:
            kept = best.get(label(bench))
            if kept is None or bench["stats"]["median"] < kept["stats"]["median"]:
                best[label(bench)] = bench
        groups[group] = list(best.values())
    if machine:
        cpu = machine.get("cpu", {}).get("brand_raw", "?")
        print(f"Machine: {cpu}, Python {machine.get('python_version')}\n")
    for group, benches in groups.items():
        if "memory" in group:
            continue
        fastest = min(b["stats"]["median"] for b in benches)
        print(f"**{group}**\n")
        print("| implementation | median | throughput | relative |")
        print("|---|---:|---:|---:|")
        for bench in sorted(benches, key=lambda b: b["stats"]["median"]):
            median = bench["stats"]["median"]
            print(f"| {label(bench)} | {seconds(median)} | {rate(bench)} | "
                  f"{'1.00' if median == fastest else f'{median / fastest:.2f}x slower'} |")
        print()
    return 0


def slim(paths: list[str]) -> int:
    """Rewrite pytest-benchmark JSON without the raw timings (hundreds of MB otherwise)."""
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for bench in data["benchmarks"]:
            bench["stats"].pop("data", None)
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--slim"]:
        sys.exit(slim(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
