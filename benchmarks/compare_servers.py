"""wsframe against websockets, aiohttp and picows, side by side, with ``wsframe bench``.

    python benchmarks/compare_servers.py [--quick] [--only echo,broadcast,capacity]

Every server runs the same built-in app (echo on any path, broadcast on
/room/<name>; see benchmarks/peers/) with compression and heartbeats off,
pinned to CPU 0; the load (the C engine in ``wsframe bench``) is pinned to
CPU 1. Echo scenarios and the broadcast latency run ``--repeats`` rounds
with the servers in rotated order, and keep each server's median run (loopback
numbers on a small VM vary by 20% from run to run). Results go to
benchmarks/results/servers.json and, as Markdown tables, to
benchmarks/results/servers.md.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
SERVERS = {
    "wsframe": [PY, "-m", "wsframe", "--log-level", "WARNING", "serve", "--heartbeat", "0",
                "--no-compression", "--max-message-size", "16M"],
    "picows": [PY, "benchmarks/peers/picows_server.py"],
    "aiohttp": [PY, "benchmarks/peers/aiohttp_server.py"],
    "websockets": [PY, "benchmarks/peers/websockets_server.py"],
}
BARE = [PY, "benchmarks/peers/bare_selectors.py"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """A server process pinned to CPU 0."""

    def __init__(self, command: list) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(["taskset", "-c", "0", *command, "--port", str(self.port)],
                                     cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    time.sleep(0.3)
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{command} did not start")

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bench(mode: str, url: str, pid: int, *args: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [PY, "-m", "wsframe", "bench", mode, url, "--pid", str(pid), "--load-cpus", "1",
                   "--json", out.name, *args]
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
        if run.returncode not in (0, 1):
            return {"error": run.stdout[-500:] + run.stderr[-500:]}
        with open(out.name) as f:
            return json.load(f)


def median_of(runs: list[dict], key: str) -> dict:
    """The run with the median ``key`` (so its latency numbers come from the same run)."""
    good = sorted((r for r in runs if key in r), key=lambda r: r[key])
    if not good:
        return runs[0]
    chosen = dict(good[len(good) // 2])
    chosen["runs"] = [round(r[key]) for r in good]
    return chosen


def echo_suite(quick: bool, repeats: int) -> list[dict]:
    """Each scenario: every server in turn, ``repeats`` rounds (rotated), the median kept."""
    rows = []
    scenarios = [(32, 1), (32, 16), (4096, 1), (4096, 16), (65536, 1), (65536, 16)]
    names = list(SERVERS)
    for size, inflight in scenarios:
        runs: dict[str, list] = {name: [] for name in names}
        for rep in range(repeats):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                with Running(SERVERS[name]) as server:
                    report = bench("echo", f"ws://127.0.0.1:{server.port}/", server.proc.pid,
                                   "--connections", "100", "--inflight", str(inflight),
                                   "--size", str(size), "--duration", "3" if quick else "5",
                                   "--warmup", "1")
                runs[name].append(slim(report))
        for name in names:
            row = {"server": name, "size": size, "inflight": inflight,
                   **median_of(runs[name], "rate")}
            rows.append(row)
            print(f"echo {name} {size}B x{inflight}: {row.get('rate', 0):,.0f}/s "
                  f"(runs {row.get('runs')})", file=sys.stderr, flush=True)
    return rows


def broadcast_suite(quick: bool, members: int, repeats: int) -> list[dict]:
    rows = []
    names = list(SERVERS)
    for rate in (1000, 5):
        runs: dict[str, list] = {name: [] for name in names}
        for rep in range(repeats if rate == 5 else 1):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                with Running(SERVERS[name]) as server:
                    report = bench("broadcast", f"ws://127.0.0.1:{server.port}/room/bench",
                                   server.proc.pid, "--members", str(members), "--rate",
                                   str(rate), "--size", "64", "--duration", "3" if quick else "5")
                runs[name].append({"p50": (report.get("latency_us") or {}).get("p50", 0),
                                   **slim(report)})
        for name in names:
            row = {"server": name, "members": members, "rate": rate,
                   **median_of(runs[name], "p50" if rate == 5 else "deliveries_per_second")}
            rows.append(row)
            print(f"broadcast {name} rate={rate}: {row.get('deliveries_per_second', 0):,.0f}/s "
                  f"p50 {row.get('p50', 0) / 1000:.1f} ms", file=sys.stderr, flush=True)
    return rows


def capacity_suite(quick: bool) -> list[dict]:
    rows = []
    counts = (2000,) if quick else (10000, 19000)
    for name, command in {**SERVERS, "bare selectors": BARE}.items():
        for count in counts:
            with Running(command) as server:
                report = bench("capacity", f"ws://127.0.0.1:{server.port}/", server.proc.pid,
                               "--connections", str(count), "--rate", "4000", "--hold", "5",
                               "--processes", "2")
                rows.append({"server": name, "connections": count, **slim(report)})
                print(f"capacity {name} {count}: {rows[-1].get('rss_per_connection') or 0:,.0f} B",
                      file=sys.stderr, flush=True)
    return rows


def slim(report: dict) -> dict:
    """The numbers the tables need (the full reports are large)."""
    if "error" in report:
        return report
    result = report.get("result", {})
    cpu_load = result.get("cpu_user", 0) + result.get("cpu_system", 0)
    out = {"latency_us": report.get("latency_us") or result.get("latency_us"),
           "load_cpu_s": round(cpu_load, 2), "failed": result.get("failed")}
    if report["mode"] == "echo":
        out["rate"] = report["messages_per_second"]
    elif report["mode"] == "broadcast":
        out.update(deliveries_per_second=report["deliveries_per_second"],
                   delivered=report["deliveries"], offered=report["messages_sent"],
                   members_open=report["members"])
    else:
        out.update(ceiling=report["ceiling"], rss_per_connection=report["rss_per_connection"],
                   survivors=result.get("survivors"), fds=report["peak"]["fds"])
    return out


def git_commit() -> str:
    """The commit measured (``+dirty`` when the tree has changes)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout
    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").strip()
                     else "")


def provenance(results: dict, suite: str) -> list:
    meta = (results.get("meta") or {}).get(suite)
    if not meta:
        return ["_Provenance of this table was not recorded._", ""]
    return [f"_Commit {meta['commit']}, {meta['date']}, {meta['runs']} run(s) per scenario "
            f"({meta['kept']} kept)._", ""]


def markdown(results: dict) -> str:
    lines = []
    if results.get("echo"):
        lines += ["### Echo throughput (100 connections; messages/s, round trip p50 / p99)", "",
                  "| scenario | " + " | ".join(SERVERS) + " |",
                  "|---|" + "---:|" * len(SERVERS)]
        scenarios = sorted({(r["size"], r["inflight"]) for r in results["echo"]})
        for size, inflight in scenarios:
            cells = []
            for name in SERVERS:
                r = next((x for x in results["echo"] if x["server"] == name and x["size"] == size
                          and x["inflight"] == inflight), None)
                if r is None or "rate" not in r:
                    cells.append("-")
                    continue
                lat = r["latency_us"] or {}
                cells.append(f"**{r['rate']:,.0f}**<br>{lat.get('p50', 0) / 1000:.2f} / "
                             f"{lat.get('p99', 0) / 1000:.2f} ms")
            label = f"{size if size < 1024 else f'{size // 1024} KiB'}{' B' if size < 1024 else ''}"
            lines.append(f"| {label}, {inflight} in flight | " + " | ".join(cells) + " |")
        lines.append("")
        lines += provenance(results, "echo")
    if results.get("broadcast"):
        lines += ["### Broadcast to one room (64-byte messages)", "",
                  "| server | offered | delivered/s | delivered | latency p50 / p99 |",
                  "|---|---|---:|---:|---:|"]
        for r in results["broadcast"]:
            if "deliveries_per_second" not in r:
                lines.append(f"| {r['server']} | - | error | - | - |")
                continue
            lat = r["latency_us"] or {}
            offered = "as fast as possible" if r["rate"] == 0 else f"{r['rate']:,}/s"
            share = r["delivered"] / max(r["offered"] * r["members_open"], 1)
            lines.append(f"| {r['server']} | {offered} to {r['members_open']:,} members | "
                         f"{r['deliveries_per_second']:,.0f} | {100 * share:.1f}% | "
                         f"{lat.get('p50', 0) / 1000:.1f} / {lat.get('p99', 0) / 1000:.1f} ms |")
        lines.append("")
        lines += provenance(results, "broadcast")
    if results.get("capacity"):
        lines += ["### Memory per idle connection (server RSS increase / connections)", "",
                  "| server | connections | per connection | server fds |", "|---|---:|---:|---:|"]
        for r in results["capacity"]:
            if not r.get("rss_per_connection"):
                lines.append(f"| {r['server']} | {r.get('connections')} | error | - |")
                continue
            lines.append(f"| {r['server']} | {r['ceiling']:,} | {r['rss_per_connection']:,.0f} B "
                         f"({r['rss_per_connection'] / 1024:.2f} KiB) | {r['fds']:,} |")
        lines.append("")
        lines += provenance(results, "capacity")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer connections")
    parser.add_argument("--only", default="echo,broadcast,capacity")
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds per scenario (servers rotated); the median is kept")
    args = parser.parse_args()
    suites = args.only.split(",")
    path = os.path.join(ROOT, "benchmarks", "results", "servers.json")
    results = {}
    if os.path.exists(path):  # suites not run this time keep their last results
        with open(path) as f:
            results = json.load(f)
    results.update({"machine": os.uname().nodename, "cpus": os.cpu_count()})
    results.pop("started", None)  # replaced by "meta": one entry per suite, kept with it
    meta = results.setdefault("meta", {})
    for suite in suites:
        meta[suite] = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                       "commit": git_commit(),
                       "runs": (1 if suite == "capacity" else
                                f"{args.repeats} at 5/s, 1 flooded" if suite == "broadcast"
                                else args.repeats),
                       "kept": "one run" if suite == "capacity" else "each server's median run"}
    if "echo" in suites:
        results["echo"] = echo_suite(args.quick, args.repeats)
    if "broadcast" in suites:
        results["broadcast"] = broadcast_suite(args.quick, args.members, args.repeats)
    if "capacity" in suites:
        results["capacity"] = capacity_suite(args.quick)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    text = markdown(results)
    with open(os.path.join(ROOT, "benchmarks", "results", "servers.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
