"""Gateway mode's ingest: client messages per second into Redis streams, and CPU per message.

    python benchmarks/gateway_ingest.py --connections 100 --messages 2000 --size 32 --runs 3

Starts a ``redis-server`` on a free loopback port (nothing on disk) and
``wsframe serve --gateway --redis URL`` (heartbeats and compression off),
opens the connections with raw sockets, and has each send ``--messages``
pre-built masked frames of ``--size`` bytes as fast as the server reads
them. It waits until the server's ``/health`` counts every entry appended
(Redis has answered every ``XADD``) and reports the messages per second
from the first byte sent to the last reply, and the CPU time the server
process and ``redis-server`` spent per message (``/proc/<pid>/stat``). The
server is pinned to ``--server-cpu``, Redis and the load to ``--redis-cpu``.
Every process it starts is stopped by pid; the whole run has a time limit.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks.loopback import free_port, health, wait_for  # noqa: E402
from wsframe import codec  # noqa: E402
from wsframe.codec.frames import OP_TEXT  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")




def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime + stime






def open_ws(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("the server closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    return sock


def one_run(args, port: int, server_pid: int, redis_pid: int) -> dict:
    before = health(port)["gateway"]
    socks = [open_ws(port, f"/room/bench{i % args.rooms}") for i in range(args.connections)]
    opened = before["appended"] + args.connections
    if not wait_for(lambda: health(port)["gateway"]["appended"] >= opened, 30):
        raise RuntimeError("the open events were not appended")
    frame = codec.client_frame(OP_TEXT, b"x" * args.size)
    burst = frame * args.messages
    chunk = 256 * 1024
    cpu_server, cpu_redis = cpu_seconds(server_pid), cpu_seconds(redis_pid)
    started = time.monotonic()
    offsets = [0] * len(socks)
    pending = list(range(len(socks)))
    while pending:   # round-robin, blocking sends: each waits only while the server is busy
        still = []
        for i in pending:
            socks[i].sendall(burst[offsets[i]:offsets[i] + chunk])
            offsets[i] += chunk
            if offsets[i] < len(burst):
                still.append(i)
        pending = still
    target = opened + args.connections * args.messages
    done = wait_for(lambda: health(port)["gateway"]["appended"] >= target, args.time_limit,
                    interval=0.005)
    elapsed = time.monotonic() - started
    cpu_server = cpu_seconds(server_pid) - cpu_server
    cpu_redis = cpu_seconds(redis_pid) - cpu_redis
    after = health(port)["gateway"]
    for sock in socks:
        sock.close()
    if not done:
        raise RuntimeError(f"not every entry was appended: {after}; "
                           f"backplane: {health(port)['backplane']}")
    total = args.connections * args.messages
    return {"messages": total, "seconds": elapsed, "per_second": total / elapsed,
            "server_cpu_us": cpu_server / total * 1e6, "redis_cpu_us": cpu_redis / total * 1e6,
            "append_failed": after["append_failed"] - before["append_failed"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000, help="per connection")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--maxlen", type=int, default=100_000)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--redis-cpu", default="1")
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    redis_port, port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="wsframe-bench-redis-")
    procs = []
    try:
        redis = subprocess.Popen(
            ["taskset", "-c", args.redis_cpu, shutil.which("redis-server") or "redis-server",
             "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(redis)
        server = subprocess.Popen(
            ["taskset", "-c", args.server_cpu, sys.executable, "-m", "wsframe", "--log-level",
             "WARNING", "serve", "--gateway", "--redis", f"redis://127.0.0.1:{redis_port}/0",
             "--port", str(port), "--heartbeat", "0", "--no-compression",
             "--gateway-maxlen", str(args.maxlen)], cwd=ROOT)
        procs.append(server)
        os.sched_setaffinity(0, {int(c) for c in args.redis_cpu.split(",")})
        if not wait_for(lambda: health(port)["backplane"]["state"] == "ready", 30):
            raise RuntimeError("the gateway did not come up")
        runs = [one_run(args, port, server.pid, redis.pid) for _ in range(args.runs)]
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    median = {key: statistics.median(run[key] for run in runs)
              for key in ("per_second", "server_cpu_us", "redis_cpu_us")}
    report = {"connections": args.connections, "messages_per_connection": args.messages,
              "size": args.size, "runs": runs, "median": median}
    print(f"{args.connections} connections x {args.messages} messages of {args.size} B, "
          f"{args.runs} run(s): median {median['per_second']:,.0f} messages/s appended; "
          f"CPU per message: server {median['server_cpu_us']:.2f} us, "
          f"redis-server {median['redis_cpu_us']:.2f} us; "
          f"append_failed {sum(run['append_failed'] for run in runs)}")
    for run in runs:
        print(f"  run: {run['per_second']:,.0f}/s in {run['seconds']:.2f} s, server "
              f"{run['server_cpu_us']:.2f} us, redis {run['redis_cpu_us']:.2f} us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
