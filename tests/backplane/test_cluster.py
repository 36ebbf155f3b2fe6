"""Rooms across servers through a real three-node Redis Cluster's sharded pub/sub: rooms on
every node, exactly-once delivery, redis-cli SPUBLISH, traffic kept on its shard, a slot
moved (sunsubscribe push, MOVED), a node restarted; and the parts that need no cluster."""
import contextlib
import json
import os
import signal
import urllib.request

import pytest

from wsframe.backplane import RedisClusterBackplane, backplane_for
from wsframe.backplane.address import parse_cluster_url
from wsframe.backplane.cluster import (_redirect, crc16, key_slot, parse_cluster_slots,
                                       parse_shards)
from wsframe.backplane.redis import RedisClient, RedisError
from wsframe.client.blocking import connect
from wsframe.loop.eventloop import Loop
from wsframe.server.apps import install_builtin_app
from tests.helpers import call_in_loop, running_server, wait_for
from tests.services import RedisCluster, WsframeServe, redis_cluster  # noqa: F401


# ---- no cluster needed ------------------------------------------------------------------

def test_key_slot_follows_the_cluster_specification():
    assert crc16(b"123456789") == 0x31C3          # CRC16/XMODEM check value
    assert key_slot(b"foo") == 12182 and key_slot(b"bar") == 5061
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers")
    assert key_slot(b"foo{}{bar}") == crc16(b"foo{}{bar}") % 16384   # empty tag: whole key
    assert key_slot(b"foo{{bar}}zap") == key_slot(b"{bar")           # up to the first }
    assert key_slot(b"foo{bar}{zap}") == key_slot(b"bar")            # the first tag only
    assert key_slot(b"{unclosed") == crc16(b"{unclosed") % 16384


def test_cluster_urls():
    seeds = parse_cluster_url("redis+cluster://:s%40cret@10.0.0.1:7000,10.0.0.2:7001")
    assert [(s.host, s.port, s.password) for s in seeds] == [
        ("10.0.0.1", 7000, "s@cret"), ("10.0.0.2", 7001, "s@cret")]
    assert parse_cluster_url("rediss+cluster://[::1]:7000")[0].tls
    for bad, why in [("redis+cluster://", "at least one node"),
                     ("redis+cluster://h:7000/2", "database 0 only"),
                     ("redis+cluster://h:port", "port"),
                     ("redis://h:7000", "starts with redis\\+cluster://")]:
        with pytest.raises(ValueError, match=why):
            parse_cluster_url(bad)
    loop = Loop()
    try:
        assert isinstance(backplane_for(loop, "redis+cluster://127.0.0.1:7000"),
                          RedisClusterBackplane)
    finally:
        loop.close()


def test_slot_maps_and_redirects_are_read_strictly():
    def node(**fields):   # as hiredis reads a CLUSTER SHARDS node (tls_port: b"tls-port")
        return {b"id": b"x", b"port": 7000, b"ip": b"10.0.0.1", b"endpoint": b"10.0.0.1",
                b"role": b"master",
                **{key.replace("_", "-").encode(): value for key, value in fields.items()}}
    shards = [{b"slots": [0, 99, 200, 299], b"nodes": [node(), node(role=b"replica", port=7009)]},
              {b"slots": [100, 199], b"nodes": [node(endpoint=b"", port=7001, tls_port=7101)]},
              {b"slots": [300, 399], b"nodes": [node(endpoint=b"?")]},   # unknown: left out
              {b"slots": [], b"nodes": [node(port=7002)]}]               # no slots yet
    assert parse_shards(shards, False, "seed") == [
        (0, 99, "10.0.0.1", 7000), (200, 299, "10.0.0.1", 7000), (100, 199, "seed", 7001)]
    assert (100, 199, "seed", 7101) in parse_shards(shards, True, "seed")
    assert parse_cluster_slots([[0, 5460, [b"127.0.0.1", 7000, b"id", {}]],
                                [5461, 16383, [b"", 7001, b"id2"]]], False, "seed") == [
        (0, 5460, "127.0.0.1", 7000), (5461, 16383, "seed", 7001)]
    for bad in ([{b"slots": [0, 16384], b"nodes": [node()]}], [[b"not", b"a map"]], b"x"):
        with pytest.raises(ValueError):
            parse_shards(bad, False, "seed")
    with pytest.raises(ValueError):
        parse_cluster_slots([[0, 10]], False, "seed")
    assert _redirect("MOVED 3999 127.0.0.1:6381", None) == ("MOVED", 3999, "127.0.0.1", 6381)
    assert _redirect("ASK 3999 [::1]:6381", None) == ("ASK", 3999, "::1", 6381)
    for other in ("CLUSTERDOWN The cluster is down", "MOVED 99999 h:1", "MOVED x h:1",
                  "MOVED 1 h:port"):
        assert _redirect(other, None) is None


def test_a_refused_command_in_a_push_batch_keeps_the_connection(redis_server):
    # SSUBSCRIBE works on a standalone Redis >= 7 too; the empty SUBSCRIBE is refused
    with running_server() as (server, _):
        pushes, errors = [], []
        client = call_in_loop(server, lambda: RedisClient(
            server.loop, parse_cluster_url(f"redis+cluster://127.0.0.1:{redis_server.port}")[0],
            on_push=pushes.append))
        call_in_loop(server, client.start)
        assert wait_for(lambda: client.ready, 10)
        assert call_in_loop(server, client.push_batch,
                            [(b"SSUBSCRIBE", b"a"), (b"SUBSCRIBE",), (b"SSUBSCRIBE", b"b")],
                            errors.append)
        assert wait_for(lambda: len(pushes) == 2, 5)
        assert [p[:2] for p in pushes] == [[b"ssubscribe", b"a"], [b"ssubscribe", b"b"]]
        assert len(errors) == 1 and isinstance(errors[0], RedisError)
        assert "wrong number of arguments" in str(errors[0])
        replies = []
        call_in_loop(server, lambda: client.command(b"PING", callback=replies.append))
        assert wait_for(lambda: replies == [b"PONG"], 5)   # in step, on the same connection
        assert client.connects == 1
        call_in_loop(server, client.close)


# ---- a real cluster (tests.services.redis_cluster), shared by the tests below -------------

@pytest.fixture
def cluster(redis_cluster):
    return redis_cluster


@contextlib.contextmanager
def servers(url, count, **settings):
    with contextlib.ExitStack() as stack:
        found = [stack.enter_context(running_server(install_builtin_app, backplane=url,
                                                    **settings)) for _ in range(count)]
        for server, _ in found:
            assert wait_for(lambda: server.backplane.stats()["state"] == "ready", 15)
        yield found


def rooms_on_each_node(cluster, stem):
    """One room name per node, each on a slot that node serves."""
    found = {}
    for i in range(200):
        name = f"{stem}:{i}"
        node = cluster.node_of(f"wsframe:room:{name}")
        found.setdefault(node.port, name)
        if len(found) == len(cluster.nodes):
            return [found[node.port] for node in cluster.nodes]
    raise AssertionError("no room name for some node")


def shardnumsub(node, room):
    return int(node.cli("PUBSUB", "SHARDNUMSUB", f"wsframe:room:{room}").split()[1])


def bus_publishes(node):
    """Pub/sub messages this node sent over the cluster bus (plain and sharded)."""
    info = dict(line.split(":", 1) for line in node.cli("CLUSTER", "INFO").splitlines()
                if ":" in line)
    return (int(info.get("cluster_stats_messages_publish_sent", 0)),
            int(info.get("cluster_stats_messages_publishshard_sent", 0)))


def recv_all(ws, timeout=0.3):
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            got.append(ws.recv(timeout=timeout))
    return got


def test_rooms_on_every_node_reach_both_servers_exactly_once(cluster):
    rooms = rooms_on_each_node(cluster, "order")
    with servers(cluster.url, 2) as found:
        (a, port_a), (b, port_b) = found
        members = {room: [connect(f"ws://127.0.0.1:{port}/room/{room}")
                          for port in (port_a, port_b)] for room in rooms}
        for room, node in zip(rooms, cluster.nodes):
            assert wait_for(lambda: shardnumsub(node, room) == 2, 10)
            for other in cluster.nodes:
                if other is not node:   # the other nodes know nothing of this room
                    assert shardnumsub(other, room) == 0
        assert all(node.cli("PUBSUB", "CHANNELS") == "" for node in cluster.nodes)  # none plain
        for room in rooms:
            members[room][0].send(f"hello {room}")
        for room in rooms:
            for ws in members[room]:
                assert ws.recv(timeout=5) == f"hello {room}"
        for room in rooms:
            for ws in members[room]:
                assert recv_all(ws) == []    # exactly once; no other room's message
        assert a.backplane.counts["own_skipped"] == 3 and a.backplane.counts["received"] == 3
        assert b.backplane.counts["received"] == 3 and b.backplane.counts["own_skipped"] == 0
        assert len({a.backplane.node_for(room).port for room in rooms}) == 3
        with urllib.request.urlopen(f"http://127.0.0.1:{port_a}/health", timeout=5) as reply:
            health = json.loads(reply.read())
        assert health["status"] == "ok" and health["backplane"]["cluster"]
        assert health["backplane"]["state"] == "ready"
        assert health["backplane"]["slots_covered"] == 16384
        for sockets in members.values():
            for ws in sockets:
                ws.close()


def test_redis_cli_spublish_reaches_a_room(cluster):
    room = rooms_on_each_node(cluster, "cli")[1]
    owner = cluster.node_of(f"wsframe:room:{room}")
    elsewhere = next(node for node in cluster.nodes if node is not owner)
    with servers(cluster.url, 2) as found:
        members = [connect(f"ws://127.0.0.1:{port}/room/{room}") for _, port in found]
        assert wait_for(lambda: shardnumsub(owner, room) == 2, 10)
        # -c: redis-cli follows the MOVED from a node that does not serve the slot
        assert elsewhere.cli("-c", "SPUBLISH", f"wsframe:room:{room}",
                             '{"lat":52.5,"lon":13.4}') == "2"
        elsewhere.cli("-c", "SPUBLISH", f"wsframe:room:{room}", stdin=b"\x00type=binary\n\x01")
        for ws in members:
            assert ws.recv(timeout=5) == '{"lat":52.5,"lon":13.4}'
            assert ws.recv(timeout=5) == b"\x01"
            ws.close()


def test_a_rooms_traffic_stays_on_its_shard(cluster):
    """Sharded: no node sends a room message over the cluster bus (no replicas here). The
    plain backplane on the same cluster: every PUBLISH is copied to the two other nodes."""
    room = rooms_on_each_node(cluster, "shard")[0]
    for url, copies in [(cluster.url, 0), (cluster.nodes[1].url, 2)]:
        with servers(url, 2) as found:
            (a, port_a), (_, port_b) = found
            driver = connect(f"ws://127.0.0.1:{port_a}/room/{room}")
            watcher = connect(f"ws://127.0.0.1:{port_b}/room/{room}")
            if copies == 0:
                owner = cluster.node_of(f"wsframe:room:{room}")
                assert wait_for(lambda: shardnumsub(owner, room) == 2, 10)
            else:
                assert wait_for(lambda: int(cluster.nodes[1].cli(
                    "PUBSUB", "NUMSUB", f"wsframe:room:{room}").split()[1]) == 2, 10)
            before = [bus_publishes(node) for node in cluster.nodes]
            for i in range(20):
                driver.send(f"m{i}")
            assert [watcher.recv(timeout=5) for _ in range(20)] == [f"m{i}" for i in range(20)]
            after = [bus_publishes(node) for node in cluster.nodes]
            sent = sum(x[0] - y[0] + x[1] - y[1] for x, y in zip(after, before))
            assert sent == 20 * copies
            driver.close()
            watcher.close()


def test_subscriptions_follow_membership(cluster):
    room = rooms_on_each_node(cluster, "member")[2]
    node = cluster.node_of(f"wsframe:room:{room}")
    with servers(cluster.url, 1) as [(server, port)]:
        first = connect(f"ws://127.0.0.1:{port}/room/{room}")
        second = connect(f"ws://127.0.0.1:{port}/room/{room}")
        assert wait_for(lambda: shardnumsub(node, room) == 1, 10)
        first.close()
        assert wait_for(lambda: len(server.rooms.get(room) or ()) == 1, 5)
        assert shardnumsub(node, room) == 1   # one member is left
        second.close()
        assert wait_for(lambda: shardnumsub(node, room) == 0, 10)
        assert server.backplane.counts["unsubscribe_commands"] == 1
        again = connect(f"ws://127.0.0.1:{port}/room/{room}")
        assert wait_for(lambda: shardnumsub(node, room) == 1, 10)
        assert server.backplane.counts["subscribe_commands"] == 2
        assert server.backplane.counts["refused"] == 0
        again.close()


def test_wsframe_serve_takes_a_cluster_url(cluster):
    rooms = rooms_on_each_node(cluster, "serve")
    first, second = WsframeServe("--redis", cluster.url), None
    try:
        second = WsframeServe("--redis", cluster.url.replace(
            f"127.0.0.1:{cluster.nodes[0].port},", ""))   # any seed will do
        for serve in (first, second):
            assert wait_for(lambda: serve.health()["backplane"]["state"] == "ready", 15)
        members = {room: (connect(f"ws://127.0.0.1:{first.port}/room/{room}"),
                          connect(f"ws://127.0.0.1:{second.port}/room/{room}"))
                   for room in rooms}
        for room in rooms:
            owner = cluster.node_of(f"wsframe:room:{room}")
            assert wait_for(lambda: shardnumsub(owner, room) == 2, 10)
        for room, (here, there) in members.items():
            there.send(f"from the second, {room}")
            assert here.recv(timeout=5) == f"from the second, {room}"
            assert there.recv(timeout=5) == f"from the second, {room}"
        for pair in members.values():
            for ws in pair:
                assert recv_all(ws, 0.1) == []
                ws.close()
    finally:
        for serve in (first, second):
            if serve is not None:
                serve.stop()


def test_many_rooms_subscribe_one_command_per_slot(cluster):
    with servers(cluster.url, 1) as [(server, _)]:
        names = [f"truck:{i}" for i in range(300)] + [f"{{fleet}}:truck:{i}" for i in range(600)]
        slots = {key_slot(f"wsframe:room:{name}".encode()) for name in names[:300]}

        def join_all():   # as 900 connections joining in one loop turn would
            for name in names:
                server.backplane.want(name)
        call_in_loop(server, join_all)
        total = lambda: sum(len(node.cli("PUBSUB", "SHARDCHANNELS").split())  # noqa: E731
                            for node in cluster.nodes)
        assert wait_for(lambda: total() == 900, 10)
        # the 600 {fleet} rooms share one slot: 512 + 88; the others about one per room
        assert server.backplane.counts["subscribe_commands"] == len(slots) + 2
        fleet = cluster.node_of("{fleet}")
        assert len(fleet.cli("PUBSUB", "SHARDCHANNELS", "wsframe:room:{fleet}*").split()) == 600
        assert server.backplane.counts["refused"] == 0


def test_a_moved_slot_is_followed_by_subscriptions_and_publishes(cluster):
    room = rooms_on_each_node(cluster, "moving")[0]
    channel = f"wsframe:room:{room}"
    slot = key_slot(channel.encode())
    with servers(cluster.url, 2) as found:
        (a, _), (b, port_b) = found
        watcher = connect(f"ws://127.0.0.1:{port_b}/room/{room}")
        source = cluster.node_of(channel)
        target = next(node for node in cluster.nodes if node is not source)
        assert wait_for(lambda: shardnumsub(source, room) == 1, 10)
        a.publish(room, "before")   # a has no member: it only publishes (a map read once)
        assert watcher.recv(timeout=5) == "before"

        cluster.move_slot(slot, source, target)
        # b was told by an sunsubscribe push, and subscribed at the new owner
        assert wait_for(lambda: shardnumsub(target, room) == 1, 10)
        assert b.backplane.counts["slot_moves"] == 1
        assert b.backplane.node_for(room).port == target.port
        # a's map is stale: SPUBLISH to the old owner, MOVED, sent again, in order
        for i in range(30):
            a.publish(room, f"after {i}")
        assert [watcher.recv(timeout=5) for _ in range(30)] == [f"after {i}" for i in range(30)]
        assert recv_all(watcher) == []
        assert a.backplane.counts["moved"] >= 1, (a.backplane.counts, b.backplane.counts)
        assert a.backplane.counts["publish_failed"] == 0
        assert a.backplane.node_for(room).port == target.port
        watcher.close()


def test_a_restarted_node_gets_its_rooms_back(cluster):
    room = rooms_on_each_node(cluster, "restart")[2]
    channel = f"wsframe:room:{room}"
    with servers(cluster.url, 2) as found:
        (a, port_a), (b, port_b) = found
        driver = connect(f"ws://127.0.0.1:{port_a}/room/{room}")
        watcher = connect(f"ws://127.0.0.1:{port_b}/room/{room}")
        node = cluster.node_of(channel)
        assert wait_for(lambda: shardnumsub(node, room) == 2, 10)

        node.stop()   # SIGKILL: the node's subscriptions are gone with it
        assert wait_for(lambda: not a.backplane.ready, 10)
        driver.send("during")
        assert driver.recv(timeout=5) == "during"    # local delivery goes on
        assert wait_for(lambda: a.backplane.counts["publish_failed"] >= 1, 5)

        node.start()   # the same port and nodes.conf: it serves the same slots again
        cluster.wait_ok()
        assert wait_for(lambda: shardnumsub(node, room) == 2, 20)
        assert wait_for(lambda: a.backplane.ready and b.backplane.ready, 10)
        driver.send("after")
        assert watcher.recv(timeout=5) == "after"
        assert recv_all(watcher) == []
        assert a.backplane.stats()["nodes"][f"127.0.0.1:{node.port}"]["connects"] >= 2
        driver.close()
        watcher.close()


def test_a_paused_node_does_not_block_the_loop(cluster):
    room = rooms_on_each_node(cluster, "paused")[1]
    with servers(cluster.url, 1, tick_interval=0.05) as [(server, port)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/{room}")
        node = cluster.node_of(f"wsframe:room:{room}")
        client = server.backplane.nodes[("127.0.0.1", node.port)].client
        client.health_interval = 0.3
        os.kill(node.proc.pid, signal.SIGSTOP)
        try:
            for i in range(5):
                ws.send(f"m{i}")
                assert ws.recv(timeout=5) == f"m{i}"
            assert wait_for(lambda: client.state != "ready", 10)
        finally:
            os.kill(node.proc.pid, signal.SIGCONT)
        cluster.wait_ok()
        assert wait_for(lambda: server.backplane.ready, 15)
        assert wait_for(lambda: shardnumsub(node, room) == 1, 15)
        ws.close()


# ---- what a real cluster does not send for shard channels: -ASK (Redis serves them from
# the old owner until a migration ends), and MOVED with an empty host ---------------------

class FakeNode:
    """Just enough of a cluster node, in a thread: HELLO, PING, CLUSTER SHARDS (two
    shards, from ``state``), ASKING, and SPUBLISH answered by ``answer(node, channel)``."""

    def __init__(self, state, answer):
        import hiredis
        import socket
        import threading
        self.hiredis, self.state, self.answer = hiredis, state, answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.seen = []   # (command, ...) in arrival order, per connection order
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import threading
        self.listener.settimeout(0.2)
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self.talk, args=(sock,), daemon=True).start()

    def talk(self, sock):
        reader = self.hiredis.Reader()
        sock.settimeout(0.2)
        with sock:
            while not self.stopping:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                reader.feed(data)
                while (command := reader.gets()) is not False:
                    sock.sendall(self.reply([part.upper() if i == 0 else part
                                             for i, part in enumerate(command)]))

    def reply(self, command):
        self.seen.append(tuple(command))
        name = command[0]
        if name == b"HELLO":
            return encode_resp({b"server": b"fake", b"version": b"7.0.0", b"mode": b"cluster"})
        if name == b"PING":
            return b"+PONG\r\n"
        if name == b"ASKING":
            return b"+OK\r\n"
        if name == b"CLUSTER" and command[1].upper() == b"SHARDS":
            return encode_resp([{b"slots": [first, last], b"nodes": [{
                b"id": b"n%d" % port, b"port": port, b"ip": b"127.0.0.1", b"endpoint": b"",
                b"role": b"master", b"health": b"online"}]}
                for first, last, port in self.state["shards"]])
        if name == b"SPUBLISH":
            return self.answer(self, command[1])
        return b"-ERR unknown command\r\n"

    def close(self):
        self.stopping = True
        self.listener.close()
        self.thread.join(5)


def encode_resp(value):
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, dict):
        return b"%%%d\r\n" % len(value) + b"".join(encode_resp(k) + encode_resp(v)
                                                    for k, v in value.items())
    return b"*%d\r\n" % len(value) + b"".join(encode_resp(v) for v in value)


def test_ask_and_moved_with_an_empty_host_are_followed():
    ask_room = next(f"ask:{i}" for i in range(1000)
                    if key_slot(f"wsframe:room:ask:{i}".encode()) < 8192)
    move_room = next(f"move:{i}" for i in range(1000)
                     if key_slot(f"wsframe:room:move:{i}".encode()) < 8192)
    move_slot = key_slot(f"wsframe:room:{move_room}".encode())
    state = {}

    def answer(node, channel):
        if node is a and channel.endswith(ask_room.encode()):
            return b"-ASK %d :%d\r\n" % (key_slot(channel), b.port)   # this once; map unchanged
        if node is a and channel.endswith(move_room.encode()):
            state["shards"] = [(0, move_slot - 1, a.port), (move_slot, move_slot, b.port),
                               (move_slot + 1, 8191, a.port), (8192, 16383, b.port)]
            return b"-MOVED %d :%d\r\n" % (move_slot, b.port)   # the slot went to b
        return b":1\r\n"

    a = FakeNode(state, answer)
    b = FakeNode(state, answer)
    state["shards"] = [(0, 8191, a.port), (8192, 16383, b.port)]
    try:
        with running_server(backplane=f"redis+cluster://127.0.0.1:{a.port}") as (server, _):
            backplane = server.backplane
            assert wait_for(lambda: backplane.stats()["state"] == "ready", 10)
            assert call_in_loop(server, backplane.publish, ask_room, b"x", True)
            assert wait_for(lambda: any(c[0] == b"SPUBLISH" for c in b.seen), 5)
            at_b = [c[0] for c in b.seen if c[0] in (b"ASKING", b"SPUBLISH")]
            assert at_b == [b"ASKING", b"SPUBLISH"]
            assert backplane.counts["asked"] == 1
            assert backplane.node_for(ask_room).port == a.port   # ASK: the map stays

            # in one turn: all five are on their way to a when its first MOVED comes back
            assert call_in_loop(server, lambda: [backplane.publish(move_room, b"m%d" % i, True)
                                                 for i in range(5)]) == [True] * 5
            assert wait_for(lambda: sum(c[0] == b"SPUBLISH" for c in b.seen) == 6, 5)
            assert [c[2][-2:] for c in b.seen if c[0] == b"SPUBLISH"][1:] == [
                b"m0", b"m1", b"m2", b"m3", b"m4"]   # sent again in their order
            assert backplane.counts["moved"] == 5
            assert backplane.node_for(move_room).port == b.port
            assert backplane.counts["publish_failed"] == 0
    finally:
        a.close()
        b.close()


def test_a_cluster_url_to_a_plain_redis_says_why_and_the_server_still_serves(redis_server):
    url = f"redis+cluster://127.0.0.1:{redis_server.port}"
    with running_server(install_builtin_app, backplane=url) as (server, port):
        assert wait_for(lambda: server.backplane.last_error is not None, 10)
        ws = connect(f"ws://127.0.0.1:{port}/room/x")
        ws.send("local")
        assert ws.recv(timeout=5) == "local"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
            health = json.loads(reply.read())
        assert health["status"] == "degraded"
        assert health["backplane"]["state"] == "connecting"
        assert "cluster support disabled" in health["backplane"]["last_error"]
        assert health["backplane"]["publish_failed"] >= 1
        ws.close()


def test_a_failover_moves_the_rooms_to_the_new_primary():
    """With a replica per primary: CLUSTER FAILOVER on a replica; the old primary drops
    the room's subscriptions (sunsubscribe), and both servers subscribe at the new one."""
    cluster = RedisCluster(3, replicas=1)
    try:
        primaries = [n for n in cluster.nodes if "master" in n.cli("ROLE").split()[0:1]]
        room = next(f"failover:{i}" for i in range(200)
                    if cluster.node_of(f"wsframe:room:failover:{i}") in primaries)
        channel = f"wsframe:room:{room}"
        with servers(cluster.url, 2) as found:
            (a, port_a), (b, port_b) = found
            driver = connect(f"ws://127.0.0.1:{port_a}/room/{room}")
            watcher = connect(f"ws://127.0.0.1:{port_b}/room/{room}")
            old = cluster.node_of(channel)
            assert wait_for(lambda: shardnumsub(old, room) == 2, 10)
            assert len(a.backplane.nodes) == 3   # primaries only, not the replicas
            new = cluster.replica_of(old)
            new.cli("CLUSTER", "FAILOVER")
            assert wait_for(lambda: cluster.owns(new, key_slot(channel.encode())), 20)
            assert wait_for(lambda: shardnumsub(new, room) == 2, 20)
            assert a.backplane.node_for(room).port == new.port
            # the old primary, now a replica, ended the subscription with an sunsubscribe
            assert a.backplane.counts["slot_moves"] == b.backplane.counts["slot_moves"] == 1
            driver.send("after the failover")
            assert watcher.recv(timeout=5) == "after the failover"
            assert driver.recv(timeout=5) == "after the failover"
            assert recv_all(watcher) == [] and recv_all(driver) == []
            driver.close()
            watcher.close()
    finally:
        cluster.close()
