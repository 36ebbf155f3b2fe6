"""``wsframe bench``: measure any WebSocket server's ceilings.

    wsframe bench capacity [URL] --connections 19000 --hold 60
    wsframe bench echo [URL] --connections 100 --inflight 16 --size 32
    wsframe bench broadcast [URL] --members 10000 --rate 1000 --size 64

Without a URL it starts ``wsframe serve`` itself (and so knows its process);
with a URL it drives any server (``--pid`` lets it read that server's memory
and file descriptors). The load comes from the C engine in worker processes,
loopback only unless ``--allow-remote``; every run has a time limit.
"""
from __future__ import annotations

import argparse
import ipaddress
import math
import time
from typing import Optional

from wsframe.tools.args import size
from wsframe.tools.bench.display import Progress, plot, print_table, write_json
from wsframe.tools.bench.fleet import ENGINE_MISSING, Fleet, engine_available, merge_results
from wsframe.tools.bench.probes import Sample, cheap_ports_per_source, cpu_seconds, tcp_sockstat
from wsframe.tools.bench.target import Target, parse_target, start_own_server

__all__ = ["add_bench_parser", "bench_main"]

PER_PROCESS = 15000  # connections per worker; each worker raises its fd limit to the hard one


def add_bench_parser(commands) -> None:
    bench = commands.add_parser("bench", help="measure a WebSocket server: capacity, echo, "
                                "broadcast")
    modes = bench.add_subparsers(dest="bench_mode", metavar="MODE", required=True)

    def common(parser, default_path):
        parser.add_argument("url", nargs="?", help=f"ws://HOST:PORT{default_path} "
                            "(default: start wsframe serve)")
        parser.add_argument("--pid", type=int, help="the server's process id (memory, fds, CPU)")
        parser.add_argument("--server-args", default="", help="extra args for our own server")
        parser.add_argument("--processes", type=int, default=0, help="load worker processes")
        parser.add_argument("--sources", default="",
                            help="source addresses, e.g. 127.0.0.2-127.0.0.9 (default: auto)")
        parser.add_argument("--server-cpu", type=int, help="pin our own server to this CPU")
        parser.add_argument("--load-cpus", default="", help="pin load workers, e.g. 1 or 1,2,3")
        parser.add_argument("--time-limit", type=float, default=600.0,
                            help="hard stop for the whole run, seconds (default 600)")
        parser.add_argument("--allow-remote", action="store_true",
                            help="allow a non-loopback target")
        parser.add_argument("--json", metavar="FILE", help="write the report as JSON ('-': stdout)")
        parser.add_argument("--plot", metavar="FILE.png", help="draw RSS or latency (matplotlib)")

    capacity = modes.add_parser("capacity", help="open connections until a target or a limit")
    common(capacity, "/")
    capacity.add_argument("--connections", type=int, default=10000)
    capacity.add_argument("--rate", type=float, default=2000.0, help="connects per second")
    capacity.add_argument("--hold", type=float, default=30.0,
                          help="seconds to hold them (heartbeats answered)")
    capacity.add_argument("--handshake-timeout", type=float, default=10.0)
    capacity.add_argument("--room-size", type=int, default=0, metavar="N",
                          help="every connection joins a room of N members: path "
                          "/room/p<process>-<room> (rooms in use; with --workers each room "
                          "lives on its owner worker)")

    echo = modes.add_parser("echo", help="round trips: N connections, D messages in flight")
    common(echo, "/")
    echo.add_argument("--connections", type=int, default=100)
    echo.add_argument("--inflight", type=int, default=1)
    echo.add_argument("--size", type=size, default=32)
    echo.add_argument("--binary", action="store_true")
    echo.add_argument("--duration", type=float, default=10.0)
    echo.add_argument("--warmup", type=float, default=1.0)

    broadcast = modes.add_parser("broadcast", help="a room of N members and a publisher")
    common(broadcast, "/room/bench")
    broadcast.add_argument("--members", type=int, default=1000)
    broadcast.add_argument("--rate", type=float, default=100.0,
                           help="messages per second offered (0: as fast as possible)")
    broadcast.add_argument("--size", type=size, default=64)
    broadcast.add_argument("--duration", type=float, default=10.0)
    broadcast.add_argument("--members-at", action="append", default=[], metavar="URL",
                           help="also put members on this server (repeat: members are split "
                           "evenly over URL and these; rooms shared through a backplane)")
    broadcast.add_argument("--publisher-at", metavar="URL",
                           help="the publisher's server (default: URL)")


def bench_main(args: argparse.Namespace) -> int:
    if not engine_available():
        print(f"error: {ENGINE_MISSING}")
        return 2
    default_path = "/room/bench" if args.bench_mode == "broadcast" else "/"
    try:
        if args.url:
            target = parse_target(args.url, default_path, args.allow_remote)
            target.pid = args.pid
        else:
            target = start_own_server(default_path, args.server_args, args.server_cpu)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}")
        return 2
    try:
        run = {"capacity": capacity, "echo": echo, "broadcast": broadcast}[args.bench_mode]
        report = run(args, target)
    except ValueError as exc:   # a bad --members-at URL, a plan the machine cannot hold
        print(f"error: {exc}")
        return 2
    finally:
        target.stop()
    report["server"] = target.label
    if args.json:
        write_json(report, args.json)
    if args.plot:
        error = plot(report, args.plot)
        if error:
            print(f"note: {error}")
    return 0 if report.get("ok", True) else 1


# ---- helpers shared by the modes ---------------------------------------------------------

def _sources(args, shares: list[int]) -> list[list[str]]:
    """Source addresses for each load process, one list per entry of ``shares``.

    By default every process gets addresses of its own (127.0.0.2 upwards), as many
    as keep each one under :func:`cheap_ports_per_source` connections (the engine
    uses a process's addresses in turn): past half the ephemeral range a
    ``connect()`` costs some 40 times more, and a load process busy connecting
    answers neither handshakes nor heartbeats in time. ``--sources A-B`` splits
    that pool over the processes instead (with a note when it is too small).
    """
    per_source = cheap_ports_per_source()
    if args.sources:
        first, _, last = args.sources.partition("-")
        base = first.rsplit(".", 1)[0]
        lo, hi = int(first.rsplit(".", 1)[1]), int((last or first).rsplit(".", 1)[1])
        pool = [f"{base}.{i}" for i in range(lo, hi + 1)]
        out = [pool[i::len(shares)] or pool for i in range(len(shares))]
        busiest = max(math.ceil(share / len(src)) for share, src in zip(shares, out))
        if busiest > per_source:
            print(f"note: up to {busiest:,} connections per source address; past "
                  f"{per_source:,} each connect() is much slower (give more --sources)")
        return out
    counts = [max(1, math.ceil(share / per_source)) for share in shares]
    if sum(counts) > 65536 * 254 - 1:   # 127.0.0.2 - 127.255.255.254, no .0 or .255
        raise ValueError("more connections than 127.0.0.0/8 has source addresses for")
    out, host = [], 2
    for count in counts:
        addresses = []
        while len(addresses) < count:
            if host % 256 not in (0, 255):
                addresses.append(str(ipaddress.IPv4Address(0x7F000000 + host)))
            host += 1
        out.append(addresses)
    return out


def _sources_line(shares: list[int], sources: list[list[str]]) -> str:
    count = sum(len(src) for src in sources)
    busiest = max(math.ceil(share / len(src)) for share, src in zip(shares, sources))
    return (f"{count} ({sources[0][0]} ...), at most {busiest:,} connections each "
            f"(cheap ports per address: {cheap_ports_per_source():,})")


def _cpus(args) -> list[int]:
    return [int(c) for c in args.load_cpus.split(",") if c.strip()] if args.load_cpus else []


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _load_line(merged: dict, wall: float) -> str:
    cpu = merged["cpu_user"] + merged["cpu_system"]
    return (f"{cpu:.1f} s CPU over {wall:.1f} s in {merged['workers']} process(es) "
            f"({100 * cpu / max(wall, 1e-9) / max(merged['workers'], 1):.0f}% of a core each)")


def _server_cpu_line(target: Target, before: float, wall: float) -> str:
    if not target.pid:
        return "unknown (no --pid)"
    used = cpu_seconds(target.pid) - before
    return f"{used:.1f} s CPU over {wall:.1f} s ({100 * used / max(wall, 1e-9):.0f}% of a core)"


def _server_cpu(target: Target, before: float) -> Optional[float]:
    return cpu_seconds(target.pid) - before if target.pid else None


def _fmt_latency(latency: dict) -> str:
    if not latency:
        return "no samples"
    return " / ".join(f"{k} {latency[k] / 1000:.2f} ms" for k in ("p50", "p90", "p99", "p999"))


def _cluster_health(target: Target) -> Optional[dict]:
    """Our own server's ``/health`` when it runs workers (None otherwise)."""
    import json
    import socket
    try:
        with socket.create_connection((target.host, target.port), timeout=2) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
            raw = b""
            while len(raw) < 1 << 20:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
        report = json.loads(raw.partition(b"\r\n\r\n")[2])
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and "workers" in report else None


# ---- capacity -----------------------------------------------------------------------------------

def capacity(args, target: Target) -> dict:
    processes = args.processes or max(1, math.ceil(args.connections / PER_PROCESS))
    shares = _split(args.connections, processes)
    sources = _sources(args, shares)
    ramp_seconds = args.connections / max(args.rate, 1)
    room_size = getattr(args, "room_size", 0)
    specs = [dict(host=target.host, port=target.port, mode="hold",
                  path=f"/room/p{index}-{{room}}" if room_size > 0 else target.path,
                  connections=share, ramp_rate=args.rate / processes, duration=args.hold,
                  warmup=0.0, source_addresses=tuple(src), handshake_timeout=args.handshake_timeout,
                  **({"room_size": room_size} if room_size > 0 else {}))
             for index, (share, src) in enumerate(zip(shares, sources))]
    baseline = Sample(0.0, 0, target.pid)
    sock_before = tcp_sockstat()
    fleet = Fleet(specs, cpus=_cpus(args)).start()
    progress = Progress()
    samples, peak = [baseline], baseline
    kernel = []   # (connections, TCP memory, TCP sockets in use) per sample, machine-wide
    start = time.monotonic()
    deadline = start + min(args.time_limit, ramp_seconds * 3 + args.hold + 60)
    server_died = False
    health_at, health_peak = start, {}   # our own server's /health with workers
    while fleet.running() and time.monotonic() < deadline:
        time.sleep(0.5)
        totals = fleet.totals()
        sample = Sample(time.monotonic() - start, totals["open"], target.pid)
        samples.append(sample)
        sockstat = tcp_sockstat()
        kernel.append((sample.connections, sockstat.get("mem_bytes", 0), sockstat.get("inuse", 0)))
        if sample.connections >= peak.connections:
            peak, sock_peak = sample, sockstat
        if target.process is not None and time.monotonic() - health_at >= 5.0:
            health_at = time.monotonic()
            snapshot = _cluster_health(target)
            if snapshot and snapshot["totals"]["connections"] > health_peak.get(
                    "totals", {}).get("connections", -1):   # the first at the most, not the close
                health_peak = snapshot
        rate = totals["attempted"] / max(sample.t, 1e-9)
        progress.update(f"open {totals['open']:,} / {args.connections:,}  failed "
                        f"{totals['failed']:,}  attempts {rate:,.0f}/s"
                        + (f"  RSS {sample.rss / 2**20:,.0f} MiB" if target.pid else ""))
        if not target.alive():
            server_died = True
            fleet.stop()
    if time.monotonic() >= deadline:
        fleet.stop()
    results = fleet.results()
    progress.done()
    merged = merge_results(results)
    wall = time.monotonic() - start
    # Each worker counts its own peak; in a capacity run nothing closes while others
    # open, so their sum is the most connections open at once (sampling can miss it).
    ceiling = max(peak.connections, merged["peak_open"])
    reason = _stop_reason(merged, args.connections, server_died)
    per_connection = ((peak.rss - baseline.rss) / ceiling) if target.pid and ceiling else None
    sock_peak = locals().get("sock_peak", sock_before)
    rows = [
        ("target", f"{args.connections:,} connections at {args.rate:,.0f}/s, held {args.hold:g} s"),
        ("ceiling reached", f"{ceiling:,} open at once ({merged['connected']:,} handshakes)"),
        ("stopped because", reason),
        ("connect rate", f"{merged['connected'] / max(merged['connect_seconds'], 1e-9):,.0f}/s"),
        ("survivors after hold", f"{merged['survivors']:,} (pings answered: "
                                 f"{merged['pings_answered']:,})"),
        ("failures", ", ".join(f"{k} {v:,}" for k, v in sorted(merged["failed"].items()))
         or "none"),
    ]
    held = [s for s in samples if s.connections >= 0.99 * ceiling and ceiling]
    if target.pid:
        rows += [
            ("server RSS", f"{baseline.rss / 2**20:,.1f} MiB -> {peak.rss / 2**20:,.1f} MiB"),
            ("RSS while held", f"{held[0].rss / 2**20:,.1f} MiB at {held[0].t:.0f} s -> "
                               f"{held[-1].rss / 2**20:,.1f} MiB at {held[-1].t:.0f} s "
                               f"({(held[-1].rss - held[0].rss) / 2**20:+,.1f} MiB)"
             if held else "n/a"),
            ("RSS per connection", f"{per_connection:,.0f} B ({per_connection / 1024:.2f} KiB)"
             if per_connection else "n/a"),
            ("server fds", f"{baseline.fds:,} -> {peak.fds:,}"),
            ("server CPU", _server_cpu_line(target, baseline.cpu, wall)),
        ]
    if health_peak:
        workers = health_peak["workers"]
        rows.append(("workers", f"{len(workers)}: connections "
                     + " / ".join(f"{w['connections']:,}" for w in workers)
                     + f"; rooms {health_peak['totals']['rooms']:,}; restarts "
                     f"{health_peak['totals']['restarts']}"))
    if room_size > 0:
        rows.append(("rooms", f"{math.ceil(args.connections / room_size):,} of {room_size}"
                     + (" (each on the worker that owns it)" if health_peak else "")))
    rows += [
        ("kernel TCP memory", _kernel_line(kernel, ceiling, sock_before)),
        ("source addresses", _sources_line(shares, sources)),
        ("load side", _load_line(merged, wall)),
    ]
    print_table(f"capacity: {target.label or target.url}", rows)
    return {"mode": "capacity", "url": target.url, "connections_target": args.connections,
            "ceiling": ceiling, "stop_reason": reason, "rss_per_connection": per_connection,
            "baseline": baseline.as_dict(), "peak": peak.as_dict(),
            "held_first": held[0].as_dict() if held else None,
            "held_last": held[-1].as_dict() if held else None,
            "samples": [s.as_dict() for s in samples], "result": merged,
            "sockstat_before": sock_before, "sockstat_peak": sock_peak,
            "kernel_samples": kernel,
            "cluster_health": health_peak or None, "sources": sources,
            "ok": not server_died and merged["connected"] > 0}


def _kernel_line(kernel: list, ceiling: int, before: dict) -> str:
    """/proc/net/sockstat's TCP memory while the connections were held (it swings with
    the data in flight, e.g. a round of heartbeat Pings, so the median and the most)."""
    held = [mem for conns, mem, _ in kernel if ceiling and conns >= 0.99 * ceiling]
    # The last of them can fall after the load began closing (its counters lag a loop
    # turn) and then counts every Close frame in flight: not the held state.
    held = sorted(held[:-1] if len(held) > 1 else held)
    inuse = max((n for _, _, n in kernel), default=0)
    if not held:
        return "n/a"
    return (f"median {held[len(held) // 2] / 2**20:,.1f} MiB, most {held[-1] / 2**20:,.1f} MiB "
            f"while held (before: {before.get('mem_bytes', 0) / 2**20:,.1f} MiB; TCP sockets "
            f"in use {before.get('inuse', 0):,} -> {inuse:,}; machine-wide, load side "
            "included; not in any RSS)")


def _stop_reason(merged: dict, wanted: int, server_died: bool) -> str:
    if server_died:
        return "the server process died"
    if merged["connected"] >= wanted and not merged["failed"]:
        return "target reached"
    if merged["failed"]:
        reason, count = max(merged["failed"].items(), key=lambda kv: kv[1])
        return f"{reason} ({count:,} times)"
    if merged["errors"]:
        return merged["errors"][0]
    return "time limit"


# ---- echo ---------------------------------------------------------------------------------------

def echo(args, target: Target) -> dict:
    processes = args.processes or 1
    shares = _split(args.connections, processes)
    specs = [dict(host=target.host, port=target.port, path=target.path, mode="echo",
                  connections=share, inflight=args.inflight, size=args.size,
                  text=not args.binary, duration=args.duration, warmup=args.warmup,
                  source_addresses=tuple(src))
             for share, src in zip(shares, _sources(args, shares))]
    before = cpu_seconds(target.pid) if target.pid else 0.0
    merged, wall = _run_with_progress(specs, args, args.duration + args.warmup)
    rate = merged["messages_received"] / max(merged["elapsed"], 1e-9)
    rows = [
        ("load", f"{args.connections} connections x {args.inflight} in flight x "
                 f"{args.size} B {'binary' if args.binary else 'text'}, {args.duration:g} s"),
        ("throughput", f"{rate:,.0f} messages/s ({merged['bytes_received'] / max(merged['elapsed'], 1e-9) / 2**20:,.1f} MiB/s received)"),
        ("round trip", _fmt_latency(merged["latency_us"])),
        ("failures", ", ".join(f"{k} {v:,}" for k, v in merged["failed"].items()) or "none"),
        ("server CPU", _server_cpu_line(target, before, wall)),
        ("load side", _load_line(merged, wall)),
    ]
    print_table(f"echo: {target.label or target.url}", rows)
    return {"mode": "echo", "url": target.url, "messages_per_second": rate,
            "server_cpu_s": _server_cpu(target, before), "wall_s": wall,
            "latency_us": merged["latency_us"], "result": merged,
            "ok": merged["messages_received"] > 0}


def _run_with_progress(specs: list[dict], args, planned: float) -> tuple[dict, float]:
    fleet = Fleet(specs, cpus=_cpus(args)).start()
    progress = Progress()
    start = time.monotonic()
    deadline = start + min(args.time_limit, planned + 60)
    while fleet.running() and time.monotonic() < deadline:
        time.sleep(0.25)
        totals = fleet.totals()
        progress.update(f"open {totals['open']:,}  received {totals['received']:,}  "
                        f"failed {totals['failed']:,}")
    if fleet.running():
        fleet.stop()
    merged = merge_results(fleet.results())
    progress.done()
    return merged, time.monotonic() - start


# ---- broadcast --------------------------------------------------------------------------------

def broadcast(args, target: Target) -> dict:
    processes = args.processes or max(1, math.ceil(args.members / PER_PROCESS))
    ramp = args.members / 5000.0
    homes = [target] + [parse_target(url, target.path, args.allow_remote)
                        for url in args.members_at]
    processes = max(processes, len(homes))   # at least one load process per server
    shares = _split(args.members, processes)
    sources = _sources(args, shares + [1])   # the publisher's address comes last
    subscribers = [dict(host=home.host, port=home.port, path=home.path, mode="subscribe",
                        connections=share, size=args.size, warmup=0.0,
                        duration=ramp + args.duration + 30, source_addresses=tuple(src))
                   for i, (share, src) in enumerate(zip(shares, sources[:processes]))
                   for home in [homes[i % len(homes)]]]
    publisher_at = (parse_target(args.publisher_at, target.path, args.allow_remote)
                    if args.publisher_at else target)
    before = cpu_seconds(target.pid) if target.pid else 0.0
    fleet = Fleet(subscribers, cpus=_cpus(args)).start()
    progress = Progress()
    start = time.monotonic()
    while fleet.totals()["open"] + fleet.totals()["failed"] < args.members:
        if time.monotonic() - start > min(args.time_limit, ramp * 3 + 30) or not fleet.running():
            break
        time.sleep(0.2)
        progress.update(f"members open {fleet.totals()['open']:,} / {args.members:,}")
    members = fleet.totals()["open"]
    publisher = Fleet([dict(host=publisher_at.host, port=publisher_at.port,
                            path=publisher_at.path, mode="publish", connections=1, size=args.size, rate=args.rate,
                            duration=args.duration, warmup=0.0,
                            source_addresses=tuple(sources[-1]))], cpus=_cpus(args)).start()
    # The span starts at the first message sent, not when the publisher's process
    # was started (spawning it and its handshake are not publishing time).
    launched = time.monotonic()
    while (publisher.totals()["sent"] == 0 and publisher.running()
           and time.monotonic() - launched < 30):
        time.sleep(0.01)
    published_from = last_change = time.monotonic()
    received_at_start = last = fleet.totals()["received"]
    while publisher.running() and time.monotonic() - published_from < args.duration + 30:
        time.sleep(0.1)
        now_received = fleet.totals()["received"]
        if now_received != last:
            last, last_change = now_received, time.monotonic()
        got = now_received - received_at_start
        progress.update(f"members {members:,}  delivered {got:,} "
                        f"({got / max(time.monotonic() - published_from, 1e-9):,.0f}/s)")
    sent = merge_results(publisher.results())
    # Deliveries go on after the publisher stops (queues drain): count until they stop,
    # and measure the rate over that whole span, not just the publishing window.
    while time.monotonic() - last_change < 1.0 and time.monotonic() - published_from < 120:
        time.sleep(0.1)
        now_received = fleet.totals()["received"]
        if now_received != last:
            last, last_change = now_received, time.monotonic()
    fleet.stop()
    merged = merge_results(fleet.results())
    progress.done()
    wall = time.monotonic() - start
    window = max(last_change - published_from, sent["elapsed"] or args.duration)
    expected = sent["messages_sent"] * members
    rows = [
        ("room", f"{members:,} members (asked {args.members:,}) at {target.path}"
                 + (f" on {len(homes)} servers" if len(homes) > 1 else "")),
        ("offered", f"{sent['messages_sent']:,} messages of {args.size} B in "
                    f"{sent['elapsed']:.1f} s ({sent['messages_sent'] / max(sent['elapsed'], 1e-9):,.0f}/s; "
                    f"{'as fast as possible' if not args.rate else f'asked {args.rate:g}/s'})"),
        ("delivered", f"{merged['messages_received']:,} of {expected:,} "
                      f"({100 * merged['messages_received'] / max(expected, 1):.1f}%)"),
        ("deliveries per second", f"{merged['messages_received'] / max(window, 1e-9):,.0f} "
                                  f"(over {window:.1f} s, until the last delivery)"),
        ("delivery latency", _fmt_latency(merged["latency_us"])),
        ("server CPU", _server_cpu_line(target, before, wall)),
        ("load side", _load_line(merged, wall)),
    ]
    print_table(f"broadcast: {target.label or target.url}", rows)
    return {"mode": "broadcast", "url": target.url, "members": members,
            "server_cpu_s": _server_cpu(target, before), "wall_s": wall,
            "messages_sent": sent["messages_sent"], "window": window,
            "deliveries": merged["messages_received"],
            "deliveries_per_second": merged["messages_received"] / max(window, 1e-9),
            "latency_us": merged["latency_us"], "result": merged, "publisher": sent,
            "ok": merged["messages_received"] > 0}
