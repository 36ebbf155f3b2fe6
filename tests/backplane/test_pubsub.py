"""Rooms across servers through a real redis-server: per-room subscriptions, exactly-once
delivery, a plain redis-cli PUBLISH, order, and Redis going away and coming back."""
import contextlib
import json
import os
import signal
import time
import urllib.request


from wsframe.backplane.envelope import encode
from wsframe.client.blocking import connect
from wsframe.server.apps import install_builtin_app
from tests.helpers import call_in_loop, running_server, wait_for
from tests.services import free_port


@contextlib.contextmanager
def servers(url, count, **settings):
    """``count`` servers with the built-in app, sharing rooms through ``url``."""
    with contextlib.ExitStack() as stack:
        found = [stack.enter_context(running_server(install_builtin_app, backplane=url,
                                                    **settings)) for _ in range(count)]
        for server, _ in found:
            assert wait_for(lambda: server.backplane.client.ready, 10)
        yield found


def numsub(redis, room):
    reply = redis.cli("PUBSUB", "NUMSUB", f"wsframe:room:{room}").split()
    return int(reply[1])


def recv_all(ws, timeout=0.3):
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            got.append(ws.recv(timeout=timeout))
    return got


def test_a_broadcast_reaches_every_server_with_members_exactly_once(redis_server):
    with servers(redis_server.url, 3) as found:
        (a, port_a), (b, port_b), (c, port_c) = found
        driver = connect(f"ws://127.0.0.1:{port_a}/room/order:42")
        watcher_a = connect(f"ws://127.0.0.1:{port_a}/room/order:42")
        watcher_b = connect(f"ws://127.0.0.1:{port_b}/room/order:42")
        other_c = connect(f"ws://127.0.0.1:{port_c}/room/order:7")
        assert wait_for(lambda: numsub(redis_server, "order:42") == 2, 10)
        assert numsub(redis_server, "order:7") == 1   # only c, which has its member
        driver.send('{"lat":52.5,"lon":13.4}')
        for ws in (driver, watcher_a, watcher_b):
            assert ws.recv(timeout=5) == '{"lat":52.5,"lon":13.4}'
        for ws in (driver, watcher_a, watcher_b, other_c):
            assert recv_all(ws) == []   # once, not twice; the other order: nothing
        assert a.backplane.counts["own_skipped"] == 1
        assert c.backplane.counts["received"] == 0   # c never subscribed to order:42
        for ws in (driver, watcher_a, watcher_b, other_c):
            ws.close()


def test_redis_cli_publish_reaches_a_room_as_text_and_binary(redis_server):
    with servers(redis_server.url, 2) as found:
        (_, port_a), (_, port_b) = found
        members = [connect(f"ws://127.0.0.1:{port}/room/order:42") for port in (port_a, port_b)]
        assert wait_for(lambda: numsub(redis_server, "order:42") == 2, 10)
        assert redis_server.cli("PUBLISH", "wsframe:room:order:42",
                                '{"lat":52.5,"lon":13.4}') == "2"
        for ws in members:
            assert ws.recv(timeout=5) == '{"lat":52.5,"lon":13.4}'
        # binary by the documented envelope, as a shell sends it:
        #   printf '\0type=binary\n\1\2' | redis-cli -x PUBLISH wsframe:room:order:42
        redis_server.cli("PUBLISH", "wsframe:room:order:42", stdin=b"\x00type=binary\n\x01\x02")
        for ws in members:
            assert ws.recv(timeout=5) == b"\x01\x02"
        for ws in members:
            ws.close()


def test_subscriptions_follow_membership(redis_server):
    with servers(redis_server.url, 1) as [(server, port)]:
        first = connect(f"ws://127.0.0.1:{port}/room/r1")
        second = connect(f"ws://127.0.0.1:{port}/room/r1")
        assert wait_for(lambda: numsub(redis_server, "r1") == 1, 10)
        first.close()
        time.sleep(0.3)
        assert numsub(redis_server, "r1") == 1   # one member is left
        second.close()
        assert wait_for(lambda: numsub(redis_server, "r1") == 0, 10)
        assert server.backplane.counts["unsubscribe_commands"] >= 1


def test_many_rooms_subscribe_in_batches(redis_server):
    with servers(redis_server.url, 1) as [(server, port)]:
        names = [f"order:{i}" for i in range(600)]

        def join_all():
            for name in names:  # as 600 connections joining in one loop turn would
                server.backplane.want(name)
        call_in_loop(server, join_all)
        assert wait_for(lambda: int(redis_server.cli("PUBSUB", "NUMPAT") or 0) == 0 and
                        len(redis_server.cli("PUBSUB", "CHANNELS", "wsframe:room:*").split())
                        == 600, 10)
        assert server.backplane.counts["subscribe_commands"] == 2   # 512 + 88


def test_order_per_room_from_one_publisher(redis_server):
    with servers(redis_server.url, 2) as found:
        (_, port_a), (_, port_b) = found
        driver = connect(f"ws://127.0.0.1:{port_a}/room/track")
        watcher = connect(f"ws://127.0.0.1:{port_b}/room/track")
        assert wait_for(lambda: numsub(redis_server, "track") == 2, 10)
        for i in range(300):
            driver.send(f"position {i}")
        assert [watcher.recv(timeout=5) for _ in range(300)] == [f"position {i}" for i in range(300)]
        driver.close()
        watcher.close()


def test_server_publish_reaches_a_room_with_no_member_here(redis_server):
    with servers(redis_server.url, 2) as found:
        (a, _), (_, port_b) = found
        watcher = connect(f"ws://127.0.0.1:{port_b}/room/order:9")
        assert wait_for(lambda: numsub(redis_server, "order:9") == 1, 10)
        a.publish("order:9", b"\x00\xff", text=False)   # from any thread
        assert watcher.recv(timeout=5) == b"\x00\xff"
        watcher.close()


def health(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


def test_redis_restarted_local_delivery_goes_on_and_rooms_come_back(redis_server):
    with servers(redis_server.url, 2) as found:
        (a, port_a), (b, port_b) = found
        driver = connect(f"ws://127.0.0.1:{port_a}/room/order:1")
        local = connect(f"ws://127.0.0.1:{port_a}/room/order:1")
        remote = connect(f"ws://127.0.0.1:{port_b}/room/order:1")
        assert wait_for(lambda: numsub(redis_server, "order:1") == 2, 10)

        redis_server.stop()
        assert wait_for(lambda: not a.backplane.client.ready, 10)
        assert health(port_a)["status"] == "degraded"
        assert health(port_a)["backplane"]["state"] in ("down", "connecting")
        driver.send("during the outage")
        assert local.recv(timeout=5) == "during the outage"   # local delivery goes on
        assert driver.recv(timeout=5) == "during the outage"
        assert recv_all(remote) == []
        assert wait_for(lambda: a.backplane.counts["publish_failed"] >= 1, 5)

        redis_server.start()   # the same port: both servers reconnect and resubscribe
        assert wait_for(lambda: numsub(redis_server, "order:1") == 2, 15)
        assert health(port_b)["status"] == "ok"
        driver.send("after")
        assert remote.recv(timeout=5) == "after"
        assert a.backplane.client.connects >= 2
        for ws in (driver, local, remote):
            ws.close()


def test_no_redis_at_all_the_server_still_serves(redis_server):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    with running_server(install_builtin_app, backplane=nowhere) as (server, port):
        ws = connect(f"ws://127.0.0.1:{port}/room/x")
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send("plain echo still works")
        assert ws.recv(timeout=5) == "plain echo still works"
        state = health(port)["backplane"]
        assert state["state"] in ("down", "connecting") and "connect" in (state["last_error"] or "")
        assert state["publish_failed"] >= 1
        ws.close()


def test_a_paused_redis_is_noticed_and_never_blocks_the_loop(redis_server):
    with servers(redis_server.url, 1, tick_interval=0.05) as [(server, port)]:
        server.backplane.client.health_interval = 0.3   # the next PING uses it
        ws = connect(f"ws://127.0.0.1:{port}/room/p")
        os.kill(redis_server.proc.pid, signal.SIGSTOP)   # no RST, no answers
        try:
            for i in range(5):
                ws.send(f"m{i}")
                assert ws.recv(timeout=5) == f"m{i}"   # the loop keeps going
            assert wait_for(lambda: server.backplane.client.state != "ready", 10)
            assert "PING" in (server.backplane.client.last_error or "")
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        assert wait_for(lambda: server.backplane.client.ready, 15)
        ws.close()


def test_garbage_on_a_room_channel_is_counted_not_fatal(redis_server):
    with servers(redis_server.url, 1) as [(server, port)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/g")
        assert wait_for(lambda: numsub(redis_server, "g") == 1, 10)
        redis_server.cli("PUBLISH", "wsframe:room:g", stdin=b"\x00no newline")
        redis_server.cli("PUBLISH", "wsframe:room:g", stdin=encode(b"ok", text=True))
        assert ws.recv(timeout=5) == "ok"
        assert server.backplane.counts["malformed"] == 1
        ws.close()


def test_a_pubsub_flood_is_read_fast_enough_that_redis_keeps_the_server(redis_server):
    # Redis drops a subscriber whose output buffer passes the hard limit, or stays over the
    # soft one too long. Redis's defaults (set explicitly here) and a 20 MB burst published as
    # fast as Redis takes it: a server reads on every loop turn, so it keeps up and stays.
    redis_server.cli("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
    with servers(redis_server.url, 1) as [(server, port)]:
        member = connect(f"ws://127.0.0.1:{port}/room/flood")
        assert wait_for(lambda: numsub(redis_server, "flood") == 1, 10)
        import redis as redis_py
        r = redis_py.Redis(port=redis_server.port)
        chunk = b"x" * 4096
        with r.pipeline(transaction=False) as pipe:
            for _ in range(5000):   # 20 MB as fast as Redis takes it
                pipe.publish("wsframe:room:flood", chunk)
            pipe.execute()
        assert wait_for(lambda: server.backplane.counts["received"] == 5000, 30), \
            server.backplane.counts["received"]
        assert server.backplane.client.connects == 1   # never disconnected
        member.sock.close()
