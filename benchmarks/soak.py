"""Soak: hold many connections against ``wsframe serve`` for a long time, under mixed load.

    python benchmarks/soak.py                                  # 15,000 for 900 s
    python benchmarks/soak.py --connections 2000 --duration 90 --json soak.json --plot soak.png

It starts its own ``wsframe serve`` (heartbeat on: 30 s, 5 s timeout) on a
free loopback port and, at once:

* holds ``--connections`` connections in rooms of ``--room-size`` (connection
  i on ``/room/r<i mod rooms>``), answering the server's Pings: the C load
  engine (``wsframe bench``'s worker processes, ``hold`` mode, with a per-
  connection path from ``path_cycle``), several 127.0.0.x source addresses;
* room traffic: ``--publishers`` room members (one in each of the first rooms)
  sending ``--publish-rate`` messages a second in total (``publish`` mode);
* churn: about ``--churn-rate`` connects/disconnects a second with the
  blocking client, to ``/room/churn-<k>`` and ``/echo`` (failures counted);
* hostile peers (``--hostile`` of each kind): never-reading senders, Ping
  flooders that never read, slow-handshake peers (one byte a second);
* samples the server's RSS (``/proc/PID/status``), fds, CPU and
  ``/proc/net/sockstat`` every ``--sample-interval`` seconds.

Verdict (PASS = exit 0, FAIL = exit 1), every check printed and in the JSON:

* memory flat: over the hold (which starts once every held connection is
  open and the other loads have started), the median RSS of the samples in
  its last third exceeds the median of its first third by at most
  ``max(--flat-pct % of the first-third median, --flat-mib MiB)``;
* no well-behaved connection dropped: survivors == ``--connections``, and
  every publisher survived;
* churn failures == 0;
* hostile peers contained: each flooder was cut off at least once or its
  socket took no bytes (held without growth) for the last min(10 s, a third
  of the hold); each slow-handshake peer was dropped (when the hold is long
  enough to see it: 15 s or more, the server's handshake bound being 10 s);
* room traffic flowed (messages published and delivered); the server lived.

Bounded: every phase has a deadline; every process it starts (server, load
workers, churn, hostile peers) is stopped by pid at the end, on error and on
Ctrl-C/SIGTERM. Loopback only.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.soak_peers import CHURN_COUNTERS, churn_main, hostile_main  # noqa: E402
from benchmarks.soak_verdict import (MIB, check, hostile_check, latency_text,  # noqa: E402
                                     memory_check, plot)
from wsframe.tools.bench.fleet import (ENGINE_MISSING, Fleet, engine_available,  # noqa: E402
                                       merge_results)
from wsframe.tools.bench.probes import Sample, tcp_sockstat  # noqa: E402
from wsframe.tools.bench.target import Target, start_own_server  # noqa: E402

PER_PROCESS = 15000            # held connections per load worker (fd limit 20,000 each)
HELD_SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]
PUBLISHER_SOURCE = "127.0.0.20"
CHURN_SOURCES = [f"127.0.0.{i}" for i in range(21, 25)]
HOSTILE_SOURCE = "127.0.0.30"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=15000, help="held connections (15000)")
    p.add_argument("--duration", type=float, default=900.0, help="hold, seconds (900)")
    p.add_argument("--heartbeat", type=float, default=30.0, help="server ping interval, s (30)")
    p.add_argument("--heartbeat-timeout", type=float, default=5.0, help="pong deadline, s (5)")
    p.add_argument("--server-args", default="", help="more arguments for wsframe serve")
    p.add_argument("--room-size", type=int, default=3, help="held connections per room (3)")
    p.add_argument("--ramp-rate", type=float, default=2000.0, help="held connects per s (2000)")
    p.add_argument("--publishers", type=int, default=300, help="rooms with a publisher (300)")
    p.add_argument("--publish-rate", type=float, default=200.0, help="messages/s in all (200)")
    p.add_argument("--message-size", type=int, default=64, help="published bytes (64)")
    p.add_argument("--churn-rate", type=float, default=200.0, help="connects/s (200, max 1000)")
    p.add_argument("--churn-threads", type=int, default=4)
    p.add_argument("--hostile", type=int, default=2, help="hostile peers of each kind (2)")
    p.add_argument("--hostile-mib-s", type=float, default=8.0,
                   help="MiB/s each flooding peer sends at most (8)")
    p.add_argument("--sample-interval", type=float, default=0.0,
                   help="seconds between RSS samples (default: min(5, duration/30))")
    p.add_argument("--flat-pct", type=float, default=5.0, help="allowed RSS growth, %% (5)")
    p.add_argument("--flat-mib", type=float, default=8.0, help="allowed RSS growth, MiB (8)")
    p.add_argument("--json", metavar="FILE", default="soak.json", help="report (soak.json)")
    p.add_argument("--plot", metavar="FILE.png", help="RSS and connections over time")
    args = p.parse_args(argv)
    if not 0 < args.connections <= 200000 or args.duration <= 0 or args.room_size < 1:
        p.error("--connections must be 1-200000, --duration and --room-size positive")
    if not 0 < args.churn_rate <= 1000 or not 0 < args.publish_rate <= 10000:
        p.error("--churn-rate must be in (0, 1000], --publish-rate in (0, 10000]")
    if not 0 <= args.hostile <= 20 or args.publishers < 1 or not 0 < args.hostile_mib_s <= 1024:
        p.error("--hostile must be 0-20, --publishers at least 1, --hostile-mib-s in (0, 1024]")
    if args.sample_interval <= 0:
        args.sample_interval = min(5.0, max(0.5, args.duration / 30))
    return args


class Soak:
    """One soak run: the server, its loads, the samples; stops everything it started."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rooms = math.ceil(args.connections / args.room_size)
        self.publishers = min(args.publishers, self.rooms)
        self.target: Optional[Target] = None
        self.fleets: list[Fleet] = []
        self.collected = False         # Fleet.results() closes the stop pipes: no stop() after
        self.children: list[multiprocessing.Process] = []
        self.queues: dict = {}
        self.samples: list[dict] = []
        self.events: dict[str, float] = {}
        self.t0 = time.monotonic()
        self.ctx = multiprocessing.get_context("fork")
        self.stop_peers = self.ctx.Event()
        self.churn_counters = self.ctx.RawArray("q", len(CHURN_COUNTERS))
        self.hostile_counters = self.ctx.RawArray("q", 3)

    # starting ------------------------------------------------------------------------------
    def start_server(self) -> None:
        args = self.args
        extra = (f"--heartbeat {args.heartbeat:g} --heartbeat-timeout {args.heartbeat_timeout:g} "
                 + args.server_args)
        self.target = start_own_server("/", extra)
        print(f"server: pid {self.target.pid}, port {self.target.port}, {self.target.label}")

    def held_specs(self, lifetime: float) -> list[dict]:
        n, processes = self.args.connections, math.ceil(self.args.connections / PER_PROCESS)
        shares = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
        specs, first = [], 0
        for i, share in enumerate(shares):
            specs.append(dict(host="127.0.0.1", port=self.target.port, path="/room/r",
                              path_cycle=self.rooms, path_offset=first, mode="hold",
                              connections=share, ramp_rate=self.args.ramp_rate / processes,
                              duration=lifetime, warmup=0.0, close_timeout=5.0,
                              source_addresses=tuple(HELD_SOURCES[i::processes])))
            first += share
        return specs

    def start_side_loads(self, lifetime: float) -> None:
        """The publishers, the churn process and the hostile peers' process."""
        with _children_leave_signals_to_us():
            self._start_side_loads(lifetime)

    def _start_side_loads(self, lifetime: float) -> None:
        args, port = self.args, self.target.port
        self.fleets.append(Fleet([dict(
            host="127.0.0.1", port=port, path="/room/r", path_cycle=self.publishers,
            mode="publish", connections=self.publishers, rate=args.publish_rate,
            size=max(24, args.message_size), duration=lifetime, warmup=0.0, close_timeout=5.0,
            source_addresses=(PUBLISHER_SOURCE,))]).start())
        deadline = time.monotonic() + lifetime
        for name, target, extra in (
                ("churn", churn_main, (args.churn_rate, args.churn_threads, 100, CHURN_SOURCES,
                                       deadline, self.stop_peers, self.churn_counters)),
                ("hostile", hostile_main, (args.hostile, HOSTILE_SOURCE,
                                           args.hostile_mib_s * MIB, deadline,
                                           self.stop_peers, self.hostile_counters))):
            if name == "hostile" and args.hostile == 0:
                continue
            queue = self.ctx.Queue()
            process = self.ctx.Process(target=target, daemon=True, name=f"soak-{name}",
                                       args=("127.0.0.1", port, *extra, queue))
            process.start()
            self.children.append(process)
            self.queues[name] = queue

    # sampling -----------------------------------------------------------------------------------
    def sample(self, phase: str) -> dict:
        held = self.fleets[0].totals() if self.fleets else {"open": 0, "failed": 0}
        side = self.fleets[1].totals() if len(self.fleets) > 1 else {"open": 0, "sent": 0}
        s = Sample(time.monotonic() - self.t0, held["open"], self.target.pid).as_dict()
        sock = tcp_sockstat()
        s.update(phase=phase, held_failed=held["failed"], publishers_open=side["open"],
                 published=side.get("sent", 0), held_received=held.get("received", 0),
                 churn=dict(zip(CHURN_COUNTERS, self.churn_counters)),
                 hostile_opens=self.hostile_counters[0], hostile_cut=self.hostile_counters[1],
                 tcp_inuse=sock.get("inuse", 0), tcp_tw=sock.get("tw", 0),
                 tcp_mem_bytes=sock.get("mem_bytes", 0))
        self.samples.append(s)
        return s

    def progress(self, s: dict) -> None:
        c = s["churn"]
        print(f"[{s['t']:7.1f} s {s['phase']:5}] held {s['connections']:,} "
              f"(failed {s['held_failed']})  RSS {s['rss'] / MIB:7.1f} MiB  fds {s['fds']:,}  "
              f"published {s['published']:,}  churn {c['attempted']:,} (failed {c['failed']})  "
              f"hostile opens {s['hostile_opens']} cut {s['hostile_cut']}", flush=True)

    def wait(self, seconds: float, phase: str, until=None) -> bool:
        """Sample for ``seconds`` (or until ``until()``); False if the server died."""
        end = time.monotonic() + seconds
        next_sample = time.monotonic()
        every_print = max(self.args.sample_interval, self.args.duration / 30)
        next_print = time.monotonic()
        while True:
            now = time.monotonic()
            if not self.target.alive():
                return False
            if now >= next_sample:
                s = self.sample(phase)
                next_sample = max(next_sample + self.args.sample_interval, now)
                if now >= next_print:
                    self.progress(s)
                    next_print = now + every_print
            if now >= end or (until is not None and until()):
                return True
            time.sleep(min(0.25, max(0.0, min(end, next_sample) - time.monotonic())))

    # the run ------------------------------------------------------------------------------------
    def run(self) -> dict:
        args = self.args
        ramp_budget = args.connections / args.ramp_rate * 2 + 30
        lifetime = ramp_budget + args.duration + 120   # the engines' own bound; stopped earlier
        self.start_server()
        self.sample("start")
        with _children_leave_signals_to_us():
            self.fleets.append(Fleet(self.held_specs(lifetime)).start())
        held = self.fleets[0]
        self.events["ramp_start"] = time.monotonic() - self.t0
        alive = self.wait(ramp_budget, "ramp", until=lambda: (
            held.totals()["open"] + held.totals()["failed"] >= args.connections
            or not held.running()))
        self.events["ramp_end"] = time.monotonic() - self.t0
        ramp_open = held.totals()["open"]
        print(f"ramp: {ramp_open:,} of {args.connections:,} open in "
              f"{self.events['ramp_end'] - self.events['ramp_start']:.1f} s")
        if alive:
            self.start_side_loads(lifetime)
            self.events["hold_start"] = time.monotonic() - self.t0
            alive = self.wait(args.duration, "hold")
            self.events["hold_end"] = time.monotonic() - self.t0
            if alive:
                self.sample("end")
        health = server_health(self.target.port) if alive else None
        results = self.stop_loads()
        self.stop_server()
        return self.report(alive, ramp_open, health, results)

    def stop_loads(self) -> dict:
        """Stop the loads (held connections close cleanly) and collect what they report."""
        self.stop_peers.set()
        for fleet in self.fleets:
            fleet.stop()
        out = {}
        self.collected = True
        for name, fleet in zip(("held", "publishers"), self.fleets):
            out[name] = merge_results(fleet.results(timeout=30))
        for name, queue in self.queues.items():
            try:
                out[name] = queue.get(timeout=30)
            except Exception:
                out[name] = {"error": f"the {name} process gave no result"}
        return out

    def stop_server(self) -> None:
        if self.target is not None and self.target.process is not None:
            self.target.stop()

    def cleanup(self) -> None:
        """Kill, by pid, whatever is still running (error or Ctrl-C paths included)."""
        self.stop_peers.set()
        if not self.collected:
            for fleet in self.fleets:
                fleet.stop()
        pids = [p.pid for f in self.fleets for p in f.processes if p.pid]
        pids += [p.pid for p in self.children if p.pid]
        if self.target is not None and self.target.process is not None:
            pids.append(self.target.process.pid)
        deadline = time.monotonic() + 5
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        for process in [p for f in self.fleets for p in f.processes] + self.children:
            process.join(max(0.1, deadline - time.monotonic()))
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        if self.target is not None and self.target.process is not None:
            try:
                self.target.process.wait(5)
            except Exception:
                pass

    # the verdict -------------------------------------------------------------------------------
    def report(self, alive: bool, ramp_open: int, health: Optional[dict], results: dict) -> dict:
        args = self.args
        checks = [check("server alive", alive, "the server process ran to the end"
                        if alive else "the server process died")]
        checks.append(memory_check(self.samples, self.events, args))
        held = results.get("held", {})
        checks.append(check(
            "no held connection dropped", held.get("survivors") == args.connections,
            f"survivors {held.get('survivors', 0):,} of {args.connections:,} (ramp opened "
            f"{ramp_open:,}; closed by server {held.get('closed_by_server', 0)}, dropped "
            f"{held.get('dropped', 0)}, failures {held.get('failed', {})}; pings answered "
            f"{held.get('pings_answered', 0):,})"))
        pub = results.get("publishers", {})
        checks.append(check(
            "publishers survived", pub.get("survivors") == self.publishers,
            f"{pub.get('survivors', 0)} of {self.publishers} (failures {pub.get('failed', {})})"))
        checks.append(check(
            "room traffic flowed", pub.get("messages_sent", 0) > 0
            and held.get("messages_received", 0) > 0,
            f"published {pub.get('messages_sent', 0):,}, delivered to held members "
            f"{held.get('messages_received', 0):,}, delivery latency "
            f"{latency_text(held.get('latency_us', {}))}"))
        churn = results.get("churn", {})
        checks.append(check(
            "churn failures 0", "error" not in churn and churn.get("failed", 1) == 0
            and churn.get("attempted", 0) > 0,
            f"{churn.get('attempted', 0):,} connects ({churn.get('rate', 0):.0f}/s), failed "
            f"{churn.get('failed', '?')} {churn.get('failures', churn.get('error', ''))}"))
        if args.hostile:
            checks.append(hostile_check(results.get("hostile", {}), self.events))
        verdict = "PASS" if all(c["ok"] for c in checks) else "FAIL"
        return {"verdict": verdict, "checks": checks, "config": vars(args),
                "rooms": self.rooms, "publishers": self.publishers,
                "server": {"pid": self.target.pid if self.target else None,
                           "command": self.target.label if self.target else None,
                           "health_at_end": health},
                "processes": {"load_workers": [p.pid for f in self.fleets for p in f.processes],
                              "peers": [p.pid for p in self.children]},
                "events": {k: round(v, 3) for k, v in self.events.items()},
                "results": results, "samples": self.samples}


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def server_health(port: int) -> Optional[dict]:
    """The server's counters from ``GET /health`` (None if it does not answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return json.loads(data.split(b"\r\n\r\n", 1)[1])
    except (OSError, ValueError, IndexError):
        return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def _children_leave_signals_to_us():
    """Processes forked in here ignore Ctrl-C and die on SIGTERM: this process stops them."""
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM,
                                                                         signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


def main(argv=None) -> int:
    args = parse_args(argv)
    if not engine_available():
        print(f"error: {ENGINE_MISSING}")
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)   # also where a shell started us ignoring it
    soak = Soak(args)
    try:
        report = soak.run()
    except KeyboardInterrupt:
        print("interrupted: stopping everything")
        report = None
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    finally:
        soak.cleanup()
    if report is None:   # keep what was sampled: no verdict
        if args.json and soak.samples:
            with open(args.json, "w") as f:
                json.dump({"verdict": "INTERRUPTED", "config": vars(args),
                           "events": soak.events, "samples": soak.samples}, f, indent=1)
            print(f"samples so far: {args.json}")
        return 1
    health = report["server"]["health_at_end"] or {}
    if health:
        print("server counters: " + ", ".join(f"{k} {health[k]:,}" for k in (
            "upgraded", "heartbeat_timeouts", "handshake_timeouts", "slow_closed", "dropped",
            "handler_errors") if k in health))
    for c in report["checks"]:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
    print(f"verdict: {report['verdict']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"report: {args.json}")
    if args.plot:
        error = plot(report, args.plot)
        print(f"note: {error}" if error else f"plot: {args.plot}")
    return 0 if report["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
