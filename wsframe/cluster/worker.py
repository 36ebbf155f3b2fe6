"""One worker process: a :class:`~wsframe.server.server.Server` fed by the supervisor.

The supervisor starts each worker with the environment variable
``WSFRAME_CLUSTER_WORKER`` (JSON: slot, slots, control fd, handoff fd) and
both socket ends inherited. The worker then listens on nothing: every
connection arrives over the handoff socket with the bytes the supervisor
already read, and :meth:`Server.adopt` serves it from those bytes on.

The worker exits when its supervisor dies (``PR_SET_PDEATHSIG`` where Linux
has it, and the control socket's EOF everywhere): no orphans.
"""
from __future__ import annotations

import array
import ctypes
import ctypes.util
import json
import logging
import os
import signal
import socket
import time
from typing import Optional

from wsframe.loop.eventloop import raise_fd_limit
from wsframe.server.server import Server
from wsframe.cluster.rooms import ClusterRooms
from wsframe.cluster.wire import (
    ANSWER, ASK, DRAIN, FANOUT, HANDOFF_TLS, JOIN, LEAVE, PUBLISH, READY, RESTARTED, ROUTE, STATS,
    Channel, frame, pack_json, unpack_room_message,
)

__all__ = ["ENV", "worker_spec", "run_worker", "die_with_parent"]

log = logging.getLogger("wsframe.cluster")

ENV = "WSFRAME_CLUSTER_WORKER"
PR_SET_PDEATHSIG = 1
HANDOFF_MAX = 1 << 17   # one handoff message: flags + head (<= 16 KiB) + pipelined bytes


def worker_spec() -> Optional[dict]:
    """This process's worker spec, if the supervisor started it."""
    raw = os.environ.get(ENV)
    return json.loads(raw) if raw else None


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``signum`` when the parent exits; False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Worker:
    """The cluster side of one worker: handoffs in, stats out, rooms across workers."""

    def __init__(self, server: Server, spec: dict) -> None:
        self.server = server
        self.slot = spec["slot"]
        self.slots = spec["slots"]
        self.tls_context = None
        loop = server.loop
        self.control = Channel(loop, socket.socket(fileno=spec["control"]), self._on_message,
                               self._on_lost)
        self.handoff = socket.socket(fileno=spec["handoff"])
        self.handoff.setblocking(False)
        self.rooms = ClusterRooms(self.slot, self.slots, self._send_to)
        server.use_rooms(self.rooms)
        if server.backplane is not None:  # this worker: the backplane client of its rooms
            self.rooms.attach(server.backplane)
            server.backplane.start()
        self.lost_handoffs = 0
        self.received = 0       # handoffs taken (the supervisor's load estimate needs it)
        loop.add_reader(self.handoff.fileno(), self._on_handoff)
        loop.on_tick(self._report)

    # ---- connections in -------------------------------------------------------------

    def _on_handoff(self, _fd: int) -> None:
        fds = array.array("i")
        for _ in range(256):
            try:
                data, ancdata, flags, _addr = self.handoff.recvmsg(
                    HANDOFF_MAX, socket.CMSG_SPACE(fds.itemsize))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("handoff socket: %s", exc)
                return
            if not data and not ancdata:
                self.server.loop.remove_reader(self.handoff.fileno())  # supervisor gone
                return
            received = []
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    got = array.array("i")
                    got.frombytes(payload[:len(payload) - len(payload) % got.itemsize])
                    received.extend(got)
            if flags & socket.MSG_CTRUNC or not received:
                self.received += 1
                self.lost_handoffs += 1  # out of fds here: the kernel dropped the socket
                for fd in received:
                    os.close(fd)
                continue
            fd = received[0]
            self.received += 1
            for extra in received[1:]:
                os.close(extra)
            if self.server._stopping:
                os.close(fd)
                continue
            os.set_blocking(fd, False)
            tls = bool(data[:1] and data[0] & HANDOFF_TLS)
            self.server.adopt(fd, data[1:], ssl=self.tls_context if tls else None)

    # ---- control --------------------------------------------------------------------

    def _send_to(self, slot: int, kind: int, body: bytes) -> None:
        if slot == self.slot:  # our own room (a broadcast to ourselves): no round trip
            self._on_message(self.control, kind, body)
            return
        self.control.send(ROUTE, slot.to_bytes(2, "big") + frame(kind, body))

    def _on_message(self, _channel, kind: int, body: bytes) -> None:
        rooms = self.rooms
        if kind == PUBLISH:
            name, payload, text, compress, origin, exclude_fd, policy = unpack_room_message(body)
            rooms.on_publish(name, payload, text, compress, origin, exclude_fd, policy)
        elif kind == FANOUT:
            name, payload, text, compress, _origin, exclude_fd, policy = unpack_room_message(body)
            rooms.on_fanout(name, payload, text, compress, exclude_fd, policy)
        elif kind == JOIN:
            rooms.on_join(body)
        elif kind == LEAVE:
            rooms.on_leave(body)
        elif kind == ASK:
            rooms.on_ask(body)
        elif kind == ANSWER:
            rooms.on_answer(body)
        elif kind == RESTARTED:
            rooms.on_restarted(int.from_bytes(body[:2], "big"))
        elif kind == DRAIN:
            order = json.loads(body)
            self.server.shutdown(order.get("code", 1012), order.get("reason", "service restart"))

    def _on_lost(self, _channel) -> None:
        if not self.server._stopping:
            log.warning("worker %d: supervisor gone; shutting down", self.slot)
            self.server.shutdown()

    def _report(self) -> None:
        self.rooms.expire_asks(time.monotonic())
        server = self.server
        conns = server._conns
        self.control.send(STATS, pack_json({
            "pid": os.getpid(), "slot": self.slot, "connections": len(conns),
            "open": server.stats.open, "rooms": len(server.rooms),
            "queued_bytes": sum(conn._out_size for conn in conns),
            "fd_limit": server.fd_limits[0], "lost_handoffs": self.lost_handoffs,
            "received": self.received,
            "channel_dropped": self.control.dropped,
            **({"backplane": server.backplane.stats()} if server.backplane is not None else {}),
            **({"gateway": server.gateway.stats()} if server.gateway is not None else {}),
        }))

    def ready(self) -> None:
        self.control.send(READY, pack_json({"pid": os.getpid()}))
        self._report()


def run_worker(server: Server, spec: Optional[dict] = None, *, tls_context=None) -> None:
    """Serve as worker ``spec["slot"]`` until drained, signalled, or orphaned."""
    spec = spec or worker_spec()
    if spec is None:
        raise RuntimeError(f"not started by a wsframe supervisor ({ENV} is not set)")
    die_with_parent()
    if os.getppid() != spec.get("parent", os.getppid()):
        return  # the supervisor died before prctl took effect
    server.fd_limits = raise_fd_limit()  # each worker has its own file limit
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor drives reloads
    worker = Worker(server, spec)
    worker.tls_context = tls_context
    worker.ready()
    server.loop.flush()  # READY now, not after the loop's first wait
    log.info("worker %d/%d pid %d ready (fd limit %s)", worker.slot, worker.slots,
             os.getpid(), server.fd_limits[0])
    server.serve_forever()
    worker.control.close()
