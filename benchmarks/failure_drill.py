"""Failure drill: kill -9 one worker under load; how long until it is replaced, what is lost.

    python benchmarks/failure_drill.py --connections 20000 --workers 4 --room-size 3

Starts ``wsframe serve --workers N`` (built-in app, heartbeats on, a publish
socket), holds the connections with ``wsframe bench capacity`` (rooms of
``--room-size``, each on its owner), and publishes ``--publish-rate`` messages
per second into those rooms in turn (``wsframe.cluster.Publisher``: room
traffic to every worker, before, during and after the kill). Then it SIGKILLs
the worker in slot 0 and reports: time until its replacement is ready,
connections the victim held, connections lost (handshakes minus survivors at
the end of the hold), and every other worker's connections and RSS before and
after (they must not change, nor grow). Every process it starts is stopped by
pid; the whole run has a time limit.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.loopback import free_port, health, stop_process, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)








def rss_kib(pid) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return 0


def room_names(connections: int, room_size: int) -> list:
    """The rooms ``wsframe bench capacity --room-size`` puts its connections in."""
    sys.path.insert(0, ROOT)
    from wsframe.tools.bench import PER_PROCESS, _split
    processes = max(1, -(-connections // PER_PROCESS))
    return [f"p{index}-{room:08x}" for index, share in enumerate(_split(connections, processes))
            for room in range(-(-share // room_size))]


def publish_loop(path: str, rooms: list, rate: float, stop: threading.Event, sent: list) -> None:
    """Publish ``rate`` messages per second, one room after another, until ``stop``."""
    from wsframe.cluster import Publisher
    if rate <= 0 or not rooms:
        return
    with Publisher(path) as publisher:
        start, i = time.monotonic(), 0
        while not stop.is_set():
            due = int((time.monotonic() - start) * rate)
            while i < due:
                publisher.publish(rooms[i % len(rooms)], f"drill {i:08d} " + "." * 40)
                i += 1
            sent[0] = i
            time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--room-size", type=int, default=3)
    parser.add_argument("--rate", type=float, default=4000.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after the ramp")
    parser.add_argument("--after", type=float, default=10.0, help="hold after the kill, s")
    parser.add_argument("--publish-rate", type=float, default=1000.0,
                        help="room messages per second published during the drill (0: none)")
    args = parser.parse_args()
    port = free_port()
    ramp = args.connections / args.rate
    hold = args.settle + args.after + 5
    workdir = tempfile.mkdtemp(prefix="wsframe-drill-")
    publish_path = os.path.join(workdir, "publish.sock")
    report_path = os.path.join(workdir, "load.json")
    server = subprocess.Popen([sys.executable, "-m", "wsframe", "--log-level", "WARNING",
                               "serve", "--workers", str(args.workers), "--port", str(port),
                               "--publish-socket", publish_path],
                              cwd=ROOT, stdin=subprocess.DEVNULL)
    load = None
    stop_publishing = threading.Event()
    published = [0]
    publisher = threading.Thread(target=publish_loop, daemon=True, args=(
        publish_path, room_names(args.connections, args.room_size), args.publish_rate,
        stop_publishing, published))
    try:
        if not wait_for(lambda: health(port)["status"] == "ok", 60, 0.1):
            print("error: the cluster did not become ready")
            return 1
        load = subprocess.Popen(
            [sys.executable, "-m", "wsframe", "bench", "capacity", f"ws://127.0.0.1:{port}/",
             "--pid", str(server.pid), "--connections", str(args.connections),
             "--rate", str(args.rate), "--hold", f"{hold:g}", "--room-size", str(args.room_size),
             "--time-limit", f"{ramp * 3 + hold + 60:g}", "--json", report_path],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        time.sleep(ramp)
        publisher.start()
        time.sleep(args.settle)
        before = health(port)
        rss_before = {w["pid"]: rss_kib(w["pid"]) for w in before["workers"]}
        victim = before["workers"][0]
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        replaced = wait_for(lambda: (lambda h: h if h["workers"][0]["ready"] and
                                     h["workers"][0]["pid"] != victim["pid"] else None)(
                                         health(port)), 60)
        replaced_after = time.monotonic() - killed_at
        time.sleep(args.after / 2)
        after = health(port)
        rss_after = {w["pid"]: rss_kib(w["pid"]) for w in after["workers"]}
        out, _ = load.communicate(timeout=ramp * 3 + hold + 120)
        stop_publishing.set()
        publisher.join(5)
        with open(report_path) as f:
            result = json.load(f)["result"]
    finally:
        stop_publishing.set()
        for path in (report_path, publish_path):
            try:
                os.unlink(path)
            except OSError:
                pass
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        stop_process(server)
    others = before["workers"][1:]
    print(f"failure drill: {args.connections:,} connections, {args.workers} workers, "
          f"rooms of {args.room_size}, {args.publish_rate:g} room messages/s published")
    print(f"  victim                slot 0, pid {victim['pid']}, "
          f"{victim['connections']:,} connections")
    print(f"  replaced after        {replaced_after * 1000:,.0f} ms (new pid "
          f"{replaced['workers'][0]['pid'] if replaced else '-'})")
    print("  others before         " + " / ".join(
        f"{w['pid']}: {w['connections']:,} ({rss_before.get(w['pid'], 0) / 1024:,.1f} MiB)"
        for w in others))
    print("  others after          " + " / ".join(
        f"{w['pid']}: {w['connections']:,} ({rss_after.get(w['pid'], 0) / 1024:,.1f} MiB)"
        for w in after["workers"][1:]))
    print(f"  replacement           {after['workers'][0]['connections']:,} connections "
          f"(its old clients do not reconnect: the load engine does not retry)")
    print(f"  load side             {result['connected']:,} handshakes, {result['survivors']:,} "
          f"survivors, failures {result['failed'] or 'none'}; room messages received "
          f"{result['messages_received']:,} ({published[0]:,} published x {args.room_size})")
    print(f"  connections lost      {result['connected'] - result['survivors']:,} "
          f"(the victim held {victim['connections']:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
