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


def hello(ws, session=None):
    ws.send(json.dumps({"op": "hello", "session": session, "rooms": {}}))
    return json.loads(ws.recv(timeout=5))


def test_a_restarted_server_still_knows_what_it_acked(redis_server):
    """The ack was lost with the server (the client never read it): the retry to the
    restarted server is acknowledged again, as a duplicate, not handled twice."""
    node = Node(backplane=redis_server.url)
    port = node.port
    try:
        assert ready(node)
        ws = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=["wsframe.v1"])
        session = hello(ws)["session"]
        ws.send(json.dumps({"id": "msg_123", "action": "contact_driver"}))
        assert wait_for(lambda: node.app.taken == ["msg_123"], 5)
        key = "wsframe:session:{%s}" % session
        assert wait_for(lambda: redis_server.cli("LRANGE", key, "0", "-1") == "msg_123", 5)
        ws.sock.close()   # without reading the ack
        node.stop()
        node = Node(port, backplane=redis_server.url)   # no memory of its own
        assert ready(node)
        ws = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=["wsframe.v1"])
        ws.send(json.dumps({"op": "hello", "session": session, "rooms": {}}))
        ws.send(json.dumps({"id": "msg_123", "action": "contact_driver"}))   # the retry
        ws.send(json.dumps({"id": "msg_124", "action": "contact_driver"}))
        welcome = json.loads(ws.recv(timeout=5))
        assert welcome["op"] == "welcome" and welcome["session"] == session
        assert welcome["resumed"] is True
        answers = [json.loads(ws.recv(timeout=5)) for _ in range(3)]
        assert [a for a in answers if "ack" in a] == [{"ack": "msg_123", "duplicate": True},
                                                      {"ack": "msg_124"}]
        assert [a["op"] for a in answers if "op" in a] == ["joined"]   # (from Redis, async)
        assert node.app.taken == ["msg_124"]   # msg_123 was taken once, before the restart
        assert node.delivery.counts["sessions_from_redis"] == 1
        # a session Redis does not know: a new one, as without Redis
        other = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=["wsframe.v1"])
        fresh = hello(other, "no-such-session")
        assert fresh["resumed"] is False and fresh["session"] != "no-such-session"
        ws.close()
        other.close()
    finally:
        node.stop()


def test_acked_messages_across_a_server_restart_taken_exactly_once(redis_server):
    node = Node(backplane=redis_server.url)
    port = node.port
    taken = []
    watcher = None
    try:
        assert ready(node)
        watcher = Watcher(port).start()
        assert wait_for(lambda: watcher.client.welcomed, 5)
        session = watcher.client.session
        ids = []
        for i in range(60):
            ids.append(watcher.send({"action": "contact_driver", "n": i}))
            if i == 30:
                node.stop()
                taken += node.app.taken
                node = Node(port, backplane=redis_server.url)
                assert ready(node)
            time.sleep(0.01)
        assert wait_for(lambda: not watcher.client.outbox, 20), len(watcher.client.outbox)
        taken += node.app.taken
        assert sorted(taken) == sorted(ids)   # every one, exactly once, across the restart
        assert watcher.client.session == session   # the same session, from Redis
    finally:
        if watcher:
            watcher.stop()
        node.stop()


def test_a_burst_of_acks_is_remembered_up_to_the_window(redis_server):
    """Acks batched per loop turn, in chunks Lua's unpack() can take, trimmed to the window."""
    node = Node(backplane=redis_server.url)
    try:
        assert ready(node)
        ws = connect(f"ws://127.0.0.1:{node.port}/track/42", subprotocols=["wsframe.v1"])
        session = hello(ws)["session"]
        burst = "".join(json.dumps({"id": f"m{i}"}) + "\n" for i in range(1500))
        for line in burst.splitlines():
            ws.send(line)
        assert wait_for(lambda: len(node.app.taken) == 1500, 10)
        key = "wsframe:session:{%s}" % session
        assert wait_for(lambda: redis_server.cli("LLEN", key) == "1024", 5)
        assert redis_server.cli("LINDEX", key, "-1") == "m1499"
        assert redis_server.cli("LINDEX", key, "0") == "m476"   # the oldest kept
        ws.sock.close()
    finally:
        node.stop()


def test_a_redis_cluster_backplane_is_refused_not_silently_local():
    from wsframe.delivery import Delivery
    from wsframe.server.server import Server
    server = Server(backplane="redis+cluster://127.0.0.1:7000")   # connects only on listen
    with pytest.raises(ValueError, match="Redis Cluster"):
        Delivery(server)
    server.loop.close()
