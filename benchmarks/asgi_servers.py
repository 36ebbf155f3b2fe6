"""The same raw ASGI echo app under uvicorn with each WebSocket backend, side by side.

    python benchmarks/asgi_servers.py [--duration 5] [--repeats 3] [--only asgi,asyncio]

``asgi``: uvicorn (httptools + uvloop, as ``uvicorn[standard]``) serving
tests/asgi/echo_app.py with ``--ws wsframe.asgi:WebSocketProtocol``,
``websockets-sansio``, ``websockets`` and ``wsproto``; ``asyncio``:
``wsframe.asyncio.serve`` against websockets' asyncio server (both on
uvloop). Compression and keepalive off. Rows: echo 32 B at 1 and 16 in
flight, 4 KiB, 64 KiB (100 connections; messages per second and per server
CPU-second), and memory per idle connection. The server is pinned to CPU 0,
the load (``wsframe bench``) to CPU 1; each row keeps the median of
``--repeats`` rotated rounds. Results: benchmarks/results/asgi_servers.json
and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.compare_servers import ROOT, Running, bench, median_of  # noqa: E402

PY = sys.executable
UVICORN = [PY, "-m", "uvicorn", "tests.asgi.echo_app:app", "--app-dir", ROOT, "--host",
           "127.0.0.1", "--http", "httptools", "--loop", "uvloop", "--lifespan", "off",
           "--ws-per-message-deflate", "false", "--ws-ping-interval", "0",
           "--ws-max-size", str(16 * 1024 * 1024), "--log-level", "warning", "--no-access-log"]
SUITES = {
    "asgi": {
        "uvicorn + wsframe.asgi": UVICORN + ["--ws", "wsframe.asgi:WebSocketProtocol"],
        "uvicorn + websockets-sansio": UVICORN + ["--ws", "websockets-sansio"],
        "uvicorn + websockets": UVICORN + ["--ws", "websockets"],
        "uvicorn + wsproto": UVICORN + ["--ws", "wsproto"],
    },
    "asyncio": {
        "wsframe.asyncio": ["env", "WSFRAME_UVLOOP=1", PY,
                            "benchmarks/peers/wsframe_asyncio_server.py"],
        "websockets asyncio": [PY, "benchmarks/peers/websockets_server.py"],
    },
}
SCENARIOS = [(32, 1), (32, 16), (4096, 1), (65536, 1)]


def per_cpu_second(report: dict) -> float:
    """Messages per second of server CPU (user + system, warm-up included: a lower bound)."""
    cpu = report.get("server_cpu_s") or 0
    received = (report.get("result") or {}).get("messages_received", 0)
    return received / cpu if cpu else 0.0


def run_suite(servers: dict, duration: float, repeats: int, idle: int) -> list[dict]:
    rows = []
    names = list(servers)
    for size, inflight in SCENARIOS:
        runs: dict[str, list] = {name: [] for name in names}
        for rep in range(repeats):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                with Running(servers[name]) as server:
                    report = bench("echo", f"ws://127.0.0.1:{server.port}/", server.proc.pid,
                                   "--connections", "100", "--inflight", str(inflight),
                                   "--size", str(size), "--duration", str(duration),
                                   "--warmup", "1")
                runs[name].append({"rate": report.get("messages_per_second", 0),
                                   "per_cpu_s": per_cpu_second(report),
                                   "error": report.get("error")})
        for name in names:
            row = {"server": name, "size": size, "inflight": inflight,
                   **median_of(runs[name], "rate")}
            rows.append(row)
            print(f"echo {name} {size}B x{inflight}: {row['rate']:,.0f}/s, "
                  f"{row['per_cpu_s']:,.0f}/CPU-s", file=sys.stderr, flush=True)
    for name in names:
        with Running(servers[name]) as server:
            report = bench("capacity", f"ws://127.0.0.1:{server.port}/", server.proc.pid,
                           "--connections", str(idle), "--rate", "2000", "--hold", "3")
        rows.append({"server": name, "idle_connections": idle,
                     "rss_per_connection": report.get("rss_per_connection"),
                     "error": report.get("error")})
        print(f"idle {name}: {rows[-1]['rss_per_connection']} B/connection", file=sys.stderr,
              flush=True)
    return rows


def markdown(suite: str, rows: list[dict]) -> str:
    names = list(dict.fromkeys(r["server"] for r in rows))
    lines = [f"### {suite}: echo, 100 connections (messages/s; per server CPU-second)", "",
             "| scenario | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for size, inflight in SCENARIOS:
        cells = []
        for name in names:
            r = next((x for x in rows if x["server"] == name and x.get("size") == size
                      and x.get("inflight") == inflight), None)
            cells.append(f"**{r['rate']:,.0f}**<br>{r['per_cpu_s']:,.0f}" if r else "-")
        label = f"{size} B" if size < 1024 else f"{size // 1024} KiB"
        lines.append(f"| {label}, {inflight} in flight | " + " | ".join(cells) + " |")
    cells = []
    for name in names:
        r = next((x for x in rows if x["server"] == name and "idle_connections" in x), None)
        cells.append(f"{r['rss_per_connection']:,.0f} B" if r and r["rss_per_connection"]
                     else "-")
    lines += ["| memory per idle connection | " + " | ".join(cells) + " |", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per echo run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle", type=int, default=5000, help="idle connections for memory")
    parser.add_argument("--only", default="asgi,asyncio")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args()
    results = {suite: run_suite(SUITES[suite], args.duration, args.repeats, args.idle)
               for suite in args.only.split(",")}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "asgi_servers.json"), "w") as f:
        json.dump(results, f, indent=1)
    text = "\n".join(markdown(suite, rows) for suite, rows in results.items())
    with open(os.path.join(args.out, "asgi_servers.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
