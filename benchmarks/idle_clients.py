"""Open N idle WebSocket connections from one process and hold them (memory benchmarks).

    python benchmarks/idle_clients.py --port 8765 -n 5000 --source 127.0.0.2 [--deflate] [--hold 30]

With ``--deflate`` each connection offers permessage-deflate and sends one
compressed 200-byte text message (so the server creates whatever zlib state
its settings keep), reads the echo, and then stays idle. Prints ``open N``
once every connection is established, then holds them for ``--hold`` s,
answering pings.
"""
import argparse
import base64
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wsframe import codec  # noqa: E402
from wsframe.codec.frames import OP_PING, OP_PONG, OP_TEXT, RSV1, parse_frames  # noqa: E402

MESSAGE = (b'{"type":"position","order":"42","lat":52.520008,"lon":13.404954,"eta_s":420}' * 3)[:200]


def request(path: str, deflate: bool) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if deflate else ""
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


class Peer:
    """One connection: waiting for the 101, then (with --deflate) for the echo, then open."""

    __slots__ = ("sock", "phase", "buffer")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.phase = "head"
        self.buffer = b""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--source", default="127.0.0.1")
    parser.add_argument("--path", default="/idle")
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--hold", type=float, default=30.0)
    args = parser.parse_args()
    deflater = codec.Deflater(15)
    sel = selectors.DefaultSelector()
    peers = []
    failed = 0
    for i in range(args.n):
        sock = socket.socket()
        try:
            sock.bind((args.source, 0))
            sock.connect(("127.0.0.1", args.port))
        except OSError as exc:  # out of ports, refused ...: count it, keep going
            sock.close()
            failed += 1
            if failed == 1:
                print(f"connect failed: {exc}", file=sys.stderr)
            continue
        sock.sendall(request(args.path, args.deflate))
        sock.setblocking(False)
        peer = Peer(sock)
        sel.register(sock, selectors.EVENT_READ, peer)
        peers.append(peer)
        if i % 200 == 199:
            pump(sel, args, deflater, 0.001)
    deadline = time.monotonic() + 60
    while any(p.phase != "open" for p in peers) and time.monotonic() < deadline:
        pump(sel, args, deflater, 0.2)
    print(f"open {sum(p.phase == 'open' for p in peers)}", flush=True)
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        pump(sel, args, deflater, 1.0)
    return 0


def pump(sel, args, deflater, timeout: float) -> None:
    for key, _ in sel.select(timeout):
        peer = key.data
        try:
            data = peer.sock.recv(65536)
        except BlockingIOError:
            continue
        if not data:
            sel.unregister(peer.sock)
            peer.phase = "closed"
            continue
        if peer.phase == "head":
            peer.buffer += data
            if b"\r\n\r\n" not in peer.buffer:
                continue
            head = peer.buffer.partition(b"\r\n\r\n")[0]
            peer.buffer = b""
            if not args.deflate:
                peer.phase = "open"
                continue
            peer.phase = "echo"
            if b"permessage-deflate" in head:
                peer.sock.sendall(codec.client_frame(OP_TEXT, deflater.compress(MESSAGE, True),
                                                     rsv=RSV1))
            else:
                peer.sock.sendall(codec.client_frame(OP_TEXT, MESSAGE))
            continue
        if peer.phase == "echo":
            peer.phase = "open"  # the echo (or its first bytes): the exchange is done
            continue
        for frame in parse_frames(data, require_mask=False, allowed_rsv=RSV1):
            if frame.opcode == OP_PING:  # heartbeats: answer them
                peer.sock.sendall(codec.client_frame(OP_PONG, frame.payload))


if __name__ == "__main__":
    sys.exit(main())
