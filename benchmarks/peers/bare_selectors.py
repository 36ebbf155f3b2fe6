"""The memory floor: a ``selectors`` loop that answers the WebSocket handshake, then only holds sockets.

After the 101 (with the right ``Sec-WebSocket-Accept``, RFC 6455 §4.2.2) a
connection is a socket in the selector and nothing else: what the client
sends is read and thrown away, no frame is parsed or answered, and the
socket is closed when the client closes it. What a server needs per
connection beyond this is its own cost. Stdlib only.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import selectors
import socket
import sys
import time
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make ``benchmarks.peers`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.peers import BACKLOG, parse_args, ready

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   # RFC 6455 §1.3
MAX_HEAD = 16384
ACCEPT_BATCH = 128


def accept_value(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def response_for(head: bytes) -> bytes:
    """101 for an upgrade request with a key, else 400."""
    key = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    if not key:
        return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_value(key) + b"\r\n\r\n")


def serve(host: str, port: int) -> None:
    sel = selectors.DefaultSelector()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    ready(host, listener.getsockname()[1])

    def close(sock: socket.socket) -> None:
        sel.unregister(sock)
        sock.close()

    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock is listener:
                for _ in range(ACCEPT_BATCH):
                    try:
                        conn, _addr = listener.accept()
                    except BlockingIOError:
                        break
                    except OSError as exc:   # out of fds: the backlog waits
                        if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
                            raise
                        if exc.errno != errno.ECONNABORTED:
                            time.sleep(0.01)   # do not spin on a listener we cannot serve
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, b"")   # data: the head so far
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                close(sock)
                continue
            if not data:
                close(sock)
                continue
            head = key.data
            if head is None:          # upgraded: read and discard
                continue
            head += data
            end = head.find(b"\r\n\r\n")
            if end < 0:
                if len(head) > MAX_HEAD:
                    close(sock)
                else:
                    sel.modify(sock, selectors.EVENT_READ, head)
                continue
            reply = response_for(head[:end])
            try:
                sock.send(reply)      # a fresh socket's buffer takes ~150 bytes at once
            except OSError:
                close(sock)
                continue
            if not reply.startswith(b"HTTP/1.1 101"):
                close(sock)
            else:
                sel.modify(sock, selectors.EVENT_READ, None)


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    try:
        serve(args.host, args.port)
    except KeyboardInterrupt:
        pass
