"""The supervisor: starts N workers, routes connections to them, keeps them running.

::

    clients ──TCP──▶ supervisor (accept, read head, pick owner) ──send_fds──▶ worker k
                         ▲  │ relays room traffic between workers            (Server.adopt)
    publish() ──unix──▶──┘  └── /health from every worker's stats

* a worker that dies is restarted in its slot (same slot: same keys), with
  a growing delay if it keeps dying at once; other workers are untouched;
* ``SIGHUP``: rolling restart -- for each slot in turn a new worker starts,
  takes over the slot once ready, and the old one drains with close 1012;
* ``SIGTERM`` / ``SIGINT``: every worker closes its connections with 1001,
  bounded wait (``shutdown_timeout`` + 2 s), then SIGKILL for stragglers, exit.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections import deque
from typing import Optional, Sequence

from wsframe.loop.eventloop import Loop, raise_fd_limit
from wsframe.server.server import Server
from wsframe.cluster.acceptor import Acceptor
from wsframe.cluster.partition import owner
from wsframe.cluster.publish import PublishServer
from wsframe.cluster.wire import (
    DRAIN, HANDOFF_TLS, PUBLISH, READY, RESTARTED, ROUTE, STATS, Channel, pack_json,
)
from wsframe.cluster.worker import ENV

__all__ = ["Supervisor"]

log = logging.getLogger("wsframe.cluster")

BACKLOG_PER_WORKER = 4096   # connections waiting for a worker that is (re)starting
READY_TIMEOUT = 20.0        # a new worker must say READY by then
HANDOFF_BUFFER = 4 << 20
FD_MARGIN = 64              # fds a worker keeps for itself (channels, files, its epoll)
GIVE_UP_AFTER = 5           # a slot whose worker dies this often before it is ready: exit


class WorkerHandle:
    """One worker process as the supervisor sees it."""

    def __init__(self, slot: int, generation: int) -> None:
        self.slot = slot
        self.generation = generation
        self.proc: Optional[subprocess.Popen] = None
        self.control: Optional[Channel] = None
        self.handoff: Optional[socket.socket] = None
        self.ready = False
        self.draining = False
        self.started = time.monotonic()
        self.deadline: Optional[float] = None  # kill after this (drain / ready timeout)
        self.stats: dict = {}
        self.handed = 0            # connections handed to it so far

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def load(self) -> int:
        """Its connections, counting those handed to it that it has not reported yet."""
        stats = self.stats
        return stats.get("connections", 0) + max(0, self.handed - stats.get("received", 0))


class Supervisor:
    """Run ``worker_argv`` as ``workers`` worker processes behind one listening socket.

    ``app`` is the user's server (its routes give the partition keys; it
    serves nothing in this process). Each worker runs ``worker_argv``, which
    must build the same app and call :func:`wsframe.cluster.worker.run_worker`.
    """

    def __init__(self, app: Server, worker_argv: Sequence[str], workers: int, *,
                 host: str = "127.0.0.1", port: int = 8765, tls: bool = False,
                 publish_socket: Optional[str] = None, shutdown_timeout: Optional[float] = None,
                 tick_interval: float = 0.25) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.app = app
        self.worker_argv = list(worker_argv)
        self.slots = workers
        self.loop = Loop(tick_interval=tick_interval)
        self.shutdown_timeout = (app.settings.shutdown_timeout if shutdown_timeout is None
                                 else shutdown_timeout)
        self.fd_limits = raise_fd_limit()
        self.current: list[Optional[WorkerHandle]] = [None] * workers
        self.handles: list[WorkerHandle] = []     # every live process, draining ones too
        self.restarts = [0] * workers
        self.backlog = [deque() for _ in range(workers)]  # waiting for the slot's worker
        self._fast_deaths = [0] * workers
        self._never_ready = [0] * workers
        self.failed = False        # gave up: workers could not start
        self._generation = 0
        self._stopping = False
        self._stop_deadline: Optional[float] = None
        self._rolling: deque = deque()
        self._rolling_active = False
        self.relayed = self.relay_dropped = self.published = self.handed_off = 0
        self.lost_backlog = 0
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
        sock.bind((host, port))  # listen() once the workers are ready (see _on_ready)
        self._listen_backlog = app.settings.backlog
        self._listening = False
        self.address = sock.getsockname()[:2]
        self._sock = sock
        self.acceptor = Acceptor(
            self.loop, sock, app, workers, dispatch=self._dispatch,
            least_loaded=self._least_loaded, health=self.health_json, tls=tls,
            max_head_size=app.settings.max_head_size,
            handshake_timeout=app.settings.handshake_timeout,
            accept_batch=app.settings.accept_batch)
        self.publish_path = publish_socket
        self._publish_server = (PublishServer(self.loop, publish_socket, self._deliver_published)
                                if publish_socket else None)
        self.loop.on_tick(self._on_tick)

    # ---- running ------------------------------------------------------------------

    def run(self) -> None:
        """Start the workers and supervise them until SIGTERM/SIGINT (or :meth:`stop`)."""
        self.loop.add_signal_handler(signal.SIGTERM, self.stop)
        self.loop.add_signal_handler(signal.SIGINT, self.stop)
        self.loop.add_signal_handler(signal.SIGHUP, self.rolling_restart)
        self.loop.add_signal_handler(signal.SIGCHLD, self._reap)
        for slot in range(self.slots):
            self._spawn(slot)
        try:
            self.loop.run()
        finally:
            self._kill_all()
            if self._publish_server is not None:
                self._publish_server.close()

    def stop(self) -> None:
        """Stop accepting; workers close with 1001; bounded wait, then exit."""
        if self._stopping:
            return
        self._stopping = True
        log.info("supervisor: shutting down %d workers", len(self.handles))
        self.acceptor.close()
        if self._publish_server is not None:
            self._publish_server.close()
        self._close_backlog()
        for handle in self.handles:
            self._signal(handle, signal.SIGTERM)
        self._stop_deadline = time.monotonic() + self.shutdown_timeout + 2.0
        self._reap()

    def rolling_restart(self) -> None:
        """Replace the workers one at a time (each old one drains with 1012)."""
        if self._stopping:
            return
        log.info("supervisor: rolling restart of %d workers", self.slots)
        for slot in range(self.slots):
            if slot not in self._rolling:
                self._rolling.append(slot)
        if not self._rolling_active:
            self._roll_next()

    def _roll_next(self) -> None:
        self._rolling_active = bool(self._rolling) and not self._stopping
        if self._rolling_active:
            self._spawn(self._rolling.popleft(), replacing=True)

    # ---- workers ------------------------------------------------------------------

    def _spawn(self, slot: int, replacing: bool = False) -> WorkerHandle:
        self._generation += 1
        handle = WorkerHandle(slot, self._generation)
        control, control_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        handoff, handoff_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            handoff.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, HANDOFF_BUFFER)
        except OSError:
            pass
        env = dict(os.environ)
        env[ENV] = json.dumps({"slot": slot, "slots": self.slots, "parent": os.getpid(),
                               "control": control_child.fileno(),
                               "handoff": handoff_child.fileno()})
        handle.proc = subprocess.Popen(self.worker_argv, env=env, stdin=subprocess.DEVNULL,
                                       pass_fds=(control_child.fileno(), handoff_child.fileno()))
        control_child.close()
        handoff_child.close()
        handoff.setblocking(False)
        handle.handoff = handoff
        handle.control = Channel(self.loop, control, self._on_message, self._on_lost, tag=handle)
        handle.deadline = time.monotonic() + READY_TIMEOUT
        self.handles.append(handle)
        if not replacing or self.current[slot] is None:
            self.current[slot] = handle
        log.info("supervisor: worker %d started (pid %d)", slot, handle.pid)
        return handle

    def _listen(self) -> None:
        """Start accepting: connections before this wait in no queue of ours (refused)."""
        if not self._listening and not self._stopping:
            self._listening = True
            self._sock.listen(self._listen_backlog)
            self.acceptor.start()

    def _on_message(self, channel: Channel, kind: int, body: bytes) -> None:
        handle: WorkerHandle = channel.tag
        if kind == ROUTE:
            if self.current[handle.slot] is not handle:
                # a draining worker: its slot is its successor's now, and so are the room
                # memberships announced under it (an old LEAVE must not undo a new JOIN)
                self.relay_dropped += 1
                return
            target = self.current[int.from_bytes(body[:2], "big")]
            if target is not None and target.control is not None and target.control.send_raw(
                    body[2:]):
                self.relayed += 1
            else:
                self.relay_dropped += 1
        elif kind == STATS:
            handle.stats = json.loads(body)
        elif kind == READY:
            self._on_ready(handle)

    def _on_ready(self, handle: WorkerHandle) -> None:
        handle.ready = True
        handle.deadline = None
        slot = handle.slot
        old = self.current[slot]
        self.current[slot] = handle
        if old is not None and old is not handle:  # a rolling restart: the old one drains
            old.draining = True
            old.deadline = time.monotonic() + self.shutdown_timeout + 2.0
            if old.control is not None:
                old.control.send(DRAIN, pack_json({"code": 1012, "reason": "service restart"}))
        for other in self.current:  # its rooms' memberships start afresh
            if other is not None and other is not handle and other.control is not None:
                other.control.send(RESTARTED, slot.to_bytes(2, "big"))
        self._flush_backlog(slot)
        if not self._listening and all(h is not None and h.ready for h in self.current):
            self._listen()
        log.info("supervisor: worker %d ready (pid %d)", slot, handle.pid)

    def _on_lost(self, channel: Channel) -> None:
        self.loop.call_soon(self._reap)

    def _reap(self) -> None:
        """Collect exited workers; restart the slots they held."""
        for handle in list(self.handles):
            if handle.proc.poll() is None:
                continue
            self.handles.remove(handle)
            if handle.control is not None:
                handle.control.close()
            handle.handoff.close()
            current = self.current[handle.slot] is handle
            if not handle.draining and not self._stopping:
                log.warning("supervisor: worker %d (pid %d) exited with %s", handle.slot,
                            handle.pid, handle.proc.returncode)
            if current:
                self.current[handle.slot] = None
                if not self._stopping:
                    self._restart_later(handle)
            failed_replacement = not current and not handle.draining
            if (handle.draining or failed_replacement) and self._rolling_active \
                    and not self._stopping:
                self._roll_next()
        if self._stopping and not self.handles:
            self.loop.stop()

    def _restart_later(self, dead: WorkerHandle) -> None:
        slot = dead.slot
        self.restarts[slot] += 1
        if not dead.ready:
            self._never_ready[slot] += 1
            if self._never_ready[slot] >= GIVE_UP_AFTER:
                log.error("supervisor: worker %d died %d times before it was ready; giving up",
                          slot, self._never_ready[slot])
                self.failed = True
                self.stop()
                return
        else:
            self._never_ready[slot] = 0
        quick = time.monotonic() - dead.started < 2.0
        self._fast_deaths[slot] = self._fast_deaths[slot] + 1 if quick else 0
        delay = min(0.1 * (2 ** self._fast_deaths[slot]), 10.0) if quick else 0.0

        def restart():
            if not self._stopping and self.current[slot] is None:
                self._spawn(slot)
        self.loop.call_later(delay, restart)

    def _signal(self, handle: WorkerHandle, signum: int) -> None:
        try:
            handle.proc.send_signal(signum)
        except (ProcessLookupError, OSError):
            pass

    def _kill_all(self) -> None:
        for handle in self.handles:
            self._signal(handle, signal.SIGKILL)
        for handle in self.handles:
            try:
                handle.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def _on_tick(self) -> None:
        self._reap()
        now = time.monotonic()
        if self._stopping:
            if self._stop_deadline is not None and now >= self._stop_deadline:
                for handle in self.handles:
                    self._signal(handle, signal.SIGKILL)
            return
        for handle in self.handles:
            if handle.deadline is not None and now >= handle.deadline:
                log.warning("supervisor: worker %d (pid %d) %s; killing it", handle.slot,
                            handle.pid, "did not drain in time" if handle.draining
                            else "did not become ready")
                handle.deadline = None
                self._signal(handle, signal.SIGKILL)
                if not handle.ready and any(h is not None and h.ready for h in self.current):
                    self._listen()  # serve with the workers that did start
        for slot, handle in enumerate(self.current):
            if handle is not None and handle.ready and self.backlog[slot]:
                self._flush_backlog(slot)

    # ---- connections --------------------------------------------------------------

    def _least_loaded(self) -> int:
        best, best_load = 0, None
        for slot, handle in enumerate(self.current):
            if handle is None:
                continue
            load = handle.load() + len(self.backlog[slot]) + (0 if handle.ready else 1 << 30)
            if best_load is None or load < best_load:
                best, best_load = slot, load
        return best

    def _dispatch(self, slot: int, fd: int, data: bytes, tls: bool) -> None:
        handle = self.current[slot]
        if handle is not None and handle.ready and self._nearly_full(handle):
            slot = self._least_loaded()  # the owner is at its fd limit: rooms work by proxy
            handle = self.current[slot]
        item = (fd, bytes([HANDOFF_TLS if tls else 0]) + data)
        if handle is None or not handle.ready or self.backlog[slot] or not self._send(handle, item):
            self._queue(slot, item)

    @staticmethod
    def _nearly_full(handle: WorkerHandle) -> bool:
        limit = handle.stats.get("fd_limit") or 0
        return limit > 0 and handle.load() >= limit - FD_MARGIN

    def _send(self, handle: WorkerHandle, item: tuple) -> bool:
        fd, message = item
        try:
            socket.send_fds(handle.handoff, [message], [fd])
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:  # the worker is gone: the connection with it
            log.warning("handoff to worker %d failed: %s", handle.slot, exc)
            os.close(fd)
            self.lost_backlog += 1
            return True
        os.close(fd)  # the worker has its own copy now: we keep none
        handle.handed += 1
        self.handed_off += 1
        return True

    def _queue(self, slot: int, item: tuple) -> None:
        """Hold a connection for a slot whose worker is busy, starting or restarting."""
        backlog = self.backlog[slot]
        if len(backlog) >= BACKLOG_PER_WORKER:
            self.lost_backlog += 1
            os.close(item[0])
            return
        backlog.append(item)
        if len(backlog) == 1:
            self.loop.call_later(0.005, self._flush_backlog, slot)

    def _flush_backlog(self, slot: int) -> None:
        backlog, handle = self.backlog[slot], self.current[slot]
        while backlog and handle is not None and handle.ready and handle.handoff.fileno() >= 0:
            if not self._send(handle, backlog[0]):
                self.loop.call_later(0.005, self._flush_backlog, slot)
                return
            backlog.popleft()

    def _close_backlog(self) -> None:
        for backlog in self.backlog:
            while backlog:
                os.close(backlog.popleft()[0])

    def _deliver_published(self, name: str, body: bytes) -> None:
        """A publish from outside: to the room's owner, which sequences it."""
        target = self.current[owner(name, self.slots)]
        if target is not None and target.control is not None and target.control.send(
                PUBLISH, body):
            self.published += 1
        else:
            self.relay_dropped += 1

    # ---- stats --------------------------------------------------------------------

    def health(self) -> dict:
        """Per worker: pid, connections, rooms, queued bytes, restarts; and totals."""
        workers = []
        for slot, handle in enumerate(self.current):
            stats = handle.stats if handle is not None else {}
            workers.append({
                "slot": slot, "pid": handle.pid if handle else None,
                "ready": bool(handle and handle.ready),
                "connections": stats.get("connections", 0), "rooms": stats.get("rooms", 0),
                "queued_bytes": stats.get("queued_bytes", 0), "restarts": self.restarts[slot],
                "fd_limit": stats.get("fd_limit"),
                **({"backplane": stats["backplane"]} if "backplane" in stats else {}),
                **({"gateway": stats["gateway"]} if "gateway" in stats else {}),
            })
        totals = {key: sum(w[key] for w in workers)
                  for key in ("connections", "rooms", "queued_bytes", "restarts")}
        totals["workers"] = sum(1 for w in workers if w["ready"])
        return {"status": "ok" if totals["workers"] == self.slots else "degraded",
                "supervisor": {"pid": os.getpid(), "accepted": self.acceptor.accepted,
                               "handed_off": self.handed_off,
                               "pending_handshakes": len(self.acceptor.pending),
                               "handshake_timeouts": self.acceptor.timed_out,
                               "relayed": self.relayed, "published": self.published,
                               "relay_dropped": self.relay_dropped,
                               "lost_backlog": self.lost_backlog},
                "workers": workers, "totals": totals}

    def health_json(self) -> bytes:
        return (json.dumps(self.health()) + "\n").encode()
