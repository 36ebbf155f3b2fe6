"""Failure drill: kill -9 one worker under load; how long until it is replaced, what is lost.

    python benchmarks/failure_drill.py --connections 20000 --workers 4 --room-size 3

Starts ``wsframe serve --workers N`` (built-in app, heartbeats on), holds the
connections with ``wsframe bench capacity`` (rooms of ``--room-size``: room
traffic is membership, each room on its owner), then SIGKILLs the worker in
slot 0 and reports: time until its replacement is ready, connections the
victim held, connections lost (survivors at the end of the hold), and every
other worker's connection count before and after (they must not change).
Every process it starts is stopped by pid; the whole run has a time limit.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: drill\r\n\r\n")
        raw = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def wait_for(predicate, timeout: float, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError):
            pass
        time.sleep(interval)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--room-size", type=int, default=3)
    parser.add_argument("--rate", type=float, default=4000.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after the ramp")
    parser.add_argument("--after", type=float, default=10.0, help="hold after the kill, s")
    args = parser.parse_args()
    port = free_port()
    ramp = args.connections / args.rate
    hold = args.settle + args.after + 5
    server = subprocess.Popen([sys.executable, "-m", "wsframe", "--log-level", "WARNING",
                               "serve", "--workers", str(args.workers), "--port", str(port)],
                              cwd=ROOT, stdin=subprocess.DEVNULL)
    load = None
    try:
        if not wait_for(lambda: health(port)["status"] == "ok", 60, 0.1):
            print("error: the cluster did not become ready")
            return 1
        load = subprocess.Popen(
            [sys.executable, "-m", "wsframe", "bench", "capacity", f"ws://127.0.0.1:{port}/",
             "--pid", str(server.pid), "--connections", str(args.connections),
             "--rate", str(args.rate), "--hold", f"{hold:g}", "--room-size", str(args.room_size),
             "--time-limit", f"{ramp * 3 + hold + 60:g}", "--json", os.devnull],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        time.sleep(ramp + args.settle)
        before = health(port)
        victim = before["workers"][0]
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        replaced = wait_for(lambda: (lambda h: h if h["workers"][0]["ready"] and
                                     h["workers"][0]["pid"] != victim["pid"] else None)(
                                         health(port)), 60)
        replaced_after = time.monotonic() - killed_at
        time.sleep(args.after / 2)
        after = health(port)
        out, _ = load.communicate(timeout=ramp * 3 + hold + 120)
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    survivors = next((line for line in out.splitlines() if "survivors" in line), "").strip()
    print(f"failure drill: {args.connections:,} connections, {args.workers} workers, "
          f"rooms of {args.room_size}")
    print(f"  victim                slot 0, pid {victim['pid']}, "
          f"{victim['connections']:,} connections")
    print(f"  replaced after        {replaced_after * 1000:,.0f} ms (new pid "
          f"{replaced['workers'][0]['pid'] if replaced else '-'})")
    print(f"  others before         " + " / ".join(
        f"{w['pid']}: {w['connections']:,}" for w in before["workers"][1:]))
    print(f"  others after          " + " / ".join(
        f"{w['pid']}: {w['connections']:,}" for w in after["workers"][1:]))
    print(f"  load side             {survivors}")
    print(f"  connections lost      {args.connections - int(survivors.split()[3].replace(',', '')) if survivors else 'unknown'}"
          f" (the victim held {victim['connections']:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
