"""The HAProxy recipe (docs/howto/redis.md) with a real HAProxy in front of three
``wsframe serve --redis`` processes: sticky by path, WebSockets through, failover."""
import time

import pytest

from wsframe.client.blocking import connect
from wsframe.errors import ConnectionClosed
from tests.helpers import wait_for
from tests.services import Haproxy, WsframeServe, require


def test_haproxy_keeps_an_order_on_one_server_and_fails_over(redis_server):
    require("haproxy")
    servers = [WsframeServe("--redis", redis_server.url) for _ in range(3)]
    proxy = None
    try:
        proxy = Haproxy([s.port for s in servers])
        url = f"ws://127.0.0.1:{proxy.port}/room/order:42"
        assert wait_for(lambda: all(s.health()["backplane"]["state"] == "ready"
                                    for s in servers), 15)
        time.sleep(1)   # the first health checks mark every server up
        watchers = [connect(f"ws://127.0.0.1:{s.port}/room/order:42") for s in servers]
        before = [s.health()["open"] for s in servers]
        clients = [connect(url) for _ in range(3)]
        grown = [s.health()["open"] - b for s, b in zip(servers, before)]
        assert sorted(grown) == [0, 0, 3]   # all three on one server: sticky by path
        home = grown.index(3)
        clients[0].send("through haproxy")
        for ws in watchers + clients:
            assert ws.recv(timeout=5) == "through haproxy"

        servers[home].stop()
        with pytest.raises(ConnectionClosed):
            while True:
                clients[0].recv(timeout=5)
        deadline = time.monotonic() + 15
        while True:
            try:
                driver = connect(url, timeout=5)
                break
            except Exception:
                assert time.monotonic() < deadline, "no server took the client back"
                time.sleep(0.2)
        assert wait_for(lambda: int(redis_server.cli(
            "PUBSUB", "NUMSUB", "wsframe:room:order:42").split()[1]) == 2, 10)
        driver.send("after failover")
        for i, ws in enumerate(watchers):
            if i != home:
                assert ws.recv(timeout=5) == "after failover"
        driver.close()
    finally:
        if proxy is not None:
            proxy.close()
        for server in servers:
            server.stop()
