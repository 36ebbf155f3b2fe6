"""Reliable delivery with worker processes: what going through the room's owner costs.

``wsframe serve APP --workers 2``. Room ``order:1`` is owned by one worker (its
name's slot); the driver is on the other one, so every publication travels
to the owner first. Two watchers, one on each worker (the other one's member
is by proxy: its worker asks the owner for a replay).

1. **Recovery**: a watcher rejoins 1,000 publications behind, on the owner
   and by proxy: time from its hello to its ``recovered`` frame.
2. **Live**: the driver sends a position (acknowledged, published by the
   app); time until each watcher has it, p50 / p99.

    python benchmarks/delivery_workers.py --runs 5 --json benchmarks/results/delivery_workers.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.loopback import (commit, health, serve_app, stop_process,  # noqa: E402
                                 wait_for, write_report)
from wsframe.client.blocking import connect  # noqa: E402
from wsframe.cluster.partition import owner  # noqa: E402

APP = '''
from wsframe.delivery import Delivery
from wsframe.server.server import Server


class Watch:
    def __init__(self, delivery):
        self.delivery = delivery

    def on_open(self, conn, request, params):
        self.delivery.join(conn, "order:" + params["order"])


class Drive:
    def __init__(self, delivery):
        self.delivery = delivery

    def on_open(self, conn, request, params):
        conn.data = "order:" + params["order"]

    def on_message(self, conn, message):
        self.delivery.publish(conn.data, message)


def make_server():
    server = Server(heartbeat=None)
    delivery = Delivery(server, history_size=5000)
    server.route("/watch/{order}/{via}", delivery.endpoint(Watch(delivery)), partition="{via}")
    server.route("/driver/{order}/{via}", delivery.endpoint(Drive(delivery)), partition="{via}")
    return server
'''

ROOM = "order:1"


def key_on(slot: int, prefix: str) -> str:
    return next(f"{prefix}{i}" for i in range(1000) if owner(f"{prefix}{i}", 2) == slot)


def hello(ws, rooms=None) -> dict:
    ws.send(json.dumps({"op": "hello", "session": None, "rooms": rooms or {}}))
    welcome = json.loads(ws.recv(timeout=10))
    assert welcome["op"] == "welcome", welcome
    return welcome


def until(ws, ops) -> tuple[dict, int]:
    """Read frames until one whose op is in ``ops``; (that frame, pubs before it)."""
    pubs = 0
    while True:
        frame = json.loads(ws.recv(timeout=30))
        if frame.get("op") == "pub":
            pubs += 1
        elif frame.get("op") in ops:
            return frame, pubs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--missed", type=int, default=1000)
    parser.add_argument("--live", type=int, default=300)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    proc, port = serve_app(APP, "delivery_workers_app", "--workers", "2")
    base = f"ws://127.0.0.1:{port}"
    owner_slot = owner(ROOM, 2)
    paths = {"owner": f"/watch/1/{key_on(owner_slot, 'w')}",
             "by proxy": f"/watch/1/{key_on(1 - owner_slot, 'w')}"}
    report = {"commit": commit(), "date": time.strftime("%Y-%m-%d"), "args": vars(args)}
    try:
        assert wait_for(lambda: health(port)["status"] == "ok", 30), "cluster not ready"
        driver = connect(f"{base}/driver/1/{key_on(1 - owner_slot, 'd')}",
                         subprotocols=["wsframe.v1"])
        hello(driver)
        sent = 0

        def drive(count: int, **extra) -> None:
            nonlocal sent
            for _ in range(count):
                sent += 1
                driver.send(json.dumps({"id": f"p{sent}", "seq": sent, **extra}))
            acked = 0
            while acked < count:
                if "ack" in json.loads(driver.recv(timeout=30)):
                    acked += 1

        recovery = {where: [] for where in paths}
        for _ in range(args.runs):
            probe = connect(base + paths["owner"], subprotocols=["wsframe.v1"])
            hello(probe)
            joined, _ = until(probe, ("joined",))
            probe.close()
            position = {ROOM: {"epoch": joined["epoch"], "offset": joined["offset"]}}
            drive(args.missed)
            time.sleep(0.3)   # the owner has sequenced them
            for where, path in paths.items():
                ws = connect(base + path, subprotocols=["wsframe.v1"])
                start = time.perf_counter()
                hello(ws, position)
                frame, pubs = until(ws, ("recovered", "discontinuity"))
                elapsed = time.perf_counter() - start
                assert frame["op"] == "recovered" and pubs == args.missed, (frame, pubs)
                recovery[where].append(elapsed * 1000)
                ws.close()
        report["recovery_ms"] = {w: {"runs": v, "median": statistics.median(v)}
                                 for w, v in recovery.items()}
        for where, entry in report["recovery_ms"].items():
            print(f"recovery of {args.missed} missed, {where:9}: {entry['median']:.1f} ms "
                  f"(runs {', '.join(f'{x:.1f}' for x in entry['runs'])})", flush=True)

        arrivals = {where: {} for where in paths}
        watchers = {}
        for where, path in paths.items():
            ws = connect(base + path, subprotocols=["wsframe.v1"], max_queue=4096)
            hello(ws)
            until(ws, ("joined",))
            watchers[where] = ws

        def read(where: str, ws) -> None:
            while len(arrivals[where]) < args.live:
                frame = json.loads(ws.recv(timeout=30))
                if frame.get("op") == "pub" and "t" in frame["data"]:
                    arrivals[where][frame["data"]["seq"]] = time.perf_counter()
        readers = [threading.Thread(target=read, args=item) for item in watchers.items()]
        for reader in readers:
            reader.start()
        sent_at = {}
        for _ in range(args.live):
            sent_at[sent + 1] = time.perf_counter()
            drive(1, t=1)
            time.sleep(0.005)
        for reader in readers:
            reader.join(30)
        report["live_ms"] = {}
        for where, got in arrivals.items():
            latencies = sorted((got[s] - sent_at[s]) * 1000 for s in got)
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            report["live_ms"][where] = {"count": len(latencies), "p50": p50, "p99": p99}
            print(f"live, driver on the other worker -> watcher {where:9}: p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms ({len(latencies)} of {args.live})", flush=True)
        for ws in (*watchers.values(), driver):
            ws.close()
    finally:
        stop_process(proc, 20)
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
