"""Broadcast across workers: one room of N members spread over W workers vs held by one process.

    python benchmarks/broadcast_workers.py --members 10000 --workers 4 --rate 5 --duration 10

For each case it starts its own ``wsframe serve`` (built-in app, heartbeats off,
compression off), runs ``wsframe bench broadcast`` against it (members on one
room, one publisher sending ``--size``-byte messages at ``--rate`` per second;
every message is broadcast to every member, the publisher included), and stops
the server by pid:

* ``one process``: ``wsframe serve``, ``/room/bench``;
* ``W workers, by proxy``: ``wsframe serve --workers W``, ``/proxy/bench`` (no
  partition key: members land on the least-loaded worker, so they spread over
  all W and join the room by proxy; the owner sequences each message and sends
  it once to every worker with members);
* ``W workers, on the owner``: ``/room/bench`` (the key routes every member to
  the room's owner: the common case, no process crossed).

Prints one table (deliveries, deliveries/s, latency p50/p99, server CPU) and
writes the reports to ``--json``. Every run has a time limit.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.loopback import free_port, health, stop_process  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)






def ready(port: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if health(port).get("status") == "ok":
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


def watch_spread(port: int, spread: list, stop: threading.Event) -> None:
    """Each worker's connections (/health, once a second) when the most were open."""
    while not stop.wait(1.0):
        try:
            counts = [w["connections"] for w in health(port)["workers"]]
        except (OSError, ValueError, KeyError):
            continue
        if spread[0] is None or sum(counts) > sum(spread[0]):
            spread[0] = counts


def run_case(label: str, workers: int, path: str, args) -> dict:
    port = free_port()
    serve = [sys.executable, "-P", "-m", "wsframe", "--log-level", "WARNING", "serve",
             "--port", str(port), "--heartbeat", "0", "--no-compression"]
    if workers > 1:
        serve += ["--workers", str(workers)]
    server = subprocess.Popen(serve, cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        if not ready(port):
            return {"label": label, "error": "the server did not become ready"}
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            report_path = tmp.name
        limit = args.members / 2000 + args.duration + 150
        spread, stop = [None], threading.Event()
        watcher = threading.Thread(target=watch_spread, args=(port, spread, stop), daemon=True)
        if workers > 1:
            watcher.start()
        out = subprocess.run(
            [sys.executable, "-P", "-m", "wsframe", "bench", "broadcast",
             f"ws://127.0.0.1:{port}{path}", "--pid", str(server.pid),
             "--members", str(args.members), "--rate", f"{args.rate:g}",
             "--size", str(args.size), "--duration", f"{args.duration:g}",
             "--time-limit", f"{limit:g}", "--json", report_path],
            cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=limit + 60)
        stop.set()
        if workers > 1:
            watcher.join(10)
        try:
            with open(report_path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            return {"label": label, "error": out.stdout[-2000:] + out.stderr[-2000:]}
        finally:
            os.unlink(report_path)
        report.update(label=label, workers=workers, path=path, spread=spread[0])
        return report
    finally:
        stop_process(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5.0, help="messages per second offered")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--cases", default="one,proxy,owner",
                        help="which of one,proxy,owner to run (comma-separated)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each case, interleaved")
    parser.add_argument("--json", metavar="FILE", help="write every case's report here")
    args = parser.parse_args()
    cases = {"one": ("one process", 1, "/room/bench"),
             "proxy": (f"{args.workers} workers, by proxy", args.workers, "/proxy/bench"),
             "owner": (f"{args.workers} workers, on the owner", args.workers, "/room/bench")}
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in cases]
    if unknown:
        print(f"error: unknown case(s) {', '.join(unknown)}; choose from one, proxy, owner")
        return 2
    reports = [run_case(*cases[c], args) for _ in range(max(1, args.runs)) for c in wanted]
    print(f"\nbroadcast: {args.members:,} members, {args.size} B messages at {args.rate:g}/s "
          f"for {args.duration:g} s, {max(1, args.runs)} run(s) of each case")
    print("| room | members per worker | deliveries | deliveries/s | latency p50 / p99 | "
          "server CPU |")
    print("|---|---|---|---|---|---|")
    for r in reports:
        if "error" in r:
            print(f"| {r['label']} | error: {r['error'][:200]} |")
            continue
        expected = r["messages_sent"] * r["members"]
        lat = r["latency_us"] or {}
        spread = " / ".join(f"{n:,}" for n in r["spread"]) if r.get("spread") else "-"
        print(f"| {r['label']} (`{r['path']}`) | {spread} | {r['deliveries']:,} of {expected:,} "
              f"| {r['deliveries_per_second']:,.0f} | "
              f"{lat.get('p50', 0) / 1000:,.1f} / {lat.get('p99', 0) / 1000:,.1f} ms | "
              f"{r['server_cpu_s']:.1f} s |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(reports, f, indent=1)
    return 0 if all("error" not in r for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
