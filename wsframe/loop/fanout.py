"""Fan-out: the same bytes to many streams, written now, with a backpressure verdict each.

This is the loop's public seam for broadcasts (rooms, and later workers and
the backplane): a caller hands over streams and one ``bytes`` object and gets
back how each stream took it. Streams with nothing queued (and no TLS or
tracer between them and their fd) get one ``write`` each from a compiled
loop (``write_each``, :mod:`_speedups.fanout`), so the last member of a room
of 10,000 is not kept waiting by Python work for the others; what a kernel
does not take is queued on that stream; streams that already have queued
output go through :meth:`~wsframe.loop.eventloop.FdStream.offer`, which
applies the backpressure policy.
"""
from __future__ import annotations

import errno
import os
from typing import Sequence

from wsframe.codec import compiled_module
from wsframe.loop.backpressure import Policy, SendStatus

__all__ = ["write_each", "fan_out", "BroadcastResult"]


def _write_each(fds: list, data) -> list:
    """``write(fd, data)`` for every fd in order; return ``[(index, result)]`` for the
    fds not written in full: ``result`` is the bytes written, or ``-errno``."""
    misses = []
    size = len(data)
    for i, fd in enumerate(fds):
        try:
            sent = os.write(fd, data)
        except OSError as exc:
            sent = -(exc.errno or errno.EIO)
        if sent != size:
            misses.append((i, sent))
    return misses


_compiled_fanout = compiled_module("fanout")
#: The compiled twin where built (no Python per member), else the loop above.
write_each = _compiled_fanout.write_each if _compiled_fanout is not None else _write_each


class BroadcastResult:
    """How a fan-out went: streams reached, and those skipped by backpressure.

    ``published``: ``None`` without a backplane; else whether the message was
    handed to it for the other servers (``False``: it is down, counted there).
    """

    __slots__ = ("delivered", "dropped", "blocked", "closed", "published")

    def __init__(self) -> None:
        self.delivered = self.dropped = self.blocked = self.closed = 0
        self.published = None

    def count(self, status: SendStatus) -> None:
        if status is SendStatus.OK:
            self.delivered += 1
        elif status is SendStatus.DROPPED:
            self.dropped += 1
        elif status is SendStatus.BLOCKED:
            self.blocked += 1
        else:
            self.closed += 1

    def __repr__(self) -> str:
        return (f"BroadcastResult(delivered={self.delivered}, dropped={self.dropped}, "
                f"blocked={self.blocked}, closed={self.closed}, published={self.published})")


def fan_out(streams: Sequence, data: bytes, policy: Policy, max_queue: int,
            result: BroadcastResult) -> BroadcastResult:
    """Write ``data`` to every stream now (queued streams: within ``max_queue``, else
    ``policy``); count each outcome in ``result``."""
    direct = []
    for stream in streams:
        if stream._out is None and stream._direct_writes:
            direct.append(stream)
        else:
            result.count(stream.offer(data, policy, max_queue))
    result.delivered += len(direct)
    for index, sent in write_each([stream.fd for stream in direct], data):
        stream = direct[index]
        if sent >= 0 or sent in (-errno.EAGAIN, -errno.EWOULDBLOCK):
            stream._queue_rest(data, max(sent, 0))
        else:  # the peer is gone
            result.delivered -= 1
            result.closed += 1
            stream._broken()
    return result
