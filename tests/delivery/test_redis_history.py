"""wsframe.v1 with the Redis backplane: offsets and history in Redis, written atomically
with the publish; a restarted server continues the epoch, so nothing Redis kept is lost."""
import json
import time

import pytest

pytest.importorskip("hiredis")

from wsframe.client.blocking import connect  # noqa: E402
from tests.delivery.test_drills import Node, Watcher  # noqa: E402
from tests.helpers import wait_for  # noqa: E402
from tests.services import redis_server  # noqa: E402,F401  (the fixture)


def ready(*nodes):
    return wait_for(lambda: all(n.server.backplane.client.ready and n.delivery.redis.loaded
                                for n in nodes), 10)


def test_publications_cross_servers_with_offsets_from_redis(redis_server):
    a, b = Node(backplane=redis_server.url), Node(backplane=redis_server.url)
    watcher = None
    try:
        assert ready(a, b)
        watcher = Watcher(a.port).start()
        assert wait_for(lambda: "order:42" in watcher.client.rooms, 5)
        time.sleep(0.2)   # the SUBSCRIBE is through
        for i in range(50):
            b.publish("order:42", {"seq": i})   # published on the other server
        assert wait_for(lambda: len(watcher.received) == 50, 10), len(watcher.received)
        assert [m["seq"] for m in watcher.received] == list(range(50))
        assert watcher.client.rooms["order:42"]["offset"] == 50
    finally:
        if watcher:
            watcher.stop()
        a.stop()
        b.stop()


def test_a_server_restart_loses_nothing_redis_kept(redis_server):
    a, b = Node(backplane=redis_server.url), Node(backplane=redis_server.url)
    port = a.port
    watcher = None
    try:
        assert ready(a, b)
        watcher = Watcher(port).start()
        assert wait_for(lambda: "order:42" in watcher.client.rooms, 5)
        time.sleep(0.2)
        for i in range(20):
            b.publish("order:42", {"seq": i})
        assert wait_for(lambda: len(watcher.received) == 20, 10)
        a.stop()   # the watcher's server goes away mid-route
        for i in range(20, 40):
            b.publish("order:42", {"seq": i})   # published while it is gone
        a = Node(port, backplane=redis_server.url)   # back, with no memory of its own
        assert ready(a)
        for i in range(40, 60):
            b.publish("order:42", {"seq": i})
            time.sleep(0.005)
        assert wait_for(lambda: len(watcher.received) == 60, 15), len(watcher.received)
        assert [m["seq"] for m in watcher.received] == list(range(60))   # once, in order
        assert any(e[0] == "recovered" for e in watcher.events)
        assert not [e for e in watcher.events if e[0] == "discontinuity"]
    finally:
        if watcher:
            watcher.stop()
        a.stop()
        b.stop()


def test_a_backend_publishes_with_fcall_from_redis_cli(redis_server):
    a = Node(backplane=redis_server.url)
    try:
        assert ready(a)
        v1 = connect(f"ws://127.0.0.1:{a.port}/track/42", subprotocols=["wsframe.v1"])
        v1.send('{"op":"hello","session":null,"rooms":{}}')
        assert json.loads(v1.recv(timeout=5))["op"] == "welcome"
        joined = json.loads(v1.recv(timeout=5))
        assert joined["op"] == "joined" and joined["offset"] == 0
        plain = connect(f"ws://127.0.0.1:{a.port}/track/42")
        time.sleep(0.3)
        reply = redis_server.cli(
            "FCALL", "wsframe_publish", "2", "wsframe:meta:{order:42}",
            "wsframe:history:{order:42}", "order:42", '{"lat":52.5}', "1000", "300", "beef0001",
            "wsframe:room:", "wsframe:room:wsframe.v1:", "json")
        assert reply.split()[0] == "1"
        got = json.loads(v1.recv(timeout=5))
        assert got == {"op": "pub", "room": "order:42", "epoch": joined["epoch"], "offset": 1,
                       "data": {"lat": 52.5}}
        assert plain.recv(timeout=5) == '{"lat":52.5}'
        v1.close()
        plain.close()
    finally:
        a.stop()


def test_redis_down_a_join_says_try_again_later_and_publishes_are_counted(redis_server):
    a = Node(backplane=redis_server.url)
    try:
        assert ready(a)
        redis_server.stop()
        assert wait_for(lambda: not a.server.backplane.client.ready, 10)
        a.publish("order:1", {"x": 1})
        assert a.delivery.counts["publish_failed"] == 1
        v1 = connect(f"ws://127.0.0.1:{a.port}/track/1", subprotocols=["wsframe.v1"])
        v1.send('{"op":"hello","session":null,"rooms":{}}')
        assert json.loads(v1.recv(timeout=5))["op"] == "welcome"
        with pytest.raises(Exception):
            v1.recv(timeout=5)
        assert v1.close_code == 1013
    finally:
        a.stop()
