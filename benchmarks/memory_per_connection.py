"""Server memory per idle connection, by server and by compression setting.

    python benchmarks/memory_per_connection.py --connections 10000 [--only wsframe]

For each configuration: start the server (pinned to CPU 0), read its RSS,
open N idle connections from client processes (pinned to CPU 1, spread
over source addresses 127.0.0.2...), wait until the RSS settles, and report
``(RSS after - RSS before) / N``, the server's fd count, and the kernel's
TCP socket memory (/proc/net/sockstat, not part of the RSS). Writes a
Markdown table to stdout and JSON to benchmarks/results/memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
PER_CLIENT_PROCESS = 9000

WSFRAME = [PY, "-m", "wsframe", "--log-level", "WARNING", "serve", "--heartbeat", "0"]
CONFIGS = {
    # name: (server command, clients negotiate deflate and send one message?)
    "wsframe, compression off": (WSFRAME + ["--no-compression"], False),
    "wsframe, deflate (default: no context takeover)": (WSFRAME, True),
    "wsframe, deflate, client context takeover": (WSFRAME + ["--client-context-takeover"], True),
    "wsframe, deflate, client takeover, 9-bit window": (
        WSFRAME + ["--client-context-takeover", "--client-max-window-bits", "9"], True),
    "wsframe, deflate, server context takeover": (WSFRAME + ["--server-context-takeover"], True),
    "wsframe, deflate, server takeover, 9 bits, memLevel 1": (
        WSFRAME + ["--server-context-takeover", "--server-max-window-bits", "9",
                   "--deflate-mem-level", "1"], True),
    "websockets 17 (asyncio), compression off": (
        [PY, "benchmarks/peers/websockets_server.py"], False),
    "aiohttp 3.14, compression off": ([PY, "benchmarks/peers/aiohttp_server.py"], False),
    "picows 2.3, compression off": ([PY, "benchmarks/peers/picows_server.py"], False),
    "bare selectors loop (holds sockets only)": ([PY, "benchmarks/peers/bare_selectors.py"], False),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    """RSS of the process and its children (worker processes count too)."""
    total = 0
    for p in [pid] + children(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
        except (OSError, StopIteration):
            pass
    return total


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def sockstat() -> dict:
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()[1:]
                return dict(zip(parts[::2], map(int, parts[1::2])))
    return {}


def wait_port(port: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def settle(pid: int, seconds: float = 3.0) -> int:
    """RSS once it has stopped moving (allocators return memory lazily)."""
    last = rss_kib(pid)
    for _ in range(int(seconds * 4)):
        time.sleep(0.25)
        now = rss_kib(pid)
        if now == last:
            break
        last = now
    return last


def measure(name: str, command: list, deflate: bool, n: int, subnet: int = 1) -> dict:
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", *command, "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port):
            return {"name": name, "error": "server did not start"}
        time.sleep(0.5)
        before = settle(server.pid)
        sock_before = sockstat()
        clients = []
        for i, start in enumerate(range(0, n, PER_CLIENT_PROCESS)):
            count = min(PER_CLIENT_PROCESS, n - start)
            cmd = ["taskset", "-c", "1", PY, "benchmarks/idle_clients.py", "--port", str(port),
                   "-n", str(count), "--source", f"127.0.{subnet}.{2 + i}", "--hold", "600"]
            if deflate:
                cmd.append("--deflate")
            clients.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True))
        opened = sum(int((c.stdout.readline().split() or ["", "0"])[1]) for c in clients)
        after = settle(server.pid)
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
        sock_after = sockstat()
        for c in clients:
            c.terminate()
        for c in clients:
            c.wait()
        return {"name": name, "connections": opened, "rss_before_kib": before,
                "rss_after_kib": after,
                "bytes_per_connection": round((after - before) * 1024 / max(opened, 1)),
                "server_fds": fds,
                "kernel_tcp_pages_delta": sock_after.get("mem", 0) - sock_before.get("mem", 0)}
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--only", default="", help="substring filter on configuration names")
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks/results/memory.json"))
    args = parser.parse_args()
    results = []
    for index, (name, (command, deflate)) in enumerate(CONFIGS.items()):
        if args.only and args.only not in name:
            continue
        # fresh source addresses per configuration: no TIME_WAIT left by the previous one
        result = measure(name, command, deflate, args.connections, subnet=10 + index)
        print(json.dumps(result), file=sys.stderr, flush=True)
        results.append(result)
    print("\n| server / setting | connections | RSS per idle connection | server fds |")
    print("|---|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| {r['name']} | - | {r['error']} | - |")
        else:
            print(f"| {r['name']} | {r['connections']:,} | {r['bytes_per_connection']:,} B "
                  f"({r['bytes_per_connection'] / 1024:.2f} KiB) | {r['server_fds']:,} |")
    existing = []
    if os.path.exists(args.json):
        with open(args.json) as f:
            existing = [r for r in json.load(f) if r.get("connections_requested") != args.connections
                        or r["name"] not in {x["name"] for x in results}]
    for r in results:
        r["connections_requested"] = args.connections
    with open(args.json, "w") as f:
        json.dump(existing + results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
