"""The supervisor's front door: accept, read the request head, pick the owner, hand off.

Each accepted socket is read without blocking, on the supervisor's loop,
until its request head is complete (RFC 7230 §3: the blank line), bounded
in size (``max_head_size``, 16 KiB) and time (``handshake_timeout``), so a
slow or silent client costs one fd and a few bytes, never a stall. Then:

* ``GET /health`` (not an upgrade) is answered here, from every worker's stats;
* an upgrade whose route declares a partition key goes to the key's owner;
* anything else (no key, a bad or oversized head) goes to the least-loaded
  worker, which answers it exactly as a single server would (101, 4xx).

The socket and every byte read so far leave in one ``send_fds`` message;
the acceptor then closes its copy and keeps nothing.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Callable, Optional

from wsframe.codec.handshake import is_upgrade_request, read_request
from wsframe.codec.http import HeadReader, HeadTooLarge, build_response
from wsframe.loop.eventloop import Loop
from wsframe.server.listener import accepted_fds
from wsframe.server.server import Server
from wsframe.cluster.partition import key_for_target, owner

__all__ = ["Acceptor"]

log = logging.getLogger("wsframe.cluster")

READ_SIZE = 65536


class _Pending:
    __slots__ = ("raw", "reader", "tick")

    def __init__(self, max_head: int, tick: int) -> None:
        self.raw = bytearray()
        self.reader = HeadReader(max_head)
        self.tick = tick


class Acceptor:
    """Accepts on ``sock`` and calls ``dispatch(slot, fd, data, tls)`` per connection.

    ``least_loaded()`` picks a slot for connections without a key; ``health()``
    returns the body of ``GET /health``.
    """

    def __init__(self, loop: Loop, sock: socket.socket, app: Server, slots: int, *,
                 dispatch: Callable[[int, int, bytes, bool], None],
                 least_loaded: Callable[[], int], health: Callable[[], bytes],
                 tls: bool = False, max_head_size: int = 16384,
                 handshake_timeout: float = 10.0, accept_batch: int = 128) -> None:
        self.loop = loop
        self.sock = sock
        self.app = app
        self.slots = slots
        self.dispatch = dispatch
        self.least_loaded = least_loaded
        self.health = health
        self.tls = tls
        self.max_head_size = max_head_size
        self.timeout_ticks = max(1, round(handshake_timeout / loop.tick_interval))
        self.accept_batch = accept_batch
        self.pending: dict[int, _Pending] = {}
        self.accepted = self.timed_out = self.health_answered = 0
        self._paused = False
        self._started = False
        sock.setblocking(False)
        if hasattr(socket, "TCP_DEFER_ACCEPT") and not tls:
            # Linux: wake accept() only once the request's first bytes are in, so most
            # heads are read in the accept turn, without an epoll registration of their own.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT,
                            max(1, round(handshake_timeout)))
        loop.on_tick(self._sweep)

    def start(self) -> None:
        """Accept from now on (the socket is listening)."""
        if not self._started:
            self._started = True
            self.loop.add_reader(self.sock.fileno(), self._on_accept)

    def _on_accept(self, _fd: int) -> None:
        for fd in accepted_fds(self.sock, self.accept_batch, self._pause):
            self.accepted += 1
            if self.tls:  # TLS is the worker's to terminate: nothing to read here
                self.dispatch(self.least_loaded(), fd, b"", True)
                continue
            self.pending[fd] = _Pending(self.max_head_size, self.loop.tick)
            if not self._on_readable(fd):
                self.loop.add_reader(fd, self._on_readable)

    def _on_readable(self, fd: int) -> bool:
        """Read what has arrived; True once the connection has left (handed off or closed)."""
        pending = self.pending.get(fd)
        if pending is None:
            return True
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:  # the client left before finishing its request
            self._drop(fd)
            return True
        pending.raw += data
        try:
            head = pending.reader.feed(data)
        except HeadTooLarge:  # the worker answers 431, as a single server would
            self._route(fd, None)
            return True
        if head is None:
            if pending.reader.bad_start() is not None:  # the worker answers 400
                self._route(fd, None)
                return True
            return False
        # Only the request line is parsed here (RFC 7230 §3.1.1: method SP target SP
        # version); the worker parses and checks the whole head, as a single server does.
        end = head.find(b"\n")
        parts = (head if end < 0 else head[:end]).rstrip(b"\r").split(b" ")
        if len(parts) != 3:
            self._route(fd, None)  # malformed: the worker answers 400
            return True
        target = parts[1].decode("latin-1")
        if target == "/health" and parts[0] == b"GET" and self._is_plain_http(head):
            self._answer_health(fd)
            return True
        try:
            key = key_for_target(self.app, target, lambda: read_request(head))
        except Exception:  # a partition function failed, or the head is malformed
            key = None
        self._route(fd, key)
        return True

    @staticmethod
    def _is_plain_http(head: bytes) -> bool:
        try:
            return not is_upgrade_request(read_request(head))
        except Exception:
            return False

    def _route(self, fd: int, key: Optional[str]) -> None:
        pending = self.pending.pop(fd)
        self.loop.remove_reader(fd)
        slot = owner(key, self.slots) if key is not None else self.least_loaded()
        self.dispatch(slot, fd, bytes(pending.raw), False)

    def _answer_health(self, fd: int) -> None:
        self.pending.pop(fd, None)
        self.loop.remove_reader(fd)
        self.health_answered += 1
        body = self.health()
        raw = build_response(200, [("Content-Type", "application/json"),
                                   ("Connection", "close")], body)
        try:
            os.write(fd, raw)  # a few hundred bytes: the socket buffer takes them
        except OSError:
            pass
        os.close(fd)

    def _drop(self, fd: int) -> None:
        self.pending.pop(fd, None)
        self.loop.remove_reader(fd)
        try:
            os.close(fd)
        except OSError:
            pass

    def _sweep(self) -> None:
        """Close connections whose request head is late (slow-loris bound)."""
        tick = self.loop.tick
        late = [fd for fd, p in self.pending.items() if tick - p.tick >= self.timeout_ticks]
        for fd in late:
            self.timed_out += 1
            self._drop(fd)

    def _pause(self, exc: OSError) -> None:
        if self._paused:
            return
        log.warning("accept: %s; pausing accept for one tick", exc.strerror)
        self._paused = True
        self.loop.remove_reader(self.sock.fileno())

        def resume():
            self._paused = False
            if self.sock.fileno() >= 0:
                self.loop.add_reader(self.sock.fileno(), self._on_accept)
        self.loop.call_later(self.loop.tick_interval, resume)

    def close(self) -> None:
        """Stop accepting; drop connections still in their handshake."""
        for fd in list(self.pending):
            self._drop(fd)
        if self.sock.fileno() >= 0:
            if self._started and not self._paused:
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
