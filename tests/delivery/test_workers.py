"""Delivery with worker processes: the room's owner worker sequences it and keeps its
history; members on other workers (by proxy) and publishers on other workers go through
it. Killing a worker mid-stream: every publication reaches every watcher once and in
order, or a discontinuity is reported where some are missing."""
import os
import signal
import time

import pytest

from wsframe.cluster.partition import owner
from tests.cluster.conftest import Cluster, wait_for
from tests.delivery.test_drills import Watcher
from tests.services import redis_server  # noqa: F401  (the fixture)

APP = "tests.delivery.workers_app:make_server"
OWNER = owner("order:42", 2)
OTHER = 1 - OWNER


def key_on(slot: int, prefix: str) -> str:
    """A partition key that the supervisor routes to ``slot`` (of 2)."""
    return next(f"{prefix}{i}" for i in range(1000) if owner(f"{prefix}{i}", 2) == slot)


@pytest.fixture
def cluster():
    started = Cluster(APP, 2)
    try:
        assert wait_for(started.ready, 30), "cluster did not become ready"
        yield started
    finally:
        started.stop()


def worker_pids(cluster) -> dict:
    return {w["slot"]: w["pid"] for w in cluster.health()["workers"]}


def seqs(timeline) -> list:
    return [entry[1]["seq"] for entry in timeline if entry[0] == "pub"]


def assert_once_in_order_or_reported(timeline) -> None:
    """Strictly increasing; contiguous except right after a reported discontinuity."""
    got = seqs(timeline)
    assert got == sorted(set(got)), f"repeated or out of order: {got}"
    previous, reported = None, False
    for kind, value in timeline:
        if kind == "discontinuity":
            reported = True
            continue
        if previous is not None and value["seq"] != previous + 1:
            assert reported, f"a silent gap after {previous}: {got}"
        previous, reported = value["seq"], False


def start(cluster, path):
    watcher = Watcher(cluster.port, path=path).start()
    assert wait_for(lambda: watcher.client.welcomed, 10)
    return watcher


def start_three(cluster, driver_slot: int):
    """The workers' pids, a watcher on the room's owner, one on the other worker (by
    proxy), and a driver on ``driver_slot``; once both watchers are in the room."""
    pids = worker_pids(cluster)
    owner_watcher = start(cluster, "/track/42")
    proxy_watcher = start(cluster, f"/watch/42/{key_on(OTHER, 'w')}")
    driver = start(cluster, f"/driver/42/{key_on(driver_slot, 'd')}")
    assert owner_watcher.client.node == f"pid {pids[OWNER]}"
    assert proxy_watcher.client.node == f"pid {pids[OTHER]}"
    assert driver.client.node == f"pid {pids[driver_slot]}"
    watchers = (owner_watcher, proxy_watcher)
    assert wait_for(lambda: all("order:42" in w.client.rooms for w in watchers), 10)
    return pids, owner_watcher, proxy_watcher, driver


def drive_through_a_kill(driver, victim: int, total: int = 300) -> None:
    """``total`` positions 10 ms apart; ``victim`` (a pid) is killed after the 101st."""
    for seq in range(total):
        driver.send({"seq": seq})
        if seq == 100:
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.01)
    assert wait_for(lambda: not driver.client.outbox, 15)


def assert_all_once_in_order(watchers, total: int = 300) -> None:
    for watcher in watchers:
        assert wait_for(lambda: len(watcher.received) >= total, 30), \
            (watcher.client.node, seqs(watcher.timeline)[-5:])
        time.sleep(0.2)
        assert seqs(watcher.timeline) == list(range(total))   # once each, in order
        assert not [e for e in watcher.events if e[0] == "discontinuity"], watcher.events


def test_killing_the_rooms_owner_worker_is_reported_never_a_silent_gap(cluster):
    # the driver publishes from the other worker: through the owner
    pids, owner_watcher, proxy_watcher, driver = start_three(cluster, OTHER)
    watchers = (owner_watcher, proxy_watcher)
    try:
        seq = 0
        for seq in range(50):
            driver.send({"seq": seq})
            time.sleep(0.005)
        assert wait_for(lambda: all(len(w.received) == 50 for w in watchers), 10)
        assert all(seqs(w.timeline) == list(range(50)) for w in watchers)

        os.kill(pids[OWNER], signal.SIGKILL)   # the room's history and sequencer with it
        deadline = time.monotonic() + 30
        while worker_pids(cluster)[OWNER] in (pids[OWNER], None) \
                or not cluster.ready():
            assert time.monotonic() < deadline, "the owner worker was not restarted"
            seq += 1
            driver.send({"seq": seq})
            time.sleep(0.02)
        for _ in range(50):   # the new owner sequences these in a new epoch
            seq += 1
            driver.send({"seq": seq})
            time.sleep(0.01)
        last = seq
        assert wait_for(lambda: not driver.client.outbox, 15)
        for watcher in watchers:
            assert wait_for(lambda: watcher.received and watcher.received[-1]["seq"] == last,
                            15), (watcher.client.node, seqs(watcher.timeline)[-5:], last)
            assert_once_in_order_or_reported(watcher.timeline)
            assert ("discontinuity", "epoch") in watcher.events, watcher.events
            assert seqs(watcher.timeline)[:50] == list(range(50))
    finally:
        for watcher in (*watchers, driver):
            watcher.stop()


def test_killing_a_proxy_members_worker_loses_nothing(cluster):
    pids, owner_watcher, proxy_watcher, driver = start_three(cluster, OWNER)
    watchers = (owner_watcher, proxy_watcher)
    try:
        drive_through_a_kill(driver, pids[OTHER])   # the proxy watcher's worker
        assert_all_once_in_order(watchers)
        # the new worker asked the owner for what its member missed: a replay
        assert proxy_watcher.client.node != f"pid {pids[OTHER]}"
        assert any(e[0] == "recovered" and e[1] > 0 for e in proxy_watcher.events), \
            proxy_watcher.events
    finally:
        for watcher in (*watchers, driver):
            watcher.stop()


@pytest.fixture
def redis_cluster(redis_server):
    started = Cluster(APP, 2, extra=("--redis", redis_server.url))
    try:
        assert wait_for(started.ready, 30), "cluster did not become ready"
        yield started
    finally:
        started.stop()


def test_with_redis_killing_the_owner_worker_loses_nothing(redis_cluster, redis_server):
    """The history is in Redis: the restarted owner continues the same epoch; the proxy
    member that missed pushes meanwhile sees the gap and resumes."""
    pids, owner_watcher, proxy_watcher, driver = start_three(redis_cluster, OTHER)
    watchers = (owner_watcher, proxy_watcher)
    try:
        drive_through_a_kill(driver, pids[OWNER])
        assert_all_once_in_order(watchers)
        assert owner_watcher.client.node != f"pid {pids[OWNER]}"
        # sequenced by Redis (wsframe_publish), not by a worker's memory
        assert redis_server.cli("XLEN", "wsframe:history:{order:42}") == "300"
    finally:
        for watcher in (*watchers, driver):
            watcher.stop()


def test_the_demo_with_workers_publishes_each_position_once():
    """Every worker runs the demo's drivers; only the room's owner publishes."""
    from wsframe.tools.demo import DEMO_ORDERS
    demo = Cluster("", 2, extra=("--demo",))
    watchers = []
    try:
        assert wait_for(demo.ready, 30)
        for order in DEMO_ORDERS:
            watchers.append(Watcher(demo.port, path=f"/track/{order}").start())
        owners = {owner(f"order:{order}", 2) for order in DEMO_ORDERS}
        assert owners == {0, 1}   # the orders' rooms are on both workers
        for watcher in watchers:
            assert wait_for(lambda: len([d for d in watcher.received
                                         if isinstance(d, dict) and d.get("type") == "position"]) >= 3, 10)
        for watcher in watchers:
            got = [d["seq"] for d in watcher.received if isinstance(d, dict) and d.get("type") == "position"]
            assert got == list(range(got[0], got[0] + len(got))), got   # once each, none missed
    finally:
        for watcher in watchers:
            watcher.stop()
        demo.stop()
