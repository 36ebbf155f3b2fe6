"""The supervisor's channels to its workers: length-prefixed messages on Unix sockets.

Two socketpairs join the supervisor and each worker:

* *handoff* (``SOCK_SEQPACKET``, supervisor -> worker): one message per
  connection, the accepted fd as ``SCM_RIGHTS`` and, as the data, a flags
  byte followed by every byte already read from it (``socket.send_fds``);
  message boundaries keep each fd with its own bytes.
* *control* (``SOCK_STREAM``, both ways): messages framed as
  ``!IB`` (body length, type) + body, for readiness, stats, draining and
  room traffic between workers (relayed by the supervisor).

:class:`Channel` is the control side on a :class:`~wsframe.loop.eventloop.Loop`:
non-blocking, corked like any stream, with a bounded output queue.
"""
from __future__ import annotations

import json
import os
import socket
import struct
from typing import Callable, Optional

from wsframe.loop.backpressure import Policy
from wsframe.loop.eventloop import FdStream, Loop

__all__ = ["Channel", "frame", "pack_room_message", "unpack_room_message", "HEADER",
           "READY", "STATS", "ROUTE", "JOIN", "LEAVE", "PUBLISH", "FANOUT", "RESTARTED",
           "ASK", "ANSWER", "pack_ask", "unpack_ask", "DRAIN", "HANDOFF_TLS", "MAX_BODY"]

HEADER = struct.Struct("!IB")        # body length, message type
MAX_BODY = 64 << 20                  # a bigger frame is a broken peer: drop the channel
MAX_QUEUE = 256 << 20                # output queued for one slow peer before messages drop

# worker -> supervisor
READY = 1       # JSON {"pid": ...}: the worker serves; hand it connections
STATS = 2       # JSON counters, once per tick
ROUTE = 3       # !H destination slot + a framed message to relay to that worker
# worker <-> worker (relayed), and outside publishers -> supervisor
JOIN = 10       # !H from-slot + room name: a worker has members in a room owned elsewhere
LEAVE = 11      # !H from-slot + room name: ... and now has none
PUBLISH = 12    # room message to the room's owner (see pack_room_message)
FANOUT = 13     # room message from the owner to a worker with members
ASK = 14        # !HIH from-slot, tag (0: no answer wanted), name length + room name +
#                 payload: a request for the room's owner, for the layer above (delivery)
ANSWER = 15     # !IB tag, ok + payload: the owner's answer to an ASK
# supervisor -> worker
RESTARTED = 20  # !H slot: that slot has a fresh worker (re-announce memberships to it)
DRAIN = 21      # JSON {"code": 1012, "reason": ...}: close everything and exit

HANDOFF_TLS = 1  # handoff flags: TLS not yet started, the worker terminates it

_ROOM = struct.Struct("!HhiBB")  # name length, origin slot, excluded fd, flags, policy
_POLICIES = (None, Policy.WAIT, Policy.DROP, Policy.CLOSE)  # index on the wire


def frame(kind: int, body: bytes = b"") -> bytes:
    """One control message."""
    return HEADER.pack(len(body), kind) + body


def pack_room_message(name: str, payload: bytes, *, text: bool, compress: Optional[bool] = None,
                      origin: int = -1, exclude_fd: int = -1, policy: Optional[Policy] = None) -> bytes:
    """The body of a PUBLISH / FANOUT: room, flags, the member to skip, the payload."""
    raw = name.encode("utf-8", "surrogatepass")
    flags = (1 if text else 0) | {None: 0, True: 2, False: 4}[compress]
    return _ROOM.pack(len(raw), origin, exclude_fd, flags, _POLICIES.index(policy)) + raw + payload


def unpack_room_message(body: bytes) -> tuple:
    """(name, payload, text, compress, origin, exclude_fd, policy)."""
    size, origin, exclude_fd, flags, policy = _ROOM.unpack_from(body)
    start = _ROOM.size
    name = body[start:start + size].decode("utf-8", "surrogatepass")
    compress = True if flags & 2 else False if flags & 4 else None
    return (name, body[start + size:], bool(flags & 1), compress, origin, exclude_fd,
            _POLICIES[policy] if policy < len(_POLICIES) else None)


_ASK = struct.Struct("!HIH")    # origin slot, tag, name length
_ANSWER = struct.Struct("!IB")  # tag, ok


def pack_ask(origin: int, tag: int, name: str, payload: bytes) -> bytes:
    raw = name.encode("utf-8", "surrogatepass")
    return _ASK.pack(origin, tag, len(raw)) + raw + payload


def unpack_ask(body: bytes) -> tuple:
    """(origin, tag, name, payload)."""
    origin, tag, size = _ASK.unpack_from(body)
    start = _ASK.size
    return (origin, tag, body[start:start + size].decode("utf-8", "surrogatepass"),
            body[start + size:])


def pack_answer(tag: int, payload: Optional[bytes]) -> bytes:
    return _ANSWER.pack(tag, payload is not None) + (payload or b"")


def unpack_answer(body: bytes) -> tuple:
    """(tag, payload or None when the owner could not answer)."""
    tag, ok = _ANSWER.unpack_from(body)
    return tag, body[_ANSWER.size:] if ok else None


def pack_json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Channel(FdStream):
    """A control socket on the loop: ``on_message(channel, kind, body)`` per message,
    ``on_lost(channel)`` once when the peer goes away (or the channel is closed)."""

    __slots__ = ("fd", "loop", "_out", "_out_size", "_seen", "_mark", "_io", "_buf",
                 "on_message", "on_lost", "_lost", "dropped", "tag")

    close_tcp = False  # FdStream asks; a channel closes only on EOF or close()

    def __init__(self, loop: Loop, sock: socket.socket,
                 on_message: Callable[["Channel", int, bytes], None],
                 on_lost: Callable[["Channel"], None], tag: object = None) -> None:
        self.fd = sock.detach()
        os.set_blocking(self.fd, False)
        self.loop = loop
        self._out = None
        self._out_size = 0
        self._seen = self._mark = loop.tick
        self._io = 0
        self._buf = bytearray()
        self.on_message = on_message
        self.on_lost = on_lost
        self._lost = False
        self.dropped = 0     # messages not queued: the peer was too far behind
        self.tag = tag       # the owner's label (a worker slot, a publisher)
        loop.add_stream(self)

    @property
    def alive(self) -> bool:
        return self.fd >= 0

    def send(self, kind: int, body: bytes = b"") -> bool:
        """Queue one message (written at the end of the loop turn); False if dropped."""
        if self.fd < 0:
            return False
        if self._out_size > MAX_QUEUE:
            self.dropped += 1
            return False
        self._write(HEADER.pack(len(body), kind))
        if body:
            self._write(body)
        return True

    def send_raw(self, framed: bytes) -> bool:
        """Queue an already framed message (a relay)."""
        if self.fd < 0:
            return False
        if self._out_size > MAX_QUEUE:
            self.dropped += 1
            return False
        self._write(framed)
        return True

    def receive_data(self, data) -> None:
        buf = self._buf
        buf += data
        start, end = 0, len(buf)
        while end - start >= HEADER.size:
            size, kind = HEADER.unpack_from(buf, start)
            if size > MAX_BODY:
                self._buf = bytearray()
                self.close()
                return
            stop = start + HEADER.size + size
            if stop > end:
                break
            body = bytes(buf[start + HEADER.size:stop])
            start = stop
            self.on_message(self, kind, body)
            if self.fd < 0:
                return
        if start:
            del buf[:start]

    def receive_eof(self) -> None:
        if not self._lost:
            self._lost = True
            self.on_lost(self)

    def close(self) -> None:
        """Write what is queued (best effort) and close."""
        self._abort()
