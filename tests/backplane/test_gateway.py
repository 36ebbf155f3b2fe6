"""Gateway mode against a real redis-server, real wsframe servers, and redis-py as the
backend: the stream entries, answers to one connection and to a room, consumer groups,
a crashed consumer's entries re-claimed, Redis away (1013, counted), MAXLEN, the CLI
with the shipped backend example."""
import contextlib
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from wsframe import codec
from wsframe.client.blocking import connect
from wsframe.codec.frames import OP_CLOSE, OP_TEXT
from wsframe.errors import ConnectionClosed, InvalidResponse
from wsframe.server.apps import install_gateway_app
from tests.helpers import RawPeer, running_server, wait_for
from tests.services import free_port

redis = pytest.importorskip("redis", reason="the gateway's backend side is redis-py")

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "gateway_backend.py"


def example():
    """docs/examples/gateway_backend.py as a module (the tests use its functions)."""
    spec = importlib.util.spec_from_file_location("gateway_backend", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def gateways(url, count=1, **options):
    """``count`` servers in gateway mode on ``url``; yields [(server, port, gateway)]."""
    with contextlib.ExitStack() as stack:
        found = []
        for _ in range(count):
            box = {}

            def configure(server):
                box["gateway"] = install_gateway_app(server, **options)
            server, port = stack.enter_context(running_server(configure, backplane=url))
            found.append((server, port, box["gateway"]))
        for server, _, gateway in found:
            assert wait_for(lambda: server.backplane.client.ready and
                            gateway.channel in server.backplane.subscribed, 10)
        yield found


def entries(r, stream="wsframe:in:room"):
    return [fields for _, fields in r.xrange(stream)]


def wait_entries(r, n, stream="wsframe:in:room"):
    assert wait_for(lambda: r.xlen(stream) >= n, 10), entries(r, stream)
    return entries(r, stream)


def closed_with(ws, timeout=5):
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=timeout)
    return info.value.code


def health(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def r(redis_server):
    client = redis.Redis(port=redis_server.port)
    yield client
    client.close()


def test_entries_carry_the_documented_fields(redis_server, r):
    with gateways(redis_server.url) as [(server, port, gateway)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/order:42?token=abc")
        ws.send('{"lat":52.5}')
        ws.send(b"\x00\xff")
        opened, text, binary = wait_entries(r, 3)
        conn_id = opened[b"conn"]
        origin, _, serial = conn_id.decode().rpartition(".")
        assert origin == server.backplane.origin and serial.isdigit()
        common = {b"conn": conn_id, b"route": b"room", b"room": b"order:42",
                  b"param:name": b"order:42"}
        assert opened == {b"type": b"open", **common, b"path": b"/room/order:42",
                          b"query": b"token=abc"}
        assert text == {b"type": b"text", **common, b"data": b'{"lat":52.5}'}
        assert binary == {b"type": b"binary", **common, b"data": b"\x00\xff"}
        assert list(opened)[:2] == [b"type", b"conn"]   # the documented order
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)   # the server handles nothing itself: no echo, no broadcast
        ws.close(4000, "bye")
        closed = wait_entries(r, 4)[3]
        assert closed == {b"type": b"close", **common, b"code": b"4000", b"reason": b"bye"}
        other = connect(f"ws://127.0.0.1:{port}/elsewhere")   # the default route, no room
        other.send("hi")
        opened, text = wait_entries(r, 2, "wsframe:in:default")
        assert b"room" not in opened and text[b"data"] == b"hi" and text[b"route"] == b"default"
        other.close()
        assert gateway.counts["appended"] >= 6 and gateway.counts["append_failed"] == 0


def test_a_backend_answer_reaches_exactly_one_connection(redis_server, r):
    backend = example()
    with gateways(redis_server.url, 2) as [(_, port_a, _), (_, port_b, gateway_b)]:
        clients = [connect(f"ws://127.0.0.1:{port}/room/lobby") for port in (port_a, port_a, port_b)]
        ids = [fields[b"conn"] for fields in wait_entries(r, 3)]
        assert len(set(ids)) == 3   # unique across servers too
        by_id = {}
        for conn_id in ids:   # each answer reaches one client, and a different one each time
            assert backend.to_connection(r, conn_id, b"for " + conn_id) == 1   # one gateway
            got = []
            for ws in clients:
                with contextlib.suppress(TimeoutError):
                    got.append((ws, ws.recv(timeout=0.5)))
            assert [message for _, message in got] == ["for " + conn_id.decode()]
            by_id[conn_id] = got[0][0]
        assert len(set(map(id, by_id.values()))) == 3
        # the connection on server b (the stream's entries need not come in connect order)
        target = next(conn_id for conn_id, ws in by_id.items() if ws is clients[2])
        backend.to_connection(r, target, b"\x01\x02", binary=True)
        assert by_id[target].recv(timeout=5) == b"\x01\x02"
        # close=<code> in the envelope closes that connection (RFC 6455 §7.4.2: 4000-4999)
        origin = target.rsplit(b".", 1)[0]
        r.publish(b"wsframe:conn:" + origin, b"\x00conn=" + target + b";close=4001\nnot allowed")
        assert closed_with(by_id[target]) == 4001
        assert gateway_b.counts["closed_by_backend"] == 1
        # gone now: counted, not delivered anywhere
        backend.to_connection(r, target, b"too late")
        assert wait_for(lambda: gateway_b.counts["to_conn_unknown"] == 1, 5)
        r.publish(b"wsframe:conn:" + origin, b"no envelope")
        assert wait_for(lambda: gateway_b.counts["to_conn_malformed"] == 1, 5)
        for ws in clients[:2]:
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.3)
            ws.close()


def test_a_room_answer_reaches_its_members_across_two_servers(redis_server, r):
    backend = example()
    with gateways(redis_server.url, 2) as [(_, port_a, _), (_, port_b, _)]:
        members = [connect(f"ws://127.0.0.1:{port}/room/order:42") for port in (port_a, port_b)]
        outsider = connect(f"ws://127.0.0.1:{port_b}/room/order:7")
        wait_entries(r, 3)
        assert wait_for(lambda: r.pubsub_numsub("wsframe:room:order:42")[0][1] == 2, 10)
        assert backend.to_room(r, b"order:42", b'{"lat":52.5}') == 2
        for ws in members:
            assert ws.recv(timeout=5) == '{"lat":52.5}'
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.3)   # once
        with pytest.raises(TimeoutError):
            outsider.recv(timeout=0.3)
        for ws in (*members, outsider):
            ws.close()


def test_two_consumers_share_the_work(redis_server, r):
    with gateways(redis_server.url) as [(_, port, _)]:
        r.xgroup_create("wsframe:in:room", "backend", id="0", mkstream=True)
        ws = connect(f"ws://127.0.0.1:{port}/room/work")
        for i in range(20):
            ws.send(f"job {i}")
        wait_entries(r, 21)
        read = {}
        for consumer, count in (("one", 8), ("two", 100)):
            reply = r.xreadgroup("backend", consumer, {"wsframe:in:room": ">"}, count=count)
            read[consumer] = [(entry_id, fields) for _, found in reply for entry_id, fields in found]
        assert len(read["one"]) == 8 and len(read["two"]) == 13   # the open event + 20 jobs
        ids_one = {entry_id for entry_id, _ in read["one"]}
        assert not ids_one & {entry_id for entry_id, _ in read["two"]}   # nobody twice
        jobs = [fields[b"data"] for _, fields in read["one"] + read["two"] if b"data" in fields]
        assert jobs == [f"job {i}".encode() for i in range(20)]
        for consumer in read:
            r.xack("wsframe:in:room", "backend", *(entry_id for entry_id, _ in read[consumer]))
        assert r.xpending("wsframe:in:room", "backend")["pending"] == 0
        ws.close()


def test_a_crashed_consumers_entries_are_reclaimed_and_answered(redis_server, r):
    backend = example()
    with gateways(redis_server.url) as [(_, port, _)]:
        r.xgroup_create("wsframe:in:default", "backend", id="0", mkstream=True)
        ws = connect(f"ws://127.0.0.1:{port}/echo")
        ws.send("are you there?")
        wait_entries(r, 2, "wsframe:in:default")
        # "crashed" reads the open event and the message, then dies without XACK
        taken = r.xreadgroup("backend", "crashed", {"wsframe:in:default": ">"}, count=10)
        assert len(taken[0][1]) == 2
        assert r.xpending("wsframe:in:default", "backend")["pending"] == 2
        # a healthy instance of the shipped example takes them over (XAUTOCLAIM) and answers
        assert backend.reclaim(r, "wsframe:in:default", "backend", "healthy", 0) == 2
        assert ws.recv(timeout=5).startswith("welcome ")
        assert ws.recv(timeout=5) == "are you there?"   # no room: back to its connection
        assert r.xpending("wsframe:in:default", "backend")["pending"] == 0
        ws.close()


def test_redis_down_closes_with_1013_counted_and_the_loop_goes_on(redis_server, r):
    with gateways(redis_server.url) as [(server, port, gateway)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/r")
        wait_entries(r, 1)
        redis_server.stop()
        assert wait_for(lambda: not server.backplane.client.ready, 10)
        ws.send("lost?")
        assert closed_with(ws) == 1013   # Try Again Later (IANA registry)
        state = health(port)   # the loop answers
        assert state["status"] == "degraded"
        assert state["gateway"]["append_failed"] >= 1 and state["gateway"]["closed_1013"] == 1
        assert wait_for(lambda: gateway.counts["close_events_lost"] == 1, 5)   # its close event
        with pytest.raises(InvalidResponse) as refused:
            connect(f"ws://127.0.0.1:{port}/room/r")
        assert "503" in str(refused.value)
        assert gateway.counts["refused_upgrades"] == 1
        redis_server.start()   # back on the same port: a new connection works again
        assert wait_for(lambda: server.backplane.client.ready and
                        gateway.channel in server.backplane.subscribed, 15)
        again = connect(f"ws://127.0.0.1:{port}/room/r")
        again.send("back")
        assert wait_for(lambda: any(f.get(b"data") == b"back"
                                    for f in entries(redis.Redis(port=redis_server.port))), 10)
        again.close()


def test_an_entry_in_flight_when_redis_dies_closes_with_1013(redis_server, r):
    with gateways(redis_server.url) as [(server, port, gateway)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/gone")
        wait_entries(r, 1)
        os.kill(redis_server.proc.pid, signal.SIGSTOP)   # the XADD is sent, no reply comes
        ws.send("in flight")
        assert wait_for(lambda: gateway.in_flight > 0, 5)
        redis_server.stop()   # SIGKILL: the connection to Redis ends before the reply
        assert closed_with(ws) == 1013
        assert gateway.in_flight == 0 and gateway.counts["append_failed"] >= 1
        assert gateway.counts["append_refused"] == 0


def test_an_entry_redis_refuses_closes_with_1013(redis_server, r):
    with gateways(redis_server.url) as [(server, port, gateway)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/oom")
        wait_entries(r, 1)
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", 1)   # every write is refused: -OOM
        ws.send("no room for me")
        assert closed_with(ws) == 1013
        assert gateway.counts["append_failed"] >= 1 and gateway.counts["append_refused"] == 0
        assert server.backplane.client.ready   # an error reply, not a lost connection
        r.config_set("maxmemory", 0)


def test_a_slow_redis_pauses_reading_instead_of_closing(redis_server, r):
    with gateways(redis_server.url, pause_reading_at=4096) as [(server, port, gateway)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/slow")
        wait_entries(r, 1)
        os.kill(redis_server.proc.pid, signal.SIGSTOP)   # Redis takes bytes, answers nothing
        try:
            for i in range(50):   # 50 x 1 KiB: past 4 KiB waiting, this connection is not read
                ws.send(f"{i:04d}" + "x" * 1020)
            assert wait_for(lambda: gateway.counts["paused_reading"] >= 1, 5)
            assert gateway.in_flight <= 4096 + 2048   # the rest waits in its backlog
            assert gateway.counts["append_failed"] == 0
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        assert wait_for(lambda: gateway.counts["appended"] == 51, 10)   # read again, all of it
        assert [f[b"data"][:4] for f in entries(r)[1:]] == [b"%04d" % i for i in range(50)]
        assert gateway.counts["closed_1013"] == 0 and gateway.in_flight == 0
        assert gateway.backlog == 0 and not gateway._waiting
        ws.send("still open")   # read again
        assert wait_for(lambda: gateway.counts["appended"] == 52, 10)
        ws.close()


def test_a_full_queue_to_redis_closes_with_1013(redis_server, r):
    with gateways(redis_server.url, pause_reading_at=4096,
                  max_backlog=8 * 1024) as [(server, port, gateway)]:
        peer = RawPeer(port, "/room/q")
        wait_entries(r, 1)
        os.kill(redis_server.proc.pid, signal.SIGSTOP)   # Redis takes bytes, answers nothing
        try:
            # 100 x 1 KiB in one write: read at once, past 4 KiB in flight and 8 KiB waiting
            peer.sock.sendall(b"".join(codec.client_frame(OP_TEXT, b"x" * 1024)
                                       for _ in range(100)))
            frames = peer.frames(until=lambda found: any(f.opcode == OP_CLOSE for f in found))
            close = [f for f in frames if f.opcode == OP_CLOSE][0]
            assert int.from_bytes(close.payload[:2], "big") == 1013
            assert gateway.counts["append_refused"] >= 1 and gateway.counts["closed_1013"] == 1
            assert gateway.counts["dropped_after_1013"] >= 1   # the rest of that read: counted
            assert health(port)["gateway"]["closed_1013"] == 1   # the loop answers meanwhile
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        assert wait_for(lambda: gateway.in_flight == 0, 10)   # every reply came, counted
        assert gateway.backlog == 0 and not gateway._waiting
        peer.close()


def test_maxlen_bounds_the_stream(redis_server, r):
    with gateways(redis_server.url, maxlen=100) as [(_, port, gateway)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/many")
        for i in range(1000):
            ws.send(f"m{i}")
        assert wait_for(lambda: gateway.counts["appended"] == 1001, 15)
        # MAXLEN ~ 100: Redis trims whole nodes (stream-node-max-entries, 100 by default)
        assert 100 <= r.xlen("wsframe:in:room") <= 200
        assert r.xrevrange("wsframe:in:room", count=1)[0][1][b"data"] == b"m999"
        ws.close()


def test_shutdown_writes_the_close_events(redis_server, r):
    with gateways(redis_server.url) as [(_, port, _)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/s")
        wait_entries(r, 1)
    last = entries(r)[-1]   # the server closed it (1001, or 1006 once the wait ran out)
    assert last[b"type"] == b"close" and last[b"code"] in (b"1001", b"1006")
    ws.sock.close()


def test_shutdown_writes_what_waits_in_the_backlogs(redis_server, r):
    with gateways(redis_server.url, pause_reading_at=2048) as [(_, port, gateway)]:
        ws = connect(f"ws://127.0.0.1:{port}/room/b")
        wait_entries(r, 1)
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        try:
            for i in range(20):
                ws.send(f"{i:02d}" + "y" * 1000)
            assert wait_for(lambda: gateway.backlog > 0, 5)
        except BaseException:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
            raise
    os.kill(redis_server.proc.pid, signal.SIGCONT)   # the server is gone; Redis reads its last bytes
    assert wait_for(lambda: r.xlen("wsframe:in:room") >= 21, 10)
    found = entries(r)
    assert [f[b"data"][:2] for f in found if f[b"type"] == b"text"] == [
        b"%02d" % i for i in range(20)]
    assert found[-1][b"type"] == b"close"
    ws.sock.close()


def serve_cli(*args):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wsframe", "--log-level", "WARNING", "serve",
                             "--port", str(port), *args], cwd=ROOT)
    return proc, port


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def up(port, proc):
    def answers():
        try:
            return health(port)["backplane"]["state"] == "ready"
        except (OSError, urllib.error.URLError, KeyError):
            return False
    assert wait_for(answers, 20), f"the server did not come up (exit {proc.poll()})"


def test_the_cli_gateway_with_the_shipped_backend_example(redis_server):
    server, port = serve_cli("--gateway", "--redis", redis_server.url, "--gateway-maxlen", "1000")
    backend = subprocess.Popen([sys.executable, str(EXAMPLE), "--redis", redis_server.url,
                                "--consumer", "test-1", "--stop-after", "60"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        up(port, server)
        ws = connect(f"ws://127.0.0.1:{port}/room/order:42")
        watcher = connect(f"ws://127.0.0.1:{port}/room/order:42")
        alone = connect(f"ws://127.0.0.1:{port}/just-me")
        assert ws.recv(timeout=15).startswith("welcome ")
        assert watcher.recv(timeout=15).startswith("welcome ")
        assert alone.recv(timeout=15).startswith("welcome ")
        ws.send('{"lat":52.5}')
        assert ws.recv(timeout=10) == '{"lat":52.5}'        # to the room: both members
        assert watcher.recv(timeout=10) == '{"lat":52.5}'
        alone.send(b"\x07")
        assert alone.recv(timeout=10) == b"\x07"            # no room: to its connection
        for client in (ws, watcher, alone):
            client.close()
        assert wait_for(lambda: redis.Redis(port=redis_server.port).xpending(
            "wsframe:in:room", "backend")["pending"] == 0, 10)
    finally:
        stop(backend)
        stop(server)


def test_the_cli_gateway_needs_redis():
    out = subprocess.run([sys.executable, "-m", "wsframe", "serve", "--gateway"], cwd=ROOT,
                         capture_output=True, timeout=30)
    assert out.returncode == 2 and b"--redis" in out.stderr


def doc_commands():
    """The shell lines of docs/howto/gateway.md's redis-cli walk-through."""
    text = (ROOT / "docs" / "howto" / "gateway.md").read_text()
    block = text.split("## The same with redis-cli", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_the_redis_cli_walkthrough(redis_server):
    """The documented redis-cli steps, run as written (redis-cli pointed at the test's port)."""
    def sh(line, **env):
        line = line.replace("redis-cli", f"{redis_server.cli_binary} -p {redis_server.port}")
        out = subprocess.run(["bash", "-c", line], capture_output=True, timeout=20,
                             env={**os.environ, **env})
        assert out.returncode == 0 and b"ERR" not in out.stdout, (line, out)
        return out.stdout.decode()
    create, read, to_conn, to_room, ack, pending, claim = doc_commands()
    with gateways(redis_server.url) as [(_, port, _)]:
        assert sh(create).strip() == "OK"
        ws = connect(f"ws://127.0.0.1:{port}/room/order:42")
        watcher = connect(f"ws://127.0.0.1:{port}/room/order:42")
        lines = sh(read).split()
        ids = [lines[i + 1] for i, word in enumerate(lines) if word == "conn"]
        assert len(ids) == 2   # both open events, read by cli-1
        entry_ids = [word for word in lines if word.count("-") == 1 and word[0].isdigit()]
        first = ids[0]
        assert sh(to_conn, ID=first, ORIGIN=first.rpartition(".")[0]).strip() == "1"
        receiver, other = (ws, watcher) if ws.recv(timeout=5) == "welcome" else (watcher, ws)
        assert receiver is ws   # the first open event is the first connection's
        with pytest.raises(TimeoutError):
            other.recv(timeout=0.3)
        assert sh(to_room).strip() == "1"   # one server has members
        for client in (ws, watcher):
            assert client.recv(timeout=5) == '{"lat":52.5,"lon":13.4}'
        sh(ack)   # the documented id is an example: acknowledges nothing here
        assert sh(pending).split()[0] == "2"
        sh(claim)   # pending for less than 60 s: nothing taken over yet
        ack_these = ack.replace("1733100000000-0", " ".join(entry_ids))
        assert sh(ack_these).strip() == "2"
        assert sh(pending).split()[0] == "0"
        ws.send("claim me")
        assert "claim me" in sh(read)   # cli-1 reads it, then "crashes" without XACK
        claimed = sh(claim.replace(" 60000 ", " 0 "))   # no wait in a test
        assert "claim me" in claimed
        assert redis_server.cli("XINFO", "CONSUMERS", "wsframe:in:room", "backend").count(
            "cli-2") == 1
        ws.close()
        watcher.close()


def test_the_cli_gateway_with_workers(redis_server):
    server, port = serve_cli("--gateway", "--redis", redis_server.url, "--workers", "2")
    try:
        def ready():
            try:
                state = health(port)
            except (OSError, urllib.error.URLError):
                return False
            return state["totals"]["workers"] == 2 and all(
                "gateway" in w and w["backplane"]["state"] == "ready" for w in state["workers"])
        assert wait_for(ready, 30), f"the workers did not come up (exit {server.poll()})"
        r = redis.Redis(port=redis_server.port)
        assert wait_for(lambda: len(r.pubsub_channels("wsframe:conn:*")) == 2, 10)
        clients = [connect(f"ws://127.0.0.1:{port}/room/r{i}") for i in range(6)]
        ids = [fields[b"conn"] for fields in wait_entries(r, 6)]
        assert len({conn_id.rsplit(b".", 1)[0] for conn_id in ids}) == 2   # both workers
        for conn_id in ids:
            origin = conn_id.rsplit(b".", 1)[0]
            assert r.publish(b"wsframe:conn:" + origin, b"\x00conn=" + conn_id + b"\nto " +
                             conn_id) == 1
        got = sorted(ws.recv(timeout=5) for ws in clients)
        assert got == sorted("to " + conn_id.decode() for conn_id in ids)
        for ws in clients:
            ws.close()
        r.close()
    finally:
        stop(server)


def test_gateway_mode_needs_one_redis():
    from wsframe.server.gateway import Gateway
    from wsframe.server.server import Server
    for server in (Server(), Server(backplane=f"redis+cluster://127.0.0.1:{free_port()}")):
        with pytest.raises(ValueError, match="backplane on one Redis"):
            Gateway(server)
        server.loop.close()
    server = Server(backplane=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ValueError, match="maxlen"):
        Gateway(server, maxlen=0)
    server.loop.close()
