"""A Redis client on the server's own loop: one non-blocking socket, RESP3, hiredis.

No threads and no blocking calls: the connection is an
:class:`~wsframe.loop.eventloop.FdStream` like a WebSocket connection, so
commands leave through the loop's write path (corked per turn, queued only
for what the kernel does not take) and replies are read from the loop's
shared receive buffer into a ``hiredis.Reader`` (the C RESP parser that
redis-py uses). A slow or dead Redis never blocks the loop:

* connecting is non-blocking, bounded by ``connect_timeout``;
* a ``PING`` every ``health_interval`` seconds must be answered within the
  next interval, or the connection is dropped (a paused or unreachable Redis
  sends no RST);
* commands are refused (the call returns ``False``; a callback gets
  :class:`RedisUnavailable`) while there is no connection, and once
  ``max_queue`` bytes wait to be written;
* after a loss it reconnects with exponential backoff and full jitter and
  calls ``on_ready`` again, so its user can subscribe again.

``HELLO 3`` (with ``AUTH`` from the URL) selects RESP3, in which pub/sub
messages arrive as *push* frames on the same connection as command replies
(Redis >= 6), so one connection serves both. Pushes go to ``on_push``;
replies go, in order, to the callback given with their command.
"""
from __future__ import annotations

import logging
import os
import socket
import ssl as ssl_module
import time
from collections import deque
from typing import Callable, Optional, Sequence

from wsframe.errors import WebSocketError
from wsframe.loop.connect import Backoff, connect_error, is_ip_address, open_tcp, resolver
from wsframe.loop.eventloop import FdStream, Loop, TimerHandle
from wsframe.loop.tls import TlsState, TlsStream
from wsframe.backplane.address import RedisAddress

try:
    import hiredis
except ImportError:  # pragma: no cover - the backplane's extra: pip install 'wsframe[redis]'
    hiredis = None

__all__ = ["RedisClient", "RedisError", "RedisUnavailable", "require_hiredis"]

log = logging.getLogger("wsframe.backplane")

MAX_QUEUE = 32 << 20   # bytes of commands waiting for the socket before new ones are refused
_NOT_YET = object()    # hiredis: a reply is not complete yet (False/None are RESP values)
_END = b"wsframe:end-of-batch"   # PING's echo that closes a push_batch (see there)


class RedisError(WebSocketError):
    """Redis answered a command with an error (``-ERR ...``)."""


class RedisUnavailable(RedisError):
    """No connection to Redis now (down, connecting, or too much already queued)."""


def require_hiredis() -> None:
    """Raise a clear ImportError where the backplane's extra is not installed."""
    if hiredis is None:
        raise ImportError("the Redis backplane parses RESP with hiredis: "
                          "pip install 'wsframe[redis]' (or pip install hiredis)")


Reply = object
Callback = Callable[[Reply], None]


class RedisClient:
    """One Redis connection on ``loop``, kept up by itself (see the module docstring)."""

    def __init__(self, loop: Loop, address: RedisAddress, *,
                 on_push: Callable[[list], None],
                 on_ready: Optional[Callable[[], None]] = None,
                 on_lost: Optional[Callable[[str], None]] = None,
                 connect_timeout: float = 2.0, health_interval: float = 5.0,
                 backoff: Backoff = Backoff(initial=0.1, max_delay=5.0),
                 max_queue: int = MAX_QUEUE,
                 ssl: Optional[ssl_module.SSLContext] = None) -> None:
        require_hiredis()
        self.loop = loop
        self.address = address
        self.on_push = on_push
        self.on_ready = on_ready
        self.on_lost = on_lost
        self.connect_timeout = connect_timeout
        self.health_interval = health_interval
        self.backoff = backoff
        self.max_queue = max_queue
        self.ssl = ssl if ssl is not None or not address.tls else \
            ssl_module.create_default_context()
        self.state = "idle"        # idle, connecting, ready, down, closed
        self.last_error: Optional[str] = None
        self.connects = 0          # connections that reached "ready"
        self.attempt = 0           # consecutive failures (backoff)
        self.server_version: Optional[str] = None
        self.server_mode: Optional[str] = None   # HELLO's "mode": standalone, cluster...
        self._link: Optional[_Link] = None
        self._timer: Optional[TimerHandle] = None
        self._ping_due = False     # a health PING is unanswered

    # ---- public -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def start(self) -> None:
        """Connect (once; later losses reconnect by themselves)."""
        if self.state == "idle":
            self._connect()

    def command(self, *args, callback: Optional[Callback] = None) -> bool:
        """Send one command; ``callback(reply)`` gets its reply (a :class:`RedisError` for
        an error reply or a lost connection). False (and the callback at once, with
        :class:`RedisUnavailable`) when it cannot be sent now."""
        link = self._link
        if self.state != "ready" or link is None or link._out_size > self.max_queue:
            if callback is not None:
                callback(RedisUnavailable(f"redis {self.address}: {self.state}"))
            return False
        link.send(hiredis.pack_command(args), callback)
        return True

    def push_command(self, *args) -> bool:
        """Send a command whose answers come as push frames (SUBSCRIBE, UNSUBSCRIBE...)."""
        link = self._link
        if self.state != "ready" or link is None or link._out_size > self.max_queue:
            return False
        link.send(hiredis.pack_command(args), None, push=True)
        return True

    def push_batch(self, commands: Sequence[tuple], on_error: Callback) -> bool:
        """Send push-answered commands (SSUBSCRIBE, SUNSUBSCRIBE...) that may be refused.

        Their confirmations are push frames (to ``on_push``), but a refusal (``MOVED``,
        ``CROSSSLOT``, ``CLUSTERDOWN``, ``NOPERM``) is an ordinary error reply with
        nothing to tell which command it answers. So the batch ends with a
        ``PING`` whose echo closes it: every error reply before the echo goes to
        ``on_error`` (a :class:`RedisError`; :class:`RedisUnavailable` if the
        connection is lost first). False when nothing could be sent now."""
        link = self._link
        if self.state != "ready" or link is None or link._out_size > self.max_queue:
            return False
        link.pending.append(_Batch(on_error))
        link._write(b"".join(hiredis.pack_command(args) for args in commands)
                    + hiredis.pack_command((b"PING", _END)))
        return True

    @property
    def queued(self) -> int:
        """Bytes of commands not yet taken by the kernel."""
        return self._link._out_size if self._link is not None else 0

    def close(self) -> None:
        """Disconnect and stay disconnected: commands sent this turn are still
        written (one non-blocking try); callbacks still due get :class:`RedisUnavailable`."""
        was_ready = self.state == "ready"
        self.state = "closed"
        self._cancel_timer()
        link, self._link = self._link, None
        if link is not None:
            link.client = None
            if was_ready:
                link._flush()
            link._fail_pending(RedisUnavailable(f"redis {self.address}: closed"))
            link._close_fd()

    def stats(self) -> dict:
        return {"state": self.state, "url": str(self.address), "connects": self.connects,
                "queued_bytes": self.queued, "last_error": self.last_error,
                "server_version": self.server_version, "server_mode": self.server_mode}

    # ---- connecting ---------------------------------------------------------------

    def _connect(self) -> None:
        self._timer = None
        if self.state == "closed":
            return
        self.state = "connecting"
        address = self.address
        if address.unix_path:
            return self._open((socket.AF_UNIX, socket.SOCK_STREAM, 0, "", address.unix_path))
        if is_ip_address(address.host):
            return self._open(socket.getaddrinfo(address.host, address.port,
                                                 type=socket.SOCK_STREAM,
                                                 flags=socket.AI_NUMERICHOST)[0])
        # a name: getaddrinfo() may wait on DNS, so in a thread; the answer comes to the loop
        self._timer = self.loop.call_later(self.connect_timeout, self._failed,
                                           "resolve: timed out", None)
        future = resolver().submit(socket.getaddrinfo, address.host, address.port,
                                   type=socket.SOCK_STREAM)
        timer, loop = self._timer, self.loop

        def done(future) -> None:  # in the resolver thread
            try:
                loop.call_soon_threadsafe(self._resolved, future, timer)
            except RuntimeError:
                pass  # the loop is closed
        future.add_done_callback(done)

    def _resolved(self, future, timer: TimerHandle) -> None:
        if timer is not self._timer or self.state != "connecting":
            return  # timed out meanwhile, or closed
        self._cancel_timer()
        try:
            info = future.result()[0]
        except (OSError, IndexError) as exc:
            return self._failed(f"resolve {self.address.host}: {exc}", None)
        self._open(info)

    def _open(self, info: tuple) -> None:
        try:
            fd = open_tcp(info)
        except OSError as exc:
            return self._failed(f"connect: {exc}", None)
        link = _Link(self, fd) if self.ssl is None else _TlsLink(self, fd)
        self._link = link
        self.loop.add_stream(link)
        self.loop.want_write(fd, True)  # writable: the connect finished, one way or the other
        self._timer = self.loop.call_later(self.connect_timeout, self._failed,
                                           f"connect: timed out after {self.connect_timeout:g} s",
                                           link)

    def _session(self, link: "_Link") -> None:
        """TCP (and TLS) is up: HELLO 3 with AUTH, then SELECT."""
        address = self.address
        hello = ["HELLO", "3"]
        if address.password is not None:
            hello += ["AUTH", address.username or "default", address.password]
        link.send(hiredis.pack_command(tuple(hello)), self._hello_answered)
        if address.db:
            link.send(hiredis.pack_command(("SELECT", str(address.db))), self._selected)

    def _hello_answered(self, reply) -> None:
        if isinstance(reply, Exception):
            return self._failed(f"HELLO 3: {reply} (Redis >= 6 is needed)", self._link)
        if isinstance(reply, dict):
            version = reply.get(b"version")
            self.server_version = version.decode() if isinstance(version, bytes) else None
            mode = reply.get(b"mode")
            self.server_mode = mode.decode() if isinstance(mode, bytes) else None
        if not self.address.db:
            self._became_ready()

    def _selected(self, reply) -> None:
        if isinstance(reply, Exception):
            return self._failed(f"SELECT {self.address.db}: {reply}", self._link)
        self._became_ready()

    def _became_ready(self) -> None:
        self._cancel_timer()
        self.state = "ready"
        self.connects += 1
        self.last_error = None
        self._ready_at = time.monotonic()
        self._ping_due = False
        self._timer = self.loop.call_later(self.health_interval, self._health)
        log.info("backplane: connected to %s (redis %s)", self.address, self.server_version)
        if self.on_ready is not None:
            self._call(self.on_ready)

    def _health(self) -> None:
        """A PING per interval; the previous one still unanswered: the connection is dead."""
        self._timer = None
        link = self._link
        if self.state != "ready" or link is None:
            return
        if self._ping_due:
            return self._failed(f"no answer to PING within {self.health_interval:g} s", link)
        self._ping_due = True
        link.send(hiredis.pack_command(("PING",)), self._pong)
        self._timer = self.loop.call_later(self.health_interval, self._health)

    def _pong(self, reply) -> None:
        self._ping_due = False

    # ---- losing it ----------------------------------------------------------------

    def _failed(self, why: str, link: Optional["_Link"]) -> None:
        """An attempt or the connection failed: drop it, try again after a backoff."""
        if link is not None and link is not self._link:
            return  # an old connection's news
        self.last_error = why
        self._cancel_timer()
        self._link = None
        if link is not None:
            link.client = None  # its close must not call back
            link._fail_pending(RedisUnavailable(f"redis {self.address}: {why}"))
            link._close_fd()
        if self.state == "closed":
            return
        was_ready = self.state == "ready"
        self.state = "down"
        if was_ready:
            if time.monotonic() - self._ready_at >= self.backoff.reset_after:
                self.attempt = 0
            log.warning("backplane: lost %s: %s; reconnecting", self.address, why)
            if self.on_lost is not None:
                self._call(self.on_lost, why)
        delay = self.backoff.delay(self.attempt)
        self.attempt += 1
        self._timer = self.loop.call_later(delay, self._connect)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @staticmethod
    def _call(callback: Callable, *args) -> None:
        try:
            callback(*args)
        except Exception:  # a user's callback must not take the connection down
            log.exception("backplane callback %r failed", callback)


class _Link(FdStream):
    """One TCP connection to Redis: the loop's I/O, a hiredis reader, pending callbacks."""

    __slots__ = ("fd", "loop", "_out", "_out_size", "_seen", "_mark", "_io", "_pong",
                 "client", "reader", "pending", "close_tcp", "_tcp_pending")

    def __init__(self, client: RedisClient, fd: int) -> None:
        self.fd = fd
        self.loop = client.loop
        self._out = None
        self._out_size = 0
        self._seen = self._mark = 0
        self._io = 0
        self._pong = None
        self.client: Optional[RedisClient] = client
        self.reader = hiredis.Reader(notEnoughData=_NOT_YET)
        self.pending: deque = deque()   # callbacks (or None) of the replies still due
        self.close_tcp = False
        self._tcp_pending = True

    def send(self, command: bytes, callback: Optional[Callback], push: bool = False) -> None:
        if not push:
            self.pending.append(callback)
        self._write(command)

    def _high_water(self) -> int:
        return 1 << 62  # never pause reading Redis: pub/sub traffic must keep flowing

    # ---- the loop's side ----------------------------------------------------------

    def _on_writable(self) -> None:
        if self._tcp_pending:
            self._tcp_pending = False
            self.loop.want_write(self.fd, False)
            error = connect_error(self.fd)
            if error:
                return self._lose(f"connect: {os.strerror(error)}")
            return self._start()
        self._flush()

    def _start(self) -> None:
        self.client._session(self)

    def receive_data(self, data) -> None:
        reader = self.reader
        reader.feed(data)
        client = self.client
        while client is not None:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                return self._lose(f"protocol error: {exc}")
            if reply is _NOT_YET:
                return
            if isinstance(reply, hiredis.PushNotification):
                client._call(client.on_push, reply)
            elif self.pending and type(self.pending[0]) is _Batch:
                if isinstance(reply, hiredis.ReplyError):  # one of the batch was refused
                    client._call(self.pending[0].on_error, RedisError(str(reply)))
                elif reply == _END:
                    self.pending.popleft()
                else:
                    return self._lose(f"a reply inside a push batch: {reply!r:.80}")
            elif self.pending:
                callback = self.pending.popleft()
                if callback is not None:
                    if isinstance(reply, hiredis.ReplyError):
                        reply = RedisError(str(reply))
                    client._call(callback, reply)
            else:
                return self._lose(f"a reply nobody asked for: {reply!r:.80}")
            client = self.client  # a callback may have closed it

    def receive_eof(self) -> None:
        pass  # FdStream's hook; the fd's close comes next, and _transport_closed tells


    def _answer_ping(self, payload: bytes) -> None:  # FdStream's hook; no WebSocket here
        pass

    def _transport_closed(self) -> None:
        self._lose("connection closed")

    def _lose(self, why: str) -> None:
        client = self.client
        if client is not None:
            client._failed(why, self)
        elif self.fd >= 0:
            self._close_fd()

    def _fail_pending(self, error: Exception) -> None:
        pending, self.pending = self.pending, deque()
        for callback in pending:
            if type(callback) is _Batch:
                RedisClient._call(callback.on_error, error)
            elif callback is not None:
                RedisClient._call(callback, error)


class _Batch:
    """A push_batch's place among the replies due: its errors, then PING's echo."""

    __slots__ = ("on_error",)

    def __init__(self, on_error: Callback) -> None:
        self.on_error = on_error


class _TlsLink(TlsStream, _Link):
    """``rediss://``: TLS between the socket and RESP (see wsframe.loop.tls)."""

    __slots__ = ("_tls",)

    def _start(self) -> None:
        client = self.client
        self._tls = TlsState(client.ssl, server_side=False,
                             server_hostname=client.address.host)
        self._tls.handshake()  # the ClientHello; _tls_ready() continues
        self._send_ciphertext()

    def _tls_ready(self) -> None:
        self.client._session(self)
