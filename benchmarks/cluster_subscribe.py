"""Sharded pub/sub on a three-node Redis Cluster: what subscribing costs, and what the
cluster bus carries per message.

    python benchmarks/cluster_subscribe.py --rooms 10000 --runs 3

1. ``--rooms`` rooms wanted in one loop turn (as that many first members joining at
   once), four ways: a Redis Cluster with random room names (one ``SSUBSCRIBE``
   per slot, up to 512 channels), the same with one ``SSUBSCRIBE`` per channel, a
   cluster with every room under one hash tag (one slot: 512 channels a command),
   and a standalone Redis (``SUBSCRIBE``, 512 a command) for reference. Reported:
   commands sent, the time until every node has answered the batch (its closing
   ``PING``), and the Redis-side time from ``INFO commandstats``, summed over the
   nodes. Median of ``--runs`` (the four cases take turns in each run).
2. ``--messages`` broadcasts from one server to a member on another, through the
   cluster with sharded pub/sub and with plain pub/sub: pub/sub messages the nodes
   sent over the cluster bus (``CLUSTER INFO``), summed over the nodes.

Starts its own redis-server processes on free loopback ports (never 6379) and stops
them by pid.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from wsframe.backplane import cluster as cluster_module  # noqa: E402
from wsframe.backplane import backplane_for  # noqa: E402
from wsframe.loop.eventloop import Loop  # noqa: E402
from tests.services import RedisCluster, RedisServer  # noqa: E402


class LoopThread:
    """A wsframe loop in a thread, and a way to run a call on it."""

    def __init__(self) -> None:
        self.loop = Loop(tick_interval=0.05)
        self.thread = threading.Thread(target=self.loop.run, daemon=True)
        self.thread.start()

    def call(self, fn, *args):
        done, box = threading.Event(), {}

        def run():
            box["value"] = fn(*args)
            done.set()
        self.loop.call_soon_threadsafe(run)
        if not done.wait(30):
            raise TimeoutError("the loop did not run the call")
        return box["value"]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def wait(predicate, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.001)


def commandstats_usec(nodes, command: str) -> int:
    total = 0
    for node in nodes:
        for line in node.cli("INFO", "commandstats").splitlines():
            if line.startswith(f"cmdstat_{command}:"):
                fields = dict(p.split("=") for p in line.split(":", 1)[1].split(","))
                total += int(fields["usec"])
    return total


def links(backplane):
    if hasattr(backplane, "nodes"):
        return [node.client._link for node in backplane.nodes.values()]
    return [backplane.client._link]


def subscribe_once(url, nodes, names, command, batch) -> dict:
    """One run: a fresh backplane, every name wanted in one turn."""
    for node in nodes:
        node.cli("CONFIG", "RESETSTAT")
    cluster_module.BATCH = batch
    runner = LoopThread()
    backplane = runner.call(backplane_for, runner.loop, url)
    try:
        runner.call(backplane.start)
        wait(lambda: backplane.stats()["state"] == "ready")

        def want_all():
            for name in names:
                backplane.want(name)
            return time.perf_counter()
        started = runner.call(want_all)
        # the turn's end sends the batches; each node's batch ends with a PING
        wait(lambda: backplane.counts["subscribe_commands"] > 0 and
             all(not link.pending and not link._out_size for link in links(backplane)))
        elapsed = time.perf_counter() - started
        usec = commandstats_usec(nodes, command)
        assert backplane.counts.get("refused", 0) == 0
        return {"commands": backplane.counts["subscribe_commands"], "ms": elapsed * 1000,
                "redis_ms": usec / 1000}
    finally:
        runner.call(backplane.close)
        runner.stop()
        runner.loop.close()
        cluster_module.BATCH = 512


def bus_publishes(nodes) -> int:
    total = 0
    for node in nodes:
        info = dict(line.split(":", 1) for line in node.cli("CLUSTER", "INFO").splitlines()
                    if ":" in line)
        total += int(info.get("cluster_stats_messages_publish_sent", 0))
        total += int(info.get("cluster_stats_messages_publishshard_sent", 0))
    return total


def bus_copies(url, nodes, messages: int) -> int:
    """Broadcast ``messages`` from one backplane to a member on another; bus messages."""
    runner = LoopThread()
    a = runner.call(backplane_for, runner.loop, url)
    b = runner.call(backplane_for, runner.loop, url)
    got = []
    try:
        runner.call(b.bind, lambda room, payload, text: got.append(payload))
        runner.call(a.bind, lambda room, payload, text: None)
        for backplane in (a, b):
            runner.call(backplane.start)
        wait(lambda: a.stats()["state"] == "ready" and b.stats()["state"] == "ready")
        runner.call(b.want, "bus")
        channel = "wsframe:room:bus"
        if hasattr(b, "nodes"):
            owner = next(n for n in nodes if n.port == b.node_for("bus").port)
            wait(lambda: owner.cli("PUBSUB", "SHARDNUMSUB", channel).split()[1] == "1")
        else:
            wait(lambda: nodes[0].cli("PUBSUB", "NUMSUB", channel).split()[1] == "1")
        before = bus_publishes(nodes)
        for i in range(messages):
            runner.call(a.publish, "bus", b"m%d" % i, True)
        wait(lambda: len(got) == messages)
        time.sleep(0.2)   # let every node's counter settle
        return bus_publishes(nodes) - before
    finally:
        for backplane in (a, b):
            runner.call(backplane.close)
        runner.stop()
        runner.loop.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    cluster = RedisCluster(3)
    single = RedisServer()
    try:
        random_names = [f"order:{i}" for i in range(args.rooms)]
        tagged = [f"{{fleet}}:order:{i}" for i in range(args.rooms)]
        slots = len({cluster_module.key_slot(f"wsframe:room:{n}".encode())
                     for n in random_names})
        cases = [
            (f"cluster, {args.rooms} rooms in {slots} slots: one SSUBSCRIBE per slot",
             cluster.url, cluster.nodes, random_names, "ssubscribe", 512),
            ("cluster, the same rooms: one SSUBSCRIBE per channel",
             cluster.url, cluster.nodes, random_names, "ssubscribe", 1),
            ("cluster, every room under one hash tag {fleet}: 512 a command",
             cluster.url, cluster.nodes, tagged, "ssubscribe", 512),
            ("standalone Redis: SUBSCRIBE, 512 a command",
             single.url, [single], random_names, "subscribe", 512),
        ]
        print("| case | commands | until all answered (ms) | Redis time (ms) |")
        print("|---|---:|---:|---:|")
        results = {case[0]: [] for case in cases}
        for _ in range(args.runs):   # the cases interleaved, so that load elsewhere hits all
            for label, url, nodes, names, command, batch in cases:
                results[label].append(subscribe_once(url, nodes, names, command, batch))
        for label, runs in results.items():
            print(f"| {label} | {runs[0]['commands']:,} | "
                  f"{statistics.median(r['ms'] for r in runs):.1f} | "
                  f"{statistics.median(r['redis_ms'] for r in runs):.1f} |", flush=True)
        print()
        print("| backplane | messages | pub/sub messages on the cluster bus |")
        print("|---|---:|---:|")
        for label, url in (("redis+cluster:// (SPUBLISH)", cluster.url),
                           ("redis:// to one node (PUBLISH)", cluster.nodes[0].url)):
            print(f"| {label} | {args.messages:,} | "
                  f"{bus_copies(url, cluster.nodes, args.messages):,} |", flush=True)
    finally:
        cluster.close()
        single.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
