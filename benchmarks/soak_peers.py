"""The soak's Python-side peers: churn (the blocking client) and hostile peers (raw sockets).

Each runs in its own process (see ``benchmarks/soak.py``), on loopback only,
until its stop event is set or its deadline passes, whichever comes first;
it reports live counters through a shared array and a result dict through
a queue at the end.

* :func:`churn_main`: ``threads`` threads together open and close about
  ``rate`` connections per second with :func:`wsframe.client.blocking.connect`,
  alternately to ``/room/churn-<k>`` (join, close) and ``/echo`` (one message,
  its echo checked, close). Every exception or wrong echo is a failure,
  counted by reason.
* :func:`hostile_main`: ``per_kind`` peers of each kind, reopened (after
  ``REOPEN_DELAY``) whenever the server drops them:

  - ``never_reader``: completes the handshake on ``/echo``, then sends
    masked binary frames (at most ``rate`` bytes a second, while the socket
    takes them) and never reads;
  - ``ping_flooder``: the same with Ping frames (each answered by a Pong it
    never reads);
  - ``slowloris``: sends a request head one byte per second that never ends.

  The server must cut each one off, or hold it without growth (its socket
  stops taking bytes: ``took_nothing_for_s`` at the end); which happened is
  in the result.
"""
from __future__ import annotations

import base64
import os
import select
import socket
import threading
import time
from typing import Optional

from wsframe.codec.frames import client_frame

__all__ = ["CHURN_COUNTERS", "HOSTILE_KINDS", "churn_main", "hostile_main"]

CHURN_COUNTERS = ("attempted", "ok", "failed")
HOSTILE_KINDS = ("never_reader", "ping_flooder", "slowloris")
REOPEN_DELAY = 1.0     # seconds before a dropped hostile peer comes back
TICK = 0.05


# ---- churn -------------------------------------------------------------------------------

def _churn_once(base: str, n: int, rooms: int, source: tuple[str, int]) -> Optional[str]:
    """One connect/disconnect; None when it went as it should, else the failure reason."""
    from wsframe.client.blocking import connect
    path = f"/room/churn-{n % rooms}" if n % 2 == 0 else "/echo"
    try:
        ws = connect(base + path, timeout=10.0, source_address=source, send_timeout=10.0)
        try:
            if path == "/echo":
                text = f"churn {n}"
                ws.send(text)
                got = ws.recv(timeout=10.0)
                if got != text:
                    return "wrong echo"
        finally:
            ws.close(timeout=5.0)
    except Exception as exc:  # every kind of failure is counted, none ends the run
        return f"{type(exc).__name__}: {str(exc)[:80]}"
    return None


def churn_main(host: str, port: int, rate: float, threads: int, rooms: int, sources: list[str],
               deadline: float, stop, counters, queue) -> None:
    """Open and close about ``rate`` connections a second until ``stop`` or ``deadline``."""
    base = f"ws://{host}:{port}"
    failures: dict[str, int] = {}
    lock = threading.Lock()
    sequence = iter(range(1 << 62))
    started = time.monotonic()

    def worker(index: int) -> None:
        interval = threads / rate
        due = time.monotonic() + index * interval / threads
        while not stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            if now < due:
                stop.wait(min(due - now, 0.5))
                continue
            due = max(due + interval, now - 1.0)   # behind: catch up at most 1 s worth
            with lock:
                n = next(sequence)
                counters[0] += 1
            reason = _churn_once(base, n, rooms, (sources[n % len(sources)], 0))
            with lock:
                if reason is None:
                    counters[1] += 1
                else:
                    counters[2] += 1
                    failures[reason] = failures.get(reason, 0) + 1

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(max(0.0, deadline - time.monotonic()) + 30)
    elapsed = time.monotonic() - started
    queue.put({"attempted": counters[0], "ok": counters[1], "failed": counters[2],
               "failures": failures, "elapsed": elapsed,
               "rate": counters[0] / max(elapsed, 1e-9)})


# ---- hostile peers -------------------------------------------------------------------------

def _upgrade_request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


class HostilePeer:
    """One hostile connection, reopened when the server drops it."""

    def __init__(self, kind: str, host: str, port: int, source: str, rate: float) -> None:
        self.kind, self.host, self.port, self.source = kind, host, port, source
        self.rate = rate             # flooders: bytes per second at most
        self.credit = 0.0
        self.last_step = 0.0
        self.sock: Optional[socket.socket] = None
        self.poller = select.poll()
        self.reopen_at = 0.0
        self.opened_at = 0.0
        self.last_progress = 0.0
        self.opens = self.open_failures = self.cutoffs = 0
        self.bytes_sent = 0          # all connections together
        self.conn_bytes = 0          # the current connection
        self.max_conn_bytes = 0
        self.longest = 0.0           # seconds the longest connection lasted
        self.sent_slow = 0           # slowloris: head bytes sent on this connection
        if kind == "ping_flooder":
            chunk = client_frame(9, b"p" * 125)
        else:
            chunk = client_frame(2, b"x" * 16384)
        self.chunk = chunk * max(1, 65536 // len(chunk))

    # opening ------------------------------------------------------------------------------
    def open(self, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.source, 0))
            sock.settimeout(5.0)
            sock.connect((self.host, self.port))
            if self.kind != "slowloris":
                sock.sendall(_upgrade_request(self.host, self.port, "/echo"))
                head = b""
                while b"\r\n\r\n" not in head:   # the only bytes it ever reads
                    data = sock.recv(1)
                    if not data or len(head) > 8192:
                        raise ConnectionError("no 101 response")
                    head += data
                if not head.startswith(b"HTTP/1.1 101"):
                    raise ConnectionError(head.split(b"\r\n")[0].decode("latin-1"))
            sock.setblocking(False)
        except OSError:
            sock.close()
            self.open_failures += 1
            self.reopen_at = now + REOPEN_DELAY
            return
        self.sock = sock
        self.poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        self.opens += 1
        self.opened_at = self.last_progress = self.last_step = now
        self.credit = 0.0
        self.conn_bytes = self.sent_slow = 0

    def _dropped(self, now: float) -> None:
        assert self.sock is not None
        self.poller.unregister(self.sock)
        self.sock.close()
        self.sock = None
        self.cutoffs += 1
        self.longest = max(self.longest, now - self.opened_at)
        self.reopen_at = now + REOPEN_DELAY

    # one turn ----------------------------------------------------------------------------
    def step(self, now: float) -> None:
        if self.sock is None:
            if now >= self.reopen_at:
                self.open(now)
            return
        if self.poller.poll(0):          # the server closed its side (FIN, RST)
            self._dropped(now)
            return
        try:
            if self.kind == "slowloris":
                self._slow_byte(now)
            else:
                self._flood(now)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._dropped(now)

    def _flood(self, now: float) -> None:
        """Send what the socket takes, at most ``rate`` bytes a second (one turn's burst)."""
        self.credit = min(self.credit + (now - self.last_step) * self.rate, self.rate * 0.2)
        self.last_step = now
        while self.credit >= len(self.chunk):
            sent = self.sock.send(self.chunk)
            self.credit -= sent
            self.bytes_sent += sent
            self.conn_bytes += sent
            self.max_conn_bytes = max(self.max_conn_bytes, self.conn_bytes)
            self.last_progress = now
            if sent < len(self.chunk):
                return

    def _slow_byte(self, now: float) -> None:
        if now - self.last_progress < 1.0:
            return
        prefix = f"GET /echo HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n".encode()
        pad = b"X-Slow: .\r\n"           # header lines, and never the empty line that ends a head
        n = self.sent_slow
        byte = prefix[n:n + 1] if n < len(prefix) else pad[(n - len(prefix)) % len(pad):][:1]
        self.sock.send(byte)
        self.sent_slow += 1
        self.bytes_sent += 1
        self.last_progress = now

    def result(self, now: float) -> dict:
        held_for = now - self.opened_at if self.sock is not None else 0.0
        idle = now - self.last_progress if self.sock is not None else 0.0
        return {"kind": self.kind, "opens": self.opens, "open_failures": self.open_failures,
                "cut_off": self.cutoffs, "bytes_sent": self.bytes_sent,
                "max_bytes_one_connection": self.max_conn_bytes,
                "longest_connection_s": round(max(self.longest, held_for), 2),
                "open_at_end": self.sock is not None,
                "took_nothing_for_s": round(idle, 2) if self.kind != "slowloris" else None}

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def hostile_main(host: str, port: int, per_kind: int, source: str, rate: float,
                 deadline: float, stop, counters, queue) -> None:
    """Run ``per_kind`` peers of each hostile kind until ``stop`` or ``deadline``.

    ``rate``: bytes per second each flooder sends at most (while its socket takes them).
    """
    peers = [HostilePeer(kind, host, port, source, rate) for kind in HOSTILE_KINDS
             for _ in range(per_kind)]
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            for peer in peers:
                peer.step(now)
            counters[0] = sum(p.opens for p in peers)
            counters[1] = sum(p.cutoffs for p in peers)
            counters[2] = sum(p.bytes_sent for p in peers)
            stop.wait(TICK)
        now = time.monotonic()
        queue.put({"peers": [p.result(now) for p in peers]})
    finally:
        for peer in peers:
            peer.close()
