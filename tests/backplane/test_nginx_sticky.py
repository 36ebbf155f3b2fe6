"""The sticky-session recipe, end to end: a real nginx (docs/howto/redis.md's config) in
front of three ``wsframe serve --redis`` processes sharing rooms through a real Redis."""
import contextlib
import json
import time

import pytest

from wsframe.client.blocking import connect
from wsframe.errors import ConnectionClosed
from tests.helpers import wait_for
from tests.services import Nginx, WsframeServe, require


def numsub(redis, room):
    return int(redis.cli("PUBSUB", "NUMSUB", f"wsframe:room:{room}").split()[1])


def open_count(server):
    return server.health()["open"]


def nothing_more(ws):
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.3)


def reconnect(url, attempts=40):
    """What a client with backoff does, bounded: try until the balancer finds a server."""
    delay = 0.05
    for _ in range(attempts):
        try:
            return connect(url, timeout=5)
        except (OSError, ConnectionError, Exception) as exc:  # 502 from nginx, refused...
            last = exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    raise AssertionError(f"could not reconnect through nginx: {last}")


def position(i):
    return json.dumps({"order": 42, "lat": 52.5 + i / 1000, "lon": 13.4})


@pytest.fixture
def topology(redis_server):
    require("nginx")
    servers = []
    nginx = None
    try:
        servers = [WsframeServe("--redis", redis_server.url) for _ in range(3)]
        nginx = Nginx([s.port for s in servers])
        assert wait_for(lambda: all(s.health()["backplane"]["state"] == "ready"
                                    for s in servers), 15)
        yield redis_server, servers, nginx
    finally:
        if nginx is not None:
            nginx.close()
        for server in servers:
            server.stop()
        assert all(s.proc.poll() is not None for s in servers)


def test_driver_through_nginx_reaches_watchers_on_every_server(topology):
    redis, servers, nginx = topology
    watchers = [connect(f"ws://127.0.0.1:{s.port}/room/order:42") for s in servers]
    elsewhere = connect(f"ws://127.0.0.1:{servers[0].port}/room/order:7")
    assert wait_for(lambda: numsub(redis, "order:42") == 3, 10)
    before = [open_count(s) for s in servers]

    url = f"ws://127.0.0.1:{nginx.port}/room/order:42"
    driver = connect(url)
    landed = [i for i, s in enumerate(servers) if open_count(s) > before[i]]
    assert len(landed) == 1
    home = landed[0]
    # sticky: the same order through nginx lands on the same server again
    second = connect(url)
    assert open_count(servers[home]) == before[home] + 2
    second.close()

    for i in range(20):
        driver.send(position(i))
    for ws in watchers:
        assert [ws.recv(timeout=5) for _ in range(20)] == [position(i) for i in range(20)]
    assert [driver.recv(timeout=5) for _ in range(20)] == [position(i) for i in range(20)]
    for ws in watchers:
        nothing_more(ws)   # exactly once
    nothing_more(elsewhere)   # another order: nothing

    # the driver's server goes away: it and its watcher reconnect through nginx
    servers[home].stop()
    with pytest.raises(ConnectionClosed):
        while True:
            driver.recv(timeout=5)
    assert driver.close_code == 1001
    driver = reconnect(url)
    moved = reconnect(url)   # the watcher that was on the stopped server
    survivors = [ws for i, ws in enumerate(watchers) if i != home]
    assert wait_for(lambda: numsub(redis, "order:42") == 2, 10)
    driver.send(position(100))
    for ws in (*survivors, moved):
        assert ws.recv(timeout=5) == position(100)

    # Redis restarts: cross-server delivery stops for the outage only
    redis.stop()
    live = [s for i, s in enumerate(servers) if i != home]
    assert wait_for(lambda: all(s.health()["backplane"]["state"] != "ready" for s in live), 10)
    driver.send("during the outage")
    assert moved.recv(timeout=5) == "during the outage"   # same server as the driver: local
    redis.start()
    assert wait_for(lambda: numsub(redis, "order:42") == 2, 20)
    driver.send(position(101))
    for ws in survivors:
        got = ws.recv(timeout=5)
        if got == "during the outage":   # it reached this one's server before Redis went
            got = ws.recv(timeout=5)
        assert got == position(101)
    for ws in (*watchers, elsewhere, driver, moved):
        with contextlib.suppress(Exception):
            ws.close(timeout=1)
