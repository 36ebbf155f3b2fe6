"""Hostile peers: none of them can grow the server without bound or stop it."""
import socket

from wsframe import codec
from wsframe.client.blocking import connect
from wsframe.codec.frames import OP_PING
from wsframe.loop.backpressure import Backpressure
from wsframe.server.apps import install_builtin_app
from wsframe.server.server import Heartbeat
from tests.helpers import RawPeer, call_in_loop, running_server, wait_for

MAX_QUEUE = 64 * 1024


def queued(server) -> int:
    return call_in_loop(server, lambda: max([c.buffered for c in server.connections] or [0]))


def test_a_ping_flood_that_never_reads_stays_bounded():
    # Before: every Pong was queued without limit (~800 MB against a 1 MiB max_queue).
    with running_server(install_builtin_app, backpressure=Backpressure(max_queue=MAX_QUEUE),
                        heartbeat=None) as (server, port):
        peer = RawPeer(port, "/room/flood")
        ping = codec.client_frame(OP_PING, b"p" * 125)
        burst = ping * 2000                       # 262 KB of Pings, 254 KB of Pongs each time
        sent = 0
        peer.sock.settimeout(0.5)
        try:
            while sent < 200 * len(burst):        # 50 MB offered; the server stops reading
                sent += peer.sock.send(burst)
        except (socket.timeout, BlockingIOError):
            pass                                  # TCP pushes back: the server is not reading
        assert sent < 200 * len(burst)
        # the Pongs queued stay within max_queue plus what one read of Pings produces
        assert queued(server) <= MAX_QUEUE + 2 * 256 * 1024
        # everyone else is still served
        with connect(f"ws://127.0.0.1:{port}/echo") as ws:
            ws.send("still here")
            assert ws.recv(timeout=5) == "still here"
        # once the peer reads, it gets its Pongs and the server reads its Pings again
        peer.sock.settimeout(5)
        got = 0
        while got < 1_000_000:
            chunk = peer.sock.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        assert got >= 1_000_000
        peer.close()


def test_a_peer_that_never_reads_is_dropped_by_the_heartbeat():
    with running_server(install_builtin_app, backpressure=Backpressure(max_queue=MAX_QUEUE),
                        heartbeat=Heartbeat(0.2, 0.2)) as (server, port):
        peer = RawPeer(port, "/room/x")
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.sock.settimeout(0.5)
        try:
            while True:
                peer.sock.send(codec.client_frame(OP_PING, b"p" * 125) * 1000)
        except (socket.timeout, BlockingIOError, ConnectionResetError, BrokenPipeError):
            pass  # TCP pushes back, or the heartbeat already dropped the peer
        assert wait_for(lambda: server.stats.heartbeat_timeouts >= 1, timeout=10)
        assert wait_for(lambda: not server.connections, timeout=10)
        peer.close()
