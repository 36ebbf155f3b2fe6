"""The C load generator (wsframe._compiled.loadgen) against real and scripted servers.

Counts and correctness only: no assertion here depends on how fast anything is.
"""
from __future__ import annotations

import base64
import contextlib
import gc
import os
import socket
import threading
import time

import pytest

from wsframe.server.apps import install_builtin_app
from wsframe.errors import InvalidRequest
from wsframe.codec.frames import parse_frames, server_frame
from wsframe.codec.handshake import accept_key, check_upgrade_request, read_request
from wsframe.server.server import Endpoint, Heartbeat

from tests.helpers import running_server, wait_for

loadgen = pytest.importorskip("wsframe._compiled.loadgen",
                              reason="the load generator extension is not built")
run_load = loadgen.run_load

QUICK = {"warmup": 0.0, "close_timeout": 2.0}


def open_fds() -> int:
    gc.collect()   # sockets of earlier tests that only the collector closes
    return len(os.listdir("/proc/self/fd"))


def check_latency(result):
    lat = result["latency_us"]
    assert lat["count"] == sum(count for _, count in result["histogram"])
    assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert 0 < lat["mean"] <= lat["max"]
    bounds = [bound for bound, _ in result["histogram"]]
    assert bounds == sorted(bounds)


# ---- against the wsframe server --------------------------------------------------------

def test_echo_pipelined():
    with running_server(install_builtin_app, heartbeat=None) as (_, port):
        result = run_load(port=port, mode="echo", connections=20, inflight=4, size=32,
                          duration=1.0, **QUICK)
    assert result["attempted"] == result["connected"] == result["survivors"] == 20
    assert result["failed"] == {} and result["dropped"] == 0
    assert result["messages_received"] > 0 and result["messages_sent"] > 0
    assert result["latency_us"]["count"] == result["messages_received"]
    assert result["bytes_received"] >= result["messages_received"] * (32 + 2)
    assert result["elapsed"] > 0
    check_latency(result)


@pytest.mark.parametrize("size, text", [(200, False), (70000, True)])
def test_echo_length_encodings(size, text):
    """16-bit and 64-bit payload lengths, text and binary, both ways."""
    with running_server(install_builtin_app, heartbeat=None) as (_, port):
        result = run_load(port=port, mode="echo", connections=4, inflight=2, size=size,
                          text=text, duration=0.3, **QUICK)
    assert result["connected"] == 4 and result["failed"] == {}
    assert result["messages_received"] > 0
    assert result["latency_us"]["count"] == result["messages_received"]


def test_hold_survivors_answer_heartbeats():
    sources = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    heartbeat = Heartbeat(interval=0.2, timeout=2.0)   # a peer that never pongs is dropped
    with running_server(install_builtin_app, heartbeat=heartbeat) as (server, port):
        fds = open_fds()
        result = run_load(port=port, mode="hold", connections=200, duration=1.0,
                          ramp_rate=2000, source_addresses=sources, **QUICK)
        assert wait_for(lambda: server.stats.open == 0)
        assert wait_for(lambda: open_fds() <= fds)   # every socket closed, on both sides
    assert result["connected"] == result["survivors"] == 200
    assert result["failed"] == {} and result["messages_received"] == 0
    assert result["pings_answered"] > 0
    assert result["connect_seconds"] > 0
    assert server.stats.heartbeat_timeouts == 0


def test_subscribe_and_publish():
    subscribers = 10
    with running_server(install_builtin_app, heartbeat=None) as (server, port):
        stop_r, stop_w = os.pipe()
        box = {}
        thread = threading.Thread(target=lambda: box.update(run_load(
            port=port, path="/room/t", mode="subscribe", connections=subscribers,
            duration=30.0, stop_fd=stop_r, **QUICK)))
        thread.start()
        try:
            assert wait_for(lambda: (room := server.rooms.get("t")) is not None
                            and len(room.members) == subscribers, timeout=10)
            pub = run_load(port=port, path="/room/t", mode="publish", connections=1,
                           rate=200.0, size=64, duration=0.5, **QUICK)
            time.sleep(0.5)   # let the last broadcasts arrive
        finally:
            os.write(stop_w, b"x")
            thread.join(timeout=15)
            os.close(stop_r)
            os.close(stop_w)
    sub = box
    assert not thread.is_alive()
    assert pub["connected"] == 1 and pub["failed"] == {}
    assert pub["messages_sent"] > 0
    assert pub["latency_us"] == {}          # the publisher's own copies are not latency samples
    assert sub["connected"] == sub["survivors"] == subscribers and sub["failed"] == {}
    assert sub["messages_received"] == subscribers * pub["messages_sent"]
    assert sub["latency_us"]["count"] == sub["messages_received"]
    check_latency(sub)


# ---- failures -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused():
    result = run_load(port=free_port(), mode="hold", connections=3, duration=5.0, **QUICK)
    assert result["connected"] == 0
    assert result["failed"] == {"ECONNREFUSED": 3}
    assert result["survivors"] == 0 and result["messages_received"] == 0


def test_source_address_not_local():
    with open("/proc/sys/net/ipv4/ip_nonlocal_bind") as flag:
        if flag.read().strip() != "0":
            pytest.skip("this kernel lets sockets bind to non-local addresses")
    result = run_load(port=free_port(), mode="hold", connections=50,
                      source_addresses=("192.0.2.1",), **QUICK)   # TEST-NET-1: not ours
    assert result["connected"] == 0
    assert set(result["failed"]) == {"EADDRNOTAVAIL"}
    assert result["attempted"] == result["failed"]["EADDRNOTAVAIL"] < 50   # it gave up early


def test_bad_stop_fd():
    with pytest.raises(OSError):
        run_load(port=free_port(), connections=1, stop_fd=987654)


class Forbidden(Endpoint):
    def on_upgrade(self, request, params):
        raise InvalidRequest(403, "no")


def test_bad_handshake():
    def configure(server):
        server.default = Forbidden()
    with running_server(configure) as (_, port):
        result = run_load(port=port, mode="hold", connections=5, duration=5.0, **QUICK)
    assert result["connected"] == 0
    assert result["failed"] == {"bad_handshake": 5}


def test_handshake_timeout():
    with socket.socket() as listener:   # the kernel completes connects; nobody answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        result = run_load(port=listener.getsockname()[1], mode="hold", connections=3,
                          duration=5.0, handshake_timeout=0.3, **QUICK)
    assert result["connected"] == 0
    assert result["failed"] == {"handshake_timeout": 3}


def test_arguments_checked():
    with pytest.raises(ValueError):
        run_load(size=23)
    with pytest.raises(ValueError):
        run_load(mode="flood")
    with pytest.raises(ValueError):
        run_load(host="localhost")
    with pytest.raises(ValueError):
        run_load(path="/a b")
    with pytest.raises(ValueError):
        run_load(source_addresses=("::1",))


# ---- against a scripted server: the frame parser ----------------------------------------

@contextlib.contextmanager
def scripted_server(script):
    """Accept one connection, answer 101, then run ``script(conn)`` in a thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    box = {}

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            box["request"] = head
            key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                         + accept_key(key.decode()).encode() + b"\r\n\r\n")
            time.sleep(0.2)   # the client's measured window is open by now
            try:
                box["value"] = script(conn)
            except BaseException as exc:  # re-raised in the test
                box["error"] = exc
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], box
    finally:
        thread.join(timeout=10)
        listener.close()
    if "error" in box:
        raise box["error"]


def read_client_frames(conn, until):
    data = b""
    while True:
        frames = parse_frames(data, require_mask=True)
        if until(frames):
            return frames
        chunk = conn.recv(65536)
        if not chunk:
            return frames
        data += chunk


def stamped(size: int) -> bytes:
    return (b"%016x" % time.monotonic_ns()) + b"x" * (size - 16)


def test_parser_fragments_lengths_cuts_ping_close():
    messages = [stamped(20), stamped(300), stamped(70000)]
    wire = b"".join(server_frame(1, m) for m in messages)
    big = stamped(1000)                      # one message in three fragments
    wire += server_frame(1, big[:7], fin=False) + server_frame(0, big[7:500], fin=False)
    wire += server_frame(9, b"ping-1")       # a Ping between fragments (§5.4)
    wire += server_frame(0, big[500:], fin=True)
    wire += server_frame(2, stamped(40))
    wire += server_frame(2, b"no timestamp here, still a message")
    wire += server_frame(9, b"")             # an empty Ping

    def script(conn):
        conn.sendall(wire[:3])               # a cut header
        time.sleep(0.05)
        for i in range(3, 400):              # then byte by byte for a while
            conn.sendall(wire[i:i + 1])
        time.sleep(0.05)
        conn.sendall(wire[400:70100])
        time.sleep(0.05)
        conn.sendall(wire[70100:])
        pongs = read_client_frames(conn, lambda f: sum(x.opcode == 10 for x in f) == 2)
        conn.sendall(server_frame(8, b"\x03\xe9bye"))   # 1001, then the client's answer
        frames = read_client_frames(conn, lambda f: any(x.opcode == 8 for x in f))
        return pongs, frames

    with scripted_server(script) as (port, box):
        result = run_load(port=port, mode="subscribe", connections=1, duration=10.0, **QUICK)
    pongs, frames = box["value"]
    assert [f.payload for f in pongs if f.opcode == 10] == [b"ping-1", b""]
    closes = [f for f in frames if f.opcode == 8]
    assert closes and closes[0].payload == b"\x03\xe9"      # the status code echoed
    assert result["connected"] == 1 and result["failed"] == {}
    assert result["messages_received"] == 6
    assert result["latency_us"]["count"] == 5               # all but the unstamped one
    assert result["pings_answered"] == 2
    assert result["closed_by_server"] == 1 and result["survivors"] == 0


def test_path_cycle_gives_each_connection_its_path():
    names = []

    class Record(Endpoint):
        def on_open(self, conn, request, params):
            names.append(params["name"])

    with running_server(lambda s: s.route("/room/{name}", Record()), heartbeat=None) as (_, port):
        result = run_load(port=port, path="/room/r", mode="hold", connections=7,
                          path_cycle=3, path_offset=1, duration=0.2, **QUICK)
    assert result["connected"] == result["survivors"] == 7 and result["failed"] == {}
    # connection k asks for /room/r<(1 + k) % 3>, in the order the connections open
    assert sorted(names) == sorted(["r1", "r2", "r0", "r1", "r2", "r0", "r1"])


@pytest.mark.parametrize("kwargs", [{"path_cycle": -1}, {"path_offset": -1},
                                    {"path_cycle": 2, "path": "/room/r?x=1"}])
def test_path_cycle_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        run_load(**{"path": "/room/r", "connections": 1, **kwargs})


def test_handshake_request():
    with scripted_server(lambda conn: conn.sendall(server_frame(8, b"\x03\xe8"))) as (port, box):
        result = run_load(port=port, path="/room/a?x=1", mode="hold", connections=1,
                          duration=10.0, **QUICK)
    request = read_request(box["request"].split(b"\r\n\r\n")[0])
    assert request.method == "GET" and request.target == "/room/a?x=1"
    assert request.headers.get("host") == f"127.0.0.1:{port}"
    offer = check_upgrade_request(request)          # a valid RFC 6455 §4.1 request
    assert len(base64.b64decode(offer.key, validate=True)) == 16
    assert not offer.extensions and not offer.subprotocols
    assert result["closed_by_server"] == 1 and result["failed"] == {}


@pytest.mark.parametrize("bad", [
    b"\x81\x85abcd12345",             # a masked server frame (§5.1)
    b"\x83\x00",                       # a reserved opcode
    b"\xc1\x01x",                      # RSV1 without an extension
    b"\x80\x01x",                      # a continuation with no message started
    b"\x09\x00",                       # a fragmented Ping
    b"\x89\x7e\x00\x80" + b"p" * 128,  # a Ping over 125 bytes
    b"\x88\x01\x03",                   # a Close with a 1-byte body
])
def test_protocol_errors_drop_the_connection(bad):
    def script(conn):
        conn.sendall(bad)
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass

    with scripted_server(script) as (port, _):
        result = run_load(port=port, mode="hold", connections=1, duration=10.0, **QUICK)
    assert result["connected"] == 1
    assert result["failed"] == {"protocol_error": 1} and result["dropped"] == 1


def test_server_vanishes():
    def script(conn):
        conn.shutdown(socket.SHUT_WR)

    with scripted_server(script) as (port, _):
        result = run_load(port=port, mode="hold", connections=1, duration=10.0, **QUICK)
    assert result["failed"] == {"eof": 1} and result["survivors"] == 0


def test_progress_counts_a_turn_before_the_engine_sleeps():
    # Issue 10: `wsframe bench broadcast` timed "the last delivery" from these live
    # counters, but the engine published them before handling a turn's events, so
    # the last deliveries showed up only when epoll_wait next woke (up to 1 s later)
    # and the window came out ~1 s long. The server here sends 5 messages and a
    # Ping in one write; once the Pong is back, the engine has handled that turn
    # and is about to sleep for a second: its counters must say 5 by then.
    progress = bytearray(8 * 5)
    counters = memoryview(progress).cast("q")
    wire = b"".join(server_frame(1, stamped(40)) for _ in range(5)) + server_frame(9, b"sync")

    def script(conn):
        conn.sendall(wire)
        read_client_frames(conn, lambda f: any(x.opcode == 10 for x in f))
        seen = [counters[3]]
        for _ in range(50):            # a short grace for the store after the Pong's write
            if seen[-1] == 5:
                break
            time.sleep(0.01)
            seen.append(counters[3])
        conn.sendall(server_frame(8, b"\x03\xe8"))
        read_client_frames(conn, lambda f: any(x.opcode == 8 for x in f))
        return seen

    with scripted_server(script) as (port, box):
        result = run_load(port=port, mode="subscribe", connections=1, duration=10.0,
                          progress=progress, **QUICK)
    assert result["messages_received"] == 5
    assert box["value"][-1] == 5, box["value"]
    assert counters[3] == 5            # and the final report matches the result
