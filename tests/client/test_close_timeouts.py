"""Every client path bounds the wait for a server that stops cooperating (§7.1.1)."""
import socket
import subprocess
import sys
import threading

import pytest

from wsframe.client.blocking import connect
from wsframe.client.reconnecting import ReconnectingClient
from wsframe.loop.connect import Backoff
from wsframe.codec.handshake import accept_response
from wsframe.loop.eventloop import Loop
from tests.helpers import wait_for


class StubbornServer:
    """Accepts, completes the handshake, then (mode "close") sends Close and never closes
    TCP, or (mode "deaf") never reads again."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while self.sock.fileno() >= 0:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            self.held.append(conn)
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(4096)
                key = head.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0].decode()
                conn.sendall(accept_response(key))
                if self.mode == "close":
                    conn.sendall(b"\x88\x02\x03\xe8")   # Close 1000, then silence: no FIN
            except OSError:   # stop() closed it under us, or the client gave up
                continue

    def stop(self):
        self.sock.close()
        for conn in self.held:
            conn.close()
        self.thread.join(5)


def test_reconnecting_client_drops_a_server_that_never_closes_tcp_and_reconnects():
    server = StubbornServer("close")
    loop = Loop(tick_interval=0.05)
    closes = []
    client = ReconnectingClient(f"ws://127.0.0.1:{server.port}/", loop=loop,
                                reconnect=Backoff(initial=0.05, max_delay=0.1),
                                close_timeout=0.3, compression=None, ping_interval=None,
                                on_close=lambda c, code, reason: closes.append(code))
    client.start()
    try:
        loop.run(until=lambda: server.accepted >= 2)
        assert closes[0] == 1000
    finally:
        client.close()
        loop.close()
        server.stop()


def test_wsframe_connect_exits_when_the_server_never_closes_tcp():
    server = StubbornServer("close")
    try:
        done = subprocess.run([sys.executable, "-m", "wsframe", "connect", "--echo",
                               f"ws://127.0.0.1:{server.port}/"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()


def test_blocking_send_to_a_server_that_never_reads_times_out():
    server = StubbornServer("deaf")
    try:
        ws = connect(f"ws://127.0.0.1:{server.port}/", compression=None, send_timeout=0.3)
        with pytest.raises(TimeoutError, match="read nothing"):
            for _ in range(1000):                  # 1 GB offered: the kernel buffers fill first
                ws.send(b"x" * (1 << 20))
        ws.close()
    finally:
        server.stop()
