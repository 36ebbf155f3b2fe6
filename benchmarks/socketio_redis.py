"""Rooms across servers: wsframe vs Socket.IO with its Redis adapter, in one run.

The same end-to-end case for both, back to back (the cases alternate within
each of ``--runs`` rounds), every run with a fresh redis-server (own port,
never 6379) and fresh servers:

* three servers on loopback sharing that Redis, the room's ``--members``
  split evenly over them, one publisher connected to the first server sending
  ``--size``-byte messages at each of ``--rates`` per second for ``--duration`` s;
* **wsframe**: ``wsframe serve --redis`` x3 driven by ``wsframe bench
  broadcast --members-at`` (the C load engine), exactly as the 3-server case
  of ``benchmarks/backplane.py`` (its functions are called here);
* **Socket.IO**: ``benchmarks/peers/socketio/server.js`` x3 (socket.io with
  ``@socket.io/redis-adapter``'s ``createAdapter``, WebSocket transport only,
  no compression), members and publisher in Node with socket.io-client
  (``receivers.js`` in ``--receiver-processes`` processes, ``publisher.js``);
* ``--sharded``: the same Socket.IO servers with ``createShardedAdapter(...,
  {subscriptionMode: "dynamic"})`` (a ``SSUBSCRIBE`` per room, Redis >= 7);
* ``--node-ws``: wsframe's servers with the Socket.IO case's Node load (plain
  ``ws`` clients), to tell the servers' cost from the load side's;
* ``--traffic-servers N`` (default 10): every case once more with N servers
  and ``--traffic-members`` members all on the first (with the publisher):
  what Redis sends per message when most servers have no member.

Both sides put the same payload in each message (16 hex digits of
CLOCK_MONOTONIC ns, 8 of sender id, '.' filler: ``_speedups/wsload.h``) and
bin latencies in the same histogram, so deliveries/s and latency p50/p99
mean the same thing. Around each window, Redis's own counters: who gets the
room's messages (``PUBSUB NUMSUB`` / ``SHARDNUMSUB`` / ``NUMPAT``, ``CLIENT
LIST``) and ``INFO stats`` bytes in and out per message published; also the
CPU seconds of servers, Redis and the load side, the machine's busy share
and load average (other work may share the machine; ``--wait-quiet S``
waits up to S s before each run for a quiet second).

    (cd benchmarks/peers/socketio && npm ci)
    python benchmarks/socketio_redis.py --runs 3 --members 1500 --rates 20,100 \\
        --duration 10 --sharded --node-ws --wait-quiet 20 \\
        --json benchmarks/results/socketio_redis.json

Bounded (every wait has a limit); everything started is stopped by pid.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import redis  # noqa: E402  (redis-py: only to read Redis's counters)

from benchmarks.backplane import (  # noqa: E402
    ROOM, Processes, bench, free_port, start_redis, start_servers)

PEER = HERE / "peers" / "socketio"
SETTLE = 3.0   # seconds without a delivery that end the Socket.IO window
# wsload.h's histogram geometry, to turn merged buckets into percentiles
LINEAR, SUB_BITS, MIN_EXP, MAX_EXP = 1024, 7, 10, 26
NBUCKETS = LINEAR + (MAX_EXP - MIN_EXP) * (1 << SUB_BITS) + 1


def bucket_range(i: int, max_us: float) -> tuple[float, float]:
    """[lower, upper) microseconds of bucket ``i`` (the overflow bucket ends at max)."""
    if i < LINEAR:
        return float(i), float(i + 1)
    if i >= NBUCKETS - 1:
        return float(1 << MAX_EXP), max_us + 1
    k = MIN_EXP + (i - LINEAR) // (1 << SUB_BITS)
    sub = (i - LINEAR) % (1 << SUB_BITS)
    lower = float(((1 << SUB_BITS) + sub) << (k - SUB_BITS))
    return lower, lower + float(1 << (k - SUB_BITS))


def percentile(hist: dict[int, float], count: float, max_us: float, q: float) -> float:
    """As wsl_percentile: the middle of the bucket holding rank ceil(q*count), capped at max."""
    if not count:
        return 0.0
    rank = min(max(1, -int(-q * count // 1)), int(count))
    seen = 0.0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= rank:
            lo, hi = bucket_range(i, max_us)
            return min((lo + hi) / 2, max_us)
    return max_us


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (and its waited-for children), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks


def redis_counters(r: redis.Redis) -> dict:
    stats, cpu = r.info("stats"), r.info("cpu")
    return {"out": int(stats["total_net_output_bytes"]), "in": int(stats["total_net_input_bytes"]),
            "cpu": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])}


def pubsub_view(r: redis.Redis, channels: list[str]) -> dict:
    """Redis's view of who gets a room's messages, taken outside the measured window.

    ``PUBSUB NUMSUB`` and ``SHARDNUMSUB`` for the room's channel(s), ``PUBSUB NUMPAT`` (unique
    patterns, not clients) and, from ``CLIENT LIST``, how many clients hold a
    channel (``sub``), pattern (``psub``) or shard-channel (``ssub``) subscription.
    """
    view = {f"numsub {(c.decode() if isinstance(c, bytes) else c)}": int(n)
            for c, n in r.pubsub_numsub(*channels)}
    flat = r.execute_command("PUBSUB", "SHARDNUMSUB", *channels)   # Redis >= 7
    view.update({f"shardnumsub {flat[i].decode()}": int(flat[i + 1])
                 for i in range(0, len(flat), 2)})
    view["numpat"] = int(r.pubsub_numpat())
    clients = r.client_list()
    for kind in ("sub", "psub", "ssub"):
        view[f"clients with {kind}"] = sum(1 for c in clients if int(c.get(kind) or 0) > 0)
    return view


class NumsubPeak(threading.Thread):
    """The peak of ``PUBSUB NUMSUB channel`` during the window, sampled every 0.5 s.

    Over a raw socket, so the bytes it costs Redis (its commands in, their
    replies out) are counted exactly and taken off the window's totals.
    """

    def __init__(self, port: int, channel: str) -> None:
        super().__init__(daemon=True)
        name = channel.encode()
        self.command = b"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n$%d\r\n%s\r\n" % (len(name), name)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.value = 0
        self.bytes_in = self.bytes_out = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            try:
                self.sock.sendall(self.command)
                self.bytes_in += len(self.command)
                reply = b""
                while reply.count(b"\r\n") < 4:    # *2, $len, name, :count
                    chunk = self.sock.recv(4096)
                    if not chunk:
                        return
                    reply += chunk
                self.bytes_out += len(reply)
                self.value = max(self.value, int(reply.rsplit(b":", 1)[1].strip()))
            except (OSError, ValueError, IndexError):
                return

    def __enter__(self) -> "NumsubPeak":
        self.start()
        return self

    def __exit__(self, *exc) -> bool:
        self.stop_event.set()
        self.join(10)
        self.sock.close()
        return False


class Window:
    """Redis's counters around a measured window, less what reading them costs."""

    def __init__(self, r: redis.Redis, port: int, channels: list[str]) -> None:
        self.r, self.channels = r, channels
        self.peak = NumsubPeak(port, channels[0])

    def __enter__(self) -> "Window":
        self.view_before = pubsub_view(self.r, self.channels)
        first, second = redis_counters(self.r), redis_counters(self.r)
        self.overhead = {k: second[k] - first[k] for k in ("out", "in")}   # one reading
        self.before = redis_counters(self.r)
        self.peak.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        self.peak.__exit__(*exc)
        self.after = redis_counters(self.r)
        self.after["out"] -= self.overhead["out"] + self.peak.bytes_out
        self.after["in"] -= self.overhead["in"] + self.peak.bytes_in
        view_after = pubsub_view(self.r, self.channels)
        self.view = {k: max(v, view_after.get(k, 0)) for k, v in self.view_before.items()}
        self.view[f"numsub {self.channels[0]} (peak in the window)"] = self.peak.value
        return False


def load_now() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)   # idle + iowait
    total = sum(values[:8])                                     # without guest time
    return total - idle, total


def busy_since(start: tuple[int, int]) -> float:
    """Percent of all CPUs busy (every process, ours included) since ``start``."""
    busy, total = cpu_times()
    return 100.0 * (busy - start[0]) / max(total - start[1], 1)


def busy_seconds_since(start: tuple[int, int]) -> float:
    """CPU seconds used on the whole machine (every process) since ``start``."""
    return (cpu_times()[0] - start[0]) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit: float, below: float = 50.0) -> float:
    """Wait (at most ``limit`` s) for a second in which the machine is under ``below``% busy."""
    deadline = time.monotonic() + limit
    while True:
        start = cpu_times()
        time.sleep(1.0)
        busy = busy_since(start)
        if busy < below or time.monotonic() >= deadline:
            return busy


# ---- wsframe ------------------------------------------------------------------------------------

def wsframe_run(args, rate: float, members: int, servers: int = 3, homes: int = 3) -> dict:
    """One run of backplane.py's "3 servers, --redis" case, with Redis's counters around it.

    ``servers`` are started; the members are split over the first ``homes`` of them.
    """
    procs = Processes()
    workdir = None
    try:
        port, workdir = start_redis(procs)
        r = redis.Redis(port=port)
        ports = start_servers(procs, servers, f"redis://127.0.0.1:{port}/0")
        servers = [p.pid for p in procs.procs[1:]]
        quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
        load_before, cpu_before = load_now(), [cpu_seconds(p) for p in servers]
        machine = cpu_times()
        # bench opens the members (and so the servers subscribe) inside the window and
        # closes them before it ends: NUMSUB is the peak sampled during the window
        with Window(r, port, [f"wsframe:room:{ROOM}"]) as window:
            started = time.monotonic()
            result = bench(ports[:homes], members, rate, args.duration, args.size)
            wall = time.monotonic() - started
            result["machine_busy_percent"] = busy_since(machine)
            result["machine_cpu_s"] = busy_seconds_since(machine)
            result["busy_before_percent"] = quiet
        result.update(_common_fields(result["messages_sent"], window.before, window.after,
                                     window.view,
                                     load_before,
                                     sum(cpu_seconds(p) for p in servers) - sum(cpu_before), wall))
        return result
    finally:
        stop_redis_last(procs)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def stop_redis_last(procs: Processes) -> None:
    """Stop the servers (and load) first, then the redis-server (started first), all by pid."""
    redis_proc, procs.procs = procs.procs[0], procs.procs[1:]
    procs.stop_all()
    procs.procs = [redis_proc]
    procs.stop_all()


def _common_fields(sent, r_before, r_after, pubsub, load_before, server_cpu, wall) -> dict:
    per = max(sent, 1)
    return {"messages_sent": sent,
            "redis_out_bytes_per_message": (r_after["out"] - r_before["out"]) / per,
            "redis_in_bytes_per_message": (r_after["in"] - r_before["in"]) / per,
            "redis_cpu_s": r_after["cpu"] - r_before["cpu"],
            "servers_cpu_s": server_cpu, "wall_s": wall,
            "pubsub": pubsub, "load_before": load_before, "load_after": load_now()}


# ---- Socket.IO ----------------------------------------------------------------------------------

class LineProcess:
    """A Node script whose stdout is JSON lines, read by a thread; stdin kept for commands."""

    def __init__(self, procs: Processes, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, cwd=PEER, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        procs.procs.append(self.proc)
        self.lines: list = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            try:
                item = json.loads(line)
            except ValueError:
                item = line
            with self.cond:
                self.lines.append(item)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)   # end of output
            self.cond.notify_all()

    def wait_for(self, predicate, timeout: float):
        """The first line (seen or to come) for which ``predicate`` holds; None at EOF/timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            index = 0
            while True:
                while index < len(self.lines):
                    item = self.lines[index]
                    index += 1
                    if item is None:
                        return None
                    if predicate(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def latest(self, key: str):
        with self.cond:
            for item in reversed(self.lines):
                if isinstance(item, dict) and key in item:
                    return item
        return None

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass


def socketio_run(args, adapter: str, rate: float, members: int, servers: int = 3,
                 homes: int = 3) -> dict:
    """The same case with Socket.IO: ``servers`` started, members split over the first ``homes``.

    ``adapter`` "classic" or "sharded" (Socket.IO servers); "wsframe": ``wsframe serve
    --redis`` servers with the same Node load, plain ``ws`` clients on room URLs.
    """
    procs = Processes()
    workdir = None
    try:
        port, workdir = start_redis(procs)
        r = redis.Redis(port=port)
        url = f"redis://127.0.0.1:{port}"
        if adapter == "wsframe":
            ports = start_servers(procs, servers, url + "/0")
            server_pids = [p.pid for p in procs.procs[1:]]
            urls = [f"ws://127.0.0.1:{p}/room/{ROOM}" for p in ports]
            client, channel = "ws", f"wsframe:room:{ROOM}"
        else:
            nodes = []
            for _ in range(servers):
                sp = free_port()
                nodes.append((sp, LineProcess(procs, ["node", "server.js", "--port", str(sp),
                                                      "--redis", url, "--adapter", adapter])))
            for sp, server in nodes:
                if server.wait_for(lambda item: item == "ready", 30) is None:
                    raise RuntimeError(f"the Socket.IO server on {sp} did not start")
            server_pids = [s.proc.pid for _, s in nodes]
            urls = [f"http://127.0.0.1:{sp}" for sp, _ in nodes]
            # the room's channel: a PUBLISH target matched by every server's PSUBSCRIBE
            # (classic) or SSUBSCRIBE-d by the servers with members (sharded, dynamic)
            client, channel = "socketio", f"socket.io#/#{ROOM}#"
        k = args.receiver_processes
        # members split evenly: process i connects round-robin over the homes from home
        # i % homes on, so each home gets members/homes in total
        shares = [members // k + (1 if i < members % k else 0) for i in range(k)]
        receivers = []
        for i, share in enumerate(shares):
            if not share:
                continue
            rotated = urls[i % homes:homes] + urls[:i % homes]
            receivers.append(LineProcess(procs, [
                "node", "receivers.js", "--urls", ",".join(rotated), "--count", str(share),
                "--room", ROOM, "--rate", str(max(100, 2000 // k)), "--client", client,
                "--timeout", str(int(args.duration + 240))]))
        opened = [rv.wait_for(lambda item: isinstance(item, dict) and "open" in item, 120)
                  for rv in receivers]
        members = sum(o["open"] for o in opened if o)   # those that did open
        time.sleep(1.0)   # joins are local to each server; let the last handshakes settle
        quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
        load_before = load_now()
        machine = cpu_times()
        load_pids = [rv.proc.pid for rv in receivers]
        cpu_before = [cpu_seconds(p) for p in server_pids]
        load_cpu_before = sum(cpu_seconds(p) for p in load_pids)
        with Window(r, port, [channel]) as measured:
            started = time.monotonic()
            publisher = LineProcess(procs, ["node", "publisher.js", "--url", urls[0], "--room",
                                            ROOM, "--rate", str(rate), "--duration",
                                            str(args.duration), "--size", str(args.size),
                                            "--client", client])
            first = publisher.wait_for(lambda item: isinstance(item, dict) and "start_ns" in item,
                                       30)
            done = publisher.wait_for(lambda item: isinstance(item, dict)
                                      and "messages_sent" in item, args.duration + 90)
            if first is None or done is None:
                raise RuntimeError("the Socket.IO publisher did not run")
            # deliveries go on after the publisher stops: count until every one has come or
            # none has for SETTLE s (bench waits 1 s; more here, so that a Node process the
            # loaded machine did not schedule for a second is not cut off)
            expected = done["messages_sent"] * members
            last_total, last_change = -1, time.monotonic()
            while (time.monotonic() - last_change < SETTLE and last_total < expected
                   and time.monotonic() - started < args.duration + 120):
                time.sleep(0.1)
                total = sum((rv.latest("last_ns") or {}).get("received", 0) for rv in receivers)
                if total != last_total:
                    last_total, last_change = total, time.monotonic()
            wall = time.monotonic() - started
            machine_busy, machine_cpu = busy_since(machine), busy_seconds_since(machine)
        server_cpu = sum(cpu_seconds(p) for p in server_pids) - sum(cpu_before)
        load_cpu = sum(cpu_seconds(p) for p in load_pids)   # whole life, as bench's fleet reports
        load_cpu_window = load_cpu - load_cpu_before
        for rv in receivers:
            rv.send("stop")
        finals = [rv.wait_for(lambda item: isinstance(item, dict) and item.get("final"), 30)
                  for rv in receivers]
        if any(f is None for f in finals):
            raise RuntimeError("a receiver process gave no report")
        hist: dict[int, float] = {}
        for f in finals:
            for i, n in f["hist"]:
                hist[i] = hist.get(i, 0) + n
        count = sum(f["count"] for f in finals)
        max_us = max(f["max_ns"] for f in finals) / 1000
        delivered = sum(f["received"] for f in finals)
        last_ns = max(int(f["last_ns"]) for f in finals)
        window = max((last_ns - int(first["start_ns"])) / 1e9, done["elapsed"])
        sent = done["messages_sent"]
        result = {"deliveries_per_second": delivered / max(window, 1e-9), "delivered": delivered,
                  "expected": sent * members, "members": members, "window_s": window,
                  "p50_ms": percentile(hist, count, max_us, 0.50) / 1000,
                  "p99_ms": percentile(hist, count, max_us, 0.99) / 1000,
                  "max_ms": max_us / 1000, "load_cpu_s": load_cpu,
                  "publisher_elapsed_s": done["elapsed"], "machine_busy_percent": machine_busy,
                  "machine_cpu_s": machine_cpu, "load_cpu_window_s": load_cpu_window,
                  "busy_before_percent": quiet}
        result.update(_common_fields(sent, measured.before, measured.after, measured.view,
                                     load_before, server_cpu, wall))
        return result
    finally:
        stop_redis_last(procs)   # the Node servers unsubscribe while Redis is still up
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


# ---- the report ---------------------------------------------------------------------------------

KEYS = ("deliveries_per_second", "p50_ms", "p99_ms", "drain_s", "redis_out_bytes_per_message",
        "redis_in_bytes_per_message", "servers_cpu_us_per_delivery", "servers_cpu_s",
        "redis_cpu_s", "load_cpu_s", "machine_busy_percent", "others_cores")


def summarize(name: str, rate: float, runs: list[dict]) -> dict:
    """The median of each number over the runs, and whether every run delivered everything."""
    for r in runs:
        r["drain_s"] = max(0.0, r["window_s"] - r["publisher_elapsed_s"])
        # what other work on the machine used meanwhile, in cores: everything busy less this
        # run's servers, Redis and load (the publisher and the driver not counted: an overestimate)
        ours = r["servers_cpu_s"] + r["redis_cpu_s"] + r.get("load_cpu_window_s", r["load_cpu_s"])
        r["others_cores"] = max(0.0, r["machine_cpu_s"] - ours) / max(r["wall_s"], 1e-9)
        r["servers_cpu_us_per_delivery"] = 1e6 * r["servers_cpu_s"] / max(r["delivered"], 1)
    row = {"case": name, "rate": rate, "runs": runs,
           **{key: statistics.median(r[key] for r in runs) for key in KEYS},
           "members": min(r["members"] for r in runs),
           "delivered_all": all(r["delivered"] == r["expected"] for r in runs),
           "delivered_fraction": min(r["delivered"] / max(r["expected"], 1) for r in runs),
           "load_range": [min(r["load_before"][0] for r in runs),
                          max(r["load_after"][0] for r in runs)],
           "pubsub": runs[-1]["pubsub"]}
    # how many Redis clients each PUBLISH/SPUBLISH reaches: channel subscribers (peak in the
    # window), pattern subscribers, shard-channel subscribers of the room's channel
    view = row["pubsub"]
    row["redis_sends_to"] = (sum(v for k, v in view.items() if k.endswith("(peak in the window)"))
                             + view.get("clients with psub", 0)
                             + sum(v for k, v in view.items() if k.startswith("shardnumsub")))
    return row


def markdown(rows: list[dict]) -> str:
    """The table for RESULTS.md (medians over the runs)."""
    lines = ["| case | members | rate | deliveries/s | p50 | p99 | drain after last publish "
             "| all delivered | servers' CPU per delivery | Redis sends each message to "
             "| Redis out / message | Redis in / message | machine busy (other work) "
             "| load avg (1 min) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: "
             "| ---: | --- |"]
    for row in rows:
        share = 100 * row["delivered_fraction"]
        all_delivered = "yes" if row["delivered_all"] else f"no (worst run {share:.1f}%)"
        reach = f"{row['redis_sends_to']} server" + ("" if row["redis_sends_to"] == 1 else "s")
        lines.append(
            f"| {row['case']} | {row['members']:,} | {row['rate']:g}/s "
            f"| {row['deliveries_per_second']:,.0f} "
            f"| {row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms | {row['drain_s']:.1f} s "
            f"| {all_delivered} "
            f"| {row['servers_cpu_us_per_delivery']:.1f} us | {reach} "
            f"| {row['redis_out_bytes_per_message']:.0f} B "
            f"| {row['redis_in_bytes_per_message']:.0f} B | {row['machine_busy_percent']:.0f}% "
            f"({row['others_cores']:.1f} cores) "
            f"| {row['load_range'][0]:.1f}-{row['load_range'][1]:.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--members", type=int, default=1500)
    parser.add_argument("--rates", default="100",
                        help="messages per second from the publisher, comma-separated (each rate "
                             "is a row per case)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--receiver-processes", type=int, default=3,
                        help="Node processes for the Socket.IO room's members")
    parser.add_argument("--sharded", action="store_true",
                        help="also run Socket.IO with createShardedAdapter (dynamic subscriptions)")
    parser.add_argument("--node-ws", action="store_true",
                        help="also run wsframe with the Socket.IO case's Node load (members and "
                             "publisher as plain ws clients), to tell servers from load apart")
    parser.add_argument("--only", choices=("wsframe", "socketio"),
                        help="run one side only (for trying things out; the table needs both)")
    parser.add_argument("--traffic-servers", type=int, default=10, metavar="N",
                        help="also run N servers with the room's members all on the first "
                             "(Redis traffic per message; 0: skip)")
    parser.add_argument("--traffic-members", type=int, default=100)
    parser.add_argument("--traffic-rate", type=float, default=100.0)
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help="before each run, wait up to S s for a second with the machine "
                             "under 50%% busy (other work may share it)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    rates = [float(x) for x in args.rates.split(",") if x]
    if args.size < 24 or args.members < 1 or args.runs < 1 or not rates or min(rates) <= 0:
        parser.error("need --size >= 24, --members >= 1, --runs >= 1 and positive --rates")
    for tool in ("redis-server", "node"):
        if shutil.which(tool) is None:
            print(f"error: {tool} is not installed")
            return 2
    if not (PEER / "node_modules" / "socket.io").is_dir():
        print(f"error: run `npm ci` in {PEER} first")
        return 2
    def cases(servers: int, homes: int, members: int):
        where = f"{servers} servers" + (f", members on {homes}" if homes != servers else "")
        found = [(f"wsframe: serve --redis, {where}",
                  lambda rate: wsframe_run(args, rate, members, servers, homes)),
                 (f"Socket.IO: redis-adapter, {where}",
                  lambda rate: socketio_run(args, "classic", rate, members, servers, homes))]
        if args.sharded:
            found.append((f"Socket.IO: sharded adapter, {where}",
                          lambda rate: socketio_run(args, "sharded", rate, members, servers,
                                                    homes)))
        if args.node_ws:
            found.append((f"wsframe: serve --redis, Node ws members, {where}",
                          lambda rate: socketio_run(args, "wsframe", rate, members, servers,
                                                    homes)))
        return [c for c in found if not args.only
                or c[0].lower().replace(".", "").startswith(args.only)]

    plan = [(rate, cases(3, 3, args.members)) for rate in rates]
    if args.traffic_servers:   # the same with many servers, the room's members on one of them
        plan.append((args.traffic_rate, cases(args.traffic_servers, 1, args.traffic_members)))
    rows = []
    for rate, these in plan:
        runs: dict[str, list[dict]] = {name: [] for name, _ in these}
        for i in range(args.runs):   # alternate the cases, so drift in the load hits all alike
            for name, run in these:
                runs[name].append(run(rate))
                last = runs[name][-1]
                print(f"  {rate:g}/s run {i + 1} {name}: {last['deliveries_per_second']:,.0f}/s "
                      f"p50 {last['p50_ms']:.2f} p99 {last['p99_ms']:.2f} ms "
                      f"delivered {last['delivered']:,}/{last['expected']:,} "
                      f"servers CPU {last['servers_cpu_s']:.1f} s "
                      f"load {last['load_before'][0]}-{last['load_after'][0]}", flush=True)
        rows += [summarize(name, rate, runs[name]) for name, _ in these]
    table = markdown(rows)
    print(table)
    versions = json.loads((PEER / "package-lock.json").read_text())["packages"]
    report = {"commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                                       capture_output=True, text=True).stdout.strip(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "args": vars(args),
              "argv": sys.argv,
              "node": subprocess.run(["node", "--version"], capture_output=True,
                                     text=True).stdout.strip(),
              "redis": subprocess.run(["redis-server", "--version"], capture_output=True,
                                      text=True).stdout.strip(),
              "packages": {name.split("node_modules/", 1)[1]: info["version"]
                           for name, info in versions.items()
                           if name.count("node_modules/") == 1 and "version" in info},
              "cases": rows, "table": table}
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
