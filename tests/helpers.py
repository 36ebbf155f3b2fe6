"""Test helpers: a server on a loop in a thread, raw socket peers."""
from __future__ import annotations

import base64
import contextlib
import os
import socket
import threading
import time

from wsframe import codec
from wsframe.codec.frames import parse_frames
from wsframe.server.server import Server


@contextlib.contextmanager
def running_server(configure=None, **settings):
    """A Server on 127.0.0.1:<free port>, its loop in a thread; yields (server, port)."""
    settings.setdefault("tick_interval", 0.05)
    settings.setdefault("shutdown_timeout", 1.0)
    server = Server(**settings)
    if configure is not None:
        configure(server)
    _, port = server.listen("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"signals": False}, daemon=True)
    thread.start()
    try:
        yield server, port
    finally:
        server.loop.call_soon_threadsafe(server.shutdown)
        thread.join(timeout=10)
        assert not thread.is_alive(), "server loop did not stop"


def call_in_loop(server, fn, *args, timeout=5.0):
    """Run fn(*args) on the server's loop thread and return its result."""
    done = threading.Event()
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc
        done.set()
    server.loop.call_soon_threadsafe(run)
    assert done.wait(timeout), "loop did not run the call"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def wait_for(predicate, timeout=5.0, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class RawPeer:
    """A hand-driven client: the handshake, then frames as bytes."""

    def __init__(self, port: int, path: str = "/", extra: str = "", handshake: bool = True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        if handshake:
            key = base64.b64encode(os.urandom(16)).decode()
            self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                               f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
            head = self.read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def send_frame(self, opcode: int, payload: bytes = b"", fin: bool = True) -> None:
        self.sock.sendall(codec.client_frame(opcode, payload, fin=fin))

    def frames(self, timeout: float = 5.0, until=None):
        """Read frames until ``until(frames)`` is true or EOF."""
        self.sock.settimeout(timeout)
        found = []
        while True:
            found = parse_frames(self.buffer, require_mask=False)
            if until is not None and until(found):
                return found
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return found
            if not chunk:
                return found
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()
