"""The epoll server through real sockets: routing, rooms, heartbeats, backpressure,
shutdown, bad input. Peers: websockets' sync client, our clients, raw sockets."""
import json
import socket
import struct
import threading
import time

import pytest
from websockets.sync.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed as WsClosed, InvalidStatus

from wsframe.server.apps import install_builtin_app
from wsframe.loop.backpressure import Backpressure, Policy, SendStatus
from wsframe.client.blocking import connect
from wsframe.errors import InvalidRequest, InvalidResponse
from wsframe.codec.frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, parse_frames
from wsframe.loop.eventloop import Loop
from wsframe.sansio.protocol import OPEN, Limits
from wsframe.server.server import Endpoint, Heartbeat, Server

from tests.helpers import RawPeer, call_in_loop, running_server, wait_for


def builtin(server):
    install_builtin_app(server)


# --- routing and the built-in app -------------------------------------------------

def test_echo_on_any_path_with_a_peer_library():
    with running_server(builtin) as (server, port):
        with ws_connect(f"ws://127.0.0.1:{port}/any/path?x=1") as ws:
            ws.send("héllo")
            assert ws.recv(timeout=5) == "héllo"
            ws.send(b"\x00\x01\x02")
            assert ws.recv(timeout=5) == b"\x00\x01\x02"
            ws.send("z" * 200_000)  # compressed both ways (websockets offers deflate)
            assert ws.recv(timeout=5) == "z" * 200_000


def test_routes_with_parameters_query_and_state():
    seen = {}

    class Orders(Endpoint):
        subprotocols = ("v2", "v1")

        def on_open(self, conn, request, params):
            conn.data = {"order": params["order_id"], "query": request.query}

        def on_message(self, conn, message):
            conn.send(json.dumps(conn.data))

        def on_close(self, conn, code, reason):
            seen["closed"] = (code, conn.data["order"])

    def configure(server):
        server.route("/track/{order_id}", Orders())
    with running_server(configure) as (server, port):
        with connect(f"ws://127.0.0.1:{port}/track/42?token=t", subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"  # the server's preference among those offered
            ws.send("?")
            assert json.loads(ws.recv(timeout=5)) == {"order": "42", "query": "token=t"}
        assert wait_for(lambda: seen.get("closed") == (1000, "42"))
        with pytest.raises(InvalidResponse) as info:
            connect(f"ws://127.0.0.1:{port}/elsewhere")
        assert info.value.status == 404


def test_upgrade_hook_rejects_with_status():
    class Guarded(Endpoint):
        def on_upgrade(self, request, params):
            if request.headers.get("Origin") != "https://good.example":
                raise InvalidRequest(403, "origin not allowed")

    with running_server(lambda s: s.route("/ws", Guarded())) as (server, port):
        with pytest.raises(InvalidStatus) as info:
            ws_connect(f"ws://127.0.0.1:{port}/ws", origin="https://evil.example")
        assert info.value.response.status_code == 403
        assert b"origin not allowed" in info.value.response.body
        with ws_connect(f"ws://127.0.0.1:{port}/ws", origin="https://good.example"):
            pass


def test_plain_http_health_and_errors():
    with running_server(builtin) as (server, port):
        def get(path, method="GET"):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                return data
        health = get("/health")
        assert health.startswith(b"HTTP/1.1 200")
        assert json.loads(health.split(b"\r\n\r\n", 1)[1])["status"] == "ok"
        assert get("/room/x").startswith(b"HTTP/1.1 426")  # a WebSocket route
        assert get("/health", "POST").startswith(b"HTTP/1.1 405")


# --- rooms ----------------------------------------------------------------------------

def test_rooms_broadcast_encoded_once_and_left_on_close():
    with running_server(builtin) as (server, port):
        a = connect(f"ws://127.0.0.1:{port}/room/r1")
        b = connect(f"ws://127.0.0.1:{port}/room/r1", compression=None)
        c = connect(f"ws://127.0.0.1:{port}/room/r2")
        assert wait_for(lambda: len(server.rooms.get_or_create("r1")) == 2)
        a.send("to r1")
        assert a.recv(timeout=5) == "to r1" and b.recv(timeout=5) == "to r1"
        with pytest.raises(TimeoutError):
            c.recv(timeout=0.3)
        b.close()
        assert wait_for(lambda: len(server.rooms.get_or_create("r1")) == 1)
        a.close()
        c.close()
        assert wait_for(lambda: len(server.rooms) == 0)


def test_broadcast_shares_one_bytes_object():
    frames_written = []

    def configure(server):
        install_builtin_app(server)
    with running_server(configure) as (server, port):
        peers = [connect(f"ws://127.0.0.1:{port}/room/same", compression=None) for _ in range(3)]
        assert wait_for(lambda: len(server.rooms.get_or_create("same")) == 3)

        def spy():
            room = server.rooms.get_or_create("same")
            for conn in room.members:
                original = conn._write
                frames_written.append(original)
            result = room.broadcast("x" * 300)
            return result, [conn._out[-1] if conn._out else None for conn in room.members]
        result, outs = call_in_loop(server, spy)
        assert result.delivered == 3
        assert len({id(o) for o in outs if o is not None}) <= 1  # the same bytes object
        for peer in peers:
            assert peer.recv(timeout=5) == "x" * 300
            peer.close()


# --- heartbeat -----------------------------------------------------------------------------

def test_heartbeat_pings_and_reaps_a_silent_peer():
    closes = []

    class Watch(Endpoint):
        def on_close(self, conn, code, reason):
            closes.append((code, reason))
    with running_server(lambda s: s.route("/", Watch()),
                        heartbeat=Heartbeat(interval=0.2, timeout=0.3)) as (server, port):
        alive = ws_connect(f"ws://127.0.0.1:{port}/", legacy=True)  # answers pings itself
        mute = RawPeer(port, "/")                        # never answers
        frames = mute.frames(timeout=3, until=lambda f: any(x.opcode == OP_CLOSE for x in f))
        assert frames[0].opcode == OP_PING
        close = [f for f in frames if f.opcode == OP_CLOSE][0]
        assert struct.unpack("!H", close.payload[:2])[0] == 1011
        assert b"heartbeat timeout" in close.payload
        assert wait_for(lambda: closes and "heartbeat timeout" in closes[0][1])
        assert server.stats.heartbeat_timeouts == 1
        time.sleep(0.8)
        assert call_in_loop(server, lambda: len([c for c in server.connections if c.state is OPEN])) == 1
        alive.close()


def test_pong_keeps_a_raw_peer_alive():
    with running_server(lambda s: s.route("/", Endpoint()),
                        heartbeat=Heartbeat(interval=0.1, timeout=0.3)) as (server, port):
        peer = RawPeer(port, "/")
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            frames = peer.frames(timeout=0.2, until=lambda f: bool(f))
            for frame in frames:
                assert frame.opcode == OP_PING
                peer.send_frame(OP_PONG, frame.payload)
            peer.buffer = b""
        assert server.stats.heartbeat_timeouts == 0


# --- backpressure --------------------------------------------------------------------------

class Flood(Endpoint):
    """On "go", send until the policy says stop; report what happened."""

    def __init__(self, policy):
        self.policy = policy
        self.statuses = []
        self.drained = threading.Event()

    def on_message(self, conn, message):
        for _ in range(2000):
            status = conn.send(b"x" * 65536, policy=self.policy)
            self.statuses.append(status)
            if status is not SendStatus.OK:
                break

    def on_drain(self, conn):
        self.drained.set()


@pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.value)
def test_slow_consumer_policies(policy):
    flood = Flood(policy)
    with running_server(lambda s: s.route("/", flood),
                        backpressure=Backpressure(max_queue=256 * 1024)) as (server, port):
        peer = RawPeer(port, "/")
        peer.send_frame(OP_TEXT, b"go")
        assert wait_for(lambda: flood.statuses and flood.statuses[-1] is not SendStatus.OK)
        expected = {Policy.DROP: SendStatus.DROPPED, Policy.WAIT: SendStatus.BLOCKED,
                    Policy.CLOSE: SendStatus.CLOSED}[policy]
        assert flood.statuses[-1] is expected
        queued = call_in_loop(server, lambda: max([c.buffered for c in server.connections] or [0]))
        assert queued <= 256 * 1024 + 65536 + 16  # bounded: the limit plus one message
        if policy is Policy.DROP:
            assert server.stats.dropped == 1
        if policy is Policy.WAIT:
            peer.sock.settimeout(5)
            while not flood.drained.is_set():  # read everything: the queue drains
                if not peer.sock.recv(1 << 20):
                    break
            assert flood.drained.wait(5)
        if policy is Policy.CLOSE:
            assert server.stats.slow_closed == 1
            assert wait_for(lambda: not server.connections)
        peer.close()


# --- shutdown and bad input ------------------------------------------------------------------

def test_graceful_shutdown_sends_1001():
    with running_server(builtin) as (server, port):
        ws = ws_connect(f"ws://127.0.0.1:{port}/x", legacy=True)
        server.loop.call_soon_threadsafe(server.shutdown)
        with pytest.raises(WsClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd.code == 1001
        assert wait_for(lambda: not server.loop._running)


def test_handshake_too_large_is_431():
    with running_server(builtin, max_head_size=1024) as (server, port):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 431")


def test_slow_handshake_is_dropped():
    with running_server(builtin, handshake_timeout=0.3) as (server, port):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and then nothing (slow loris)
            sock.settimeout(3)
            start = time.monotonic()
            assert sock.recv(100) == b""
            assert time.monotonic() - start < 2
        assert server.stats.handshake_timeouts == 1


def test_garbage_gets_400_and_protocol_errors_get_close_codes():
    with running_server(builtin) as (server, port):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 400")
        peer = RawPeer(port, "/x")
        peer.sock.sendall(b"\x81\x05hello")  # unmasked client frame (§5.1)
        frames = peer.frames(until=lambda f: bool(f))
        assert frames[0].opcode == OP_CLOSE and frames[0].payload[:2] == b"\x03\xea"


def test_non_http_bytes_are_refused_at_once():
    """A TLS ClientHello (no CRLF anywhere) or binary bytes: 400 with the reason, not a
    wait for the handshake timeout; leading empty lines are still allowed (RFC 7230 §3.5)."""
    with running_server(builtin, handshake_timeout=30) as (server, port):
        for probe, reason in ((b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"TLS handshake"),
                              (b"\x00\x01binary", b"not an HTTP request"),
                              (b"GE\x7fT / HTTP/1.1", b"not an HTTP request")):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.settimeout(3)
                sock.sendall(probe)
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 400") and reason in answer, answer
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(3)
            sock.sendall(b"\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")


def test_flood_of_connections_keeps_serving():
    with running_server(builtin) as (server, port):
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(1500)]
        with connect(f"ws://127.0.0.1:{port}/still-there") as ws:
            ws.send("ok?")
            assert ws.recv(timeout=5) == "ok?"
        assert wait_for(lambda: server.stats.accepted >= 1501)
        for sock in socks:
            sock.close()
        assert wait_for(lambda: len(server.connections) == 0)


def test_big_message_limit_1009():
    with running_server(builtin, limits=Limits(max_message_size=1000)) as (server, port):
        with ws_connect(f"ws://127.0.0.1:{port}/x", max_size=None) as ws:
            ws.send(b"x" * 1001)
            with pytest.raises(WsClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd.code == 1009


def test_broadcast_bursts_are_batched_and_order_is_kept():
    """Many broadcasts in one turn reach every member in order, interleaved with direct sends."""
    class Burst(Endpoint):
        def on_open(self, conn, request, params):
            conn.join("burst")

        def on_message(self, conn, message):
            room = conn.server.rooms.get_or_create("burst")
            for i in range(200):           # one turn: the first is written at once,
                room.broadcast(f"b{i}")    # the rest batched to the end of the turn
                if i == 100:
                    conn.send("direct")    # must come after b0..b100 and before b101
            room.broadcast("not to sender", exclude=conn)
            room.broadcast("last")

    with running_server(lambda s: s.route("/", Burst())) as (server, port):
        sender = connect(f"ws://127.0.0.1:{port}/")
        others = [connect(f"ws://127.0.0.1:{port}/", compression=None) for _ in range(3)]
        assert wait_for(lambda: len(server.rooms.get_or_create("burst")) == 4)
        sender.send("go")
        expected = [f"b{i}" for i in range(200)]
        got = [sender.recv(timeout=5) for _ in range(202)]
        assert got == expected[:101] + ["direct"] + expected[101:] + ["last"]
        for peer in others:
            assert [peer.recv(timeout=5) for _ in range(202)] == expected + ["not to sender", "last"]
        for peer in [sender, *others]:
            peer.close()


def test_batched_broadcast_mixing_sizes_and_compression():
    """A batch of short and long messages to members with and without deflate."""
    class Mixed(Endpoint):
        def on_open(self, conn, request, params):
            conn.join("mixed")

        def on_message(self, conn, message):
            room = conn.server.rooms.get_or_create("mixed")
            for text in ("short", "tiny", "long " * 100, "x", "long again " * 50):
                room.broadcast(text)

    with running_server(lambda s: s.route("/", Mixed())) as (server, port):
        deflating = connect(f"ws://127.0.0.1:{port}/")
        plain = connect(f"ws://127.0.0.1:{port}/", compression=None)
        assert wait_for(lambda: len(server.rooms.get_or_create("mixed")) == 2)
        plain.send("go")
        expected = ["short", "tiny", "long " * 100, "x", "long again " * 50]
        for peer in (deflating, plain):
            assert [peer.recv(timeout=5) for _ in expected] == expected
            peer.close()


def test_handler_bugs_cost_one_connection_not_the_server():
    class Buggy(Endpoint):
        def on_upgrade(self, request, params):
            if "crash-upgrade" in request.query:
                raise KeyError("bug")

        def on_message(self, conn, message):
            raise RuntimeError("bug")

    with running_server(lambda s: s.route("/", Buggy())) as (server, port):
        with pytest.raises(InvalidStatus) as info:
            ws_connect(f"ws://127.0.0.1:{port}/?crash-upgrade")
        assert info.value.response.status_code == 500
        with ws_connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("boom")
            with pytest.raises(WsClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd.code == 1011
        assert server.stats.handler_errors == 2
        with ws_connect(f"ws://127.0.0.1:{port}/"):  # still serving
            pass


UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def test_slow_consumer_close_abandons_instead_of_corrupting_the_stream():
    # The queue ends inside a half-written frame when the policy cuts the peer off, and the
    # kernel has room again (the peer read a little): no Close frame may follow those bytes.
    server = Server(loop=Loop(), backpressure=Backpressure(max_queue=256 * 1024),
                    compression=None, heartbeat=None)
    closed = []
    server.route("/", type("Sink", (Endpoint,), {
        "on_close": lambda self, conn, code, reason: closed.append(code)})())
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    try:
        conn = server.adopt(ours.detach(), UPGRADE)
        server.loop.flush()
        statuses = []
        while (status := conn.send(b"x" * 65536, policy=Policy.CLOSE)) is SendStatus.OK:
            statuses.append(status)
            if conn.buffered > 256 * 1024 - 65536:  # the next send passes the limit:
                peer.recv(200_000)                   # the peer makes room first
        assert status is SendStatus.CLOSED and closed == [1008]
        peer.settimeout(5)
        data = bytearray()
        while chunk := peer.recv(1 << 20):
            data += chunk
        assert data and b"\x88" not in data  # no Close frame (first byte 0x88) anywhere
    finally:
        peer.close()
        server.loop.close()


def test_timeouts_count_in_the_loops_ticks():
    # Server(loop=Loop(tick_interval=0.5)) must not halve the timeouts (ticks of the loop in use)
    server = Server(loop=Loop(tick_interval=0.5), handshake_timeout=10.0, close_timeout=3.0)
    try:
        assert server._ticks["handshake"] == 20 and server._ticks["close"] == 6
    finally:
        server.loop.close()
