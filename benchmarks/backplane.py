"""Rooms across servers through Redis: what the backplane costs, and what it saves.

Bounded and loopback only; it starts its own redis-server on a free port and
its own ``wsframe serve`` processes, and stops all of them by pid.

1. **Broadcast across servers** (``wsframe bench broadcast`` with members
   split over the servers, the publisher on the first): one server without
   Redis; one server with ``--redis``; three servers with ``--redis``; three
   servers x 2 workers with ``--redis``. Deliveries per second and latency.
2. **Redis traffic per broadcast**: 10 servers, one of them with members of
   the room. Redis's own numbers (the receivers ``PUBLISH`` reports, and
   ``total_net_output_bytes`` from ``INFO stats``) for wsframe's per-room
   subscriptions, against the publish-to-every-server design (every server
   ``PSUBSCRIBE``-d to all rooms, as Socket.IO's classic Redis adapter does).

    python benchmarks/backplane.py --runs 3 --json benchmarks/results/backplane.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.loopback import free_port, wait_port, write_report  # noqa: E402

import redis  # redis-py: only to read Redis's counters and play the other design

ROOM = "bench"






class Processes:
    """Everything this run starts, stopped by pid at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def start_redis(procs: Processes) -> tuple[int, str]:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="wsframe-bench-redis-")
    procs.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", workdir])
    wait_port(port)
    return port, workdir


def start_servers(procs: Processes, count: int, redis_url: str | None, workers: int = 1):
    ports = []
    for _ in range(count):
        port = free_port()
        argv = [sys.executable, "-m", "wsframe", "--log-level", "WARNING", "serve",
                "--port", str(port), "--heartbeat", "0"]
        if redis_url:
            argv += ["--redis", redis_url]
        if workers > 1:
            argv += ["--workers", str(workers)]
        procs.start(argv)
        ports.append(port)
    for port in ports:
        wait_port(port)
    if redis_url:  # every server (every worker) connected to Redis
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(_backplane_ready(p) for p in ports):
            time.sleep(0.1)
    return ports


def _backplane_ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        health = json.loads(response.read())
    if "workers" in health:
        return health["status"] == "ok" and all(
            w.get("backplane", {}).get("state") == "ready" for w in health["workers"])
    return health.get("backplane", {}).get("state") == "ready"


def bench(ports: list[int], members: int, rate: float, duration: float, size: int) -> dict:
    urls = [f"ws://127.0.0.1:{port}/room/{ROOM}" for port in ports]
    argv = [sys.executable, "-m", "wsframe", "bench", "broadcast", urls[0],
            "--members", str(members), "--rate", str(rate), "--duration", str(duration),
            "--size", str(size), "--json", "-"]
    for url in urls[1:]:
        argv += ["--members-at", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    text = out.stdout
    report = json.loads(text[text.index("\n{") + 1:] if not text.startswith("{") else text)
    return {"deliveries_per_second": report["deliveries_per_second"],
            "delivered": report["deliveries"],
            "expected": report["messages_sent"] * report["members"],
            "messages_sent": report["messages_sent"], "members": report["members"],
            "load_cpu_s": report["result"]["cpu_user"] + report["result"]["cpu_system"],
            "window_s": report["window"], "publisher_elapsed_s": report["publisher"]["elapsed"],
            "failed": report["result"].get("failed", {}),
            "p50_ms": report["latency_us"].get("p50", 0) / 1000,
            "p99_ms": report["latency_us"].get("p99", 0) / 1000}


CASES = [  # name, servers, workers per server, with Redis
    ("1 server, no Redis", 1, 1, False),
    ("1 server, --redis", 1, 1, True),
    ("3 servers, --redis", 3, 1, True),
    ("3 servers x 2 workers, --redis", 3, 2, True),
]


def broadcast_rows(args) -> list[dict]:
    rows = []
    for name, servers, workers, with_redis in CASES:
        runs = []
        for _ in range(args.runs):
            procs = Processes()
            workdir = None
            try:
                url = None
                if with_redis:
                    port, workdir = start_redis(procs)
                    url = f"redis://127.0.0.1:{port}/0"
                ports = start_servers(procs, servers, url, workers)
                runs.append(bench(ports, args.members, args.rate, args.duration, args.size))
            finally:
                procs.stop_all()
                if workdir:
                    shutil.rmtree(workdir, ignore_errors=True)
        row = {"case": name, "runs": runs,
               **{key: statistics.median(r[key] for r in runs)
                  for key in ("deliveries_per_second", "p50_ms", "p99_ms")},
               "delivered_all": all(r["delivered"] == r["expected"] for r in runs)}
        print(f"{name:34} {row['deliveries_per_second']:>10,.0f}/s  p50 {row['p50_ms']:.2f} ms"
              f"  p99 {row['p99_ms']:.2f} ms  all delivered: {row['delivered_all']}", flush=True)
        rows.append(row)
    return rows


def traffic_rows(args) -> list[dict]:
    """10 servers, members of the room on one: what Redis sends per broadcast."""
    procs = Processes()
    port, workdir = start_redis(procs)
    url = f"redis://127.0.0.1:{port}/0"
    pattern_clients = []
    try:
        ports = start_servers(procs, 10, url)
        from wsframe.client.blocking import connect
        member = connect(f"ws://127.0.0.1:{ports[0]}/room/{ROOM}")
        r = redis.Redis(port=port)
        channel = f"wsframe:room:{ROOM}"
        deadline = time.monotonic() + 10
        while r.pubsub_numsub(channel)[0][1] != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        payload = b"x" * args.size
        results = []
        for design in ("wsframe: per-room SUBSCRIBE", "publish to every server (PSUBSCRIBE *)"):
            if design.startswith("publish"):
                for _ in range(9):  # the nine servers without members, as the classic adapter
                    pubsub = redis.Redis(port=port).pubsub()
                    pubsub.psubscribe("wsframe:room:*")
                    pubsub.get_message(timeout=1)
                    pattern_clients.append(pubsub)
            before = int(r.info("stats")["total_net_output_bytes"])
            receivers = [r.publish(channel, payload) for _ in range(args.traffic_messages)]
            time.sleep(0.5)
            for pubsub in pattern_clients:  # read what they were sent
                while pubsub.get_message(timeout=0.01):
                    pass
            after = int(r.info("stats")["total_net_output_bytes"])
            results.append({"design": design, "servers_reached": statistics.median(receivers),
                            "redis_output_bytes_per_message":
                                (after - before) / args.traffic_messages})
            print(f"{design:40} reaches {results[-1]['servers_reached']:.0f} servers, "
                  f"{results[-1]['redis_output_bytes_per_message']:.0f} B out of Redis per "
                  f"message", flush=True)
        member.close()
        return results
    finally:
        for pubsub in pattern_clients:
            pubsub.close()
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--members", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--traffic-messages", type=int, default=1000)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("error: redis-server is not installed (apt-get install redis-server)")
        return 2
    report = {"commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip(),
              "date": time.strftime("%Y-%m-%d"), "args": vars(args),
              "broadcast": broadcast_rows(args), "traffic": traffic_rows(args)}
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
