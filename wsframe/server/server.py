"""The WebSocket server: routes, endpoints, heartbeats, backpressure, shutdown.

An :class:`Endpoint` holds the callbacks of one route (the browser's
``onopen`` / ``onmessage`` / ``onclose``, plus an upgrade hook) and serves
all of that route's connections; a connection (:class:`ServerConnection`) carries
only its protocol state, its fd and a ``data`` slot for the application::

    server = Server()

    @server.route("/track/{order_id}")
    class Track(Endpoint):
        def on_upgrade(self, request, params):
            if "token=" not in request.query:
                raise InvalidRequest(403, "missing token")

        def on_open(self, conn, request, params):
            conn.join(params["order_id"])

        def on_message(self, conn, message):
            for room in conn.rooms:
                room.broadcast(message)

    server.listen("127.0.0.1", 8765)
    server.serve_forever()
"""
from __future__ import annotations

import logging
import math
import signal
import socket
import ssl as ssl_module
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Union

from wsframe.codec.handshake import check_upgrade_request, is_upgrade_request, reject_response
from wsframe.codec.http import DEFAULT_MAX_HEAD_SIZE, Request, build_response
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.errors import InvalidRequest, PeerTimeout
from wsframe.loop.backpressure import Backpressure
from wsframe.loop.eventloop import Loop, fd_limits, raise_fd_limit, tune_malloc
from wsframe.loop.tls import TlsState, tls_class
from wsframe.sansio.handshake import accept_upgrade
from wsframe.sansio.protocol import CONNECTING, OPEN, Limits, Protocol
from wsframe.server.admission import RETRY_AFTER, Admission, PendingUpgrade
from wsframe.server.connection import Endpoint, ServerConnection
from wsframe.server.listener import Listener
from wsframe.server.rooms import Rooms
from wsframe.server.routing import Router

__all__ = ["Server", "ServerConnection", "Endpoint", "Heartbeat", "ServerSettings", "HttpResponse",
           "ServerStats"]

log = logging.getLogger("wsframe.server")






@dataclass(frozen=True)
class Heartbeat:
    """Ping a peer that has been silent for ``interval`` s; no Pong within ``timeout`` s: dead."""

    interval: float = 30.0   # the user's "ping every 30 s"
    timeout: float = 5.0     # "... no pong in 5 s -> dead"


@dataclass(frozen=True)
class ServerSettings:
    """Everything a server is configured with; one object shared by all connections."""

    limits: Limits = Limits()
    compression: Optional[DeflateSettings] = DeflateSettings()
    heartbeat: Optional[Heartbeat] = Heartbeat()
    backpressure: Backpressure = Backpressure()
    handshake_timeout: float = 10.0   # a request head must be complete by then (slow-loris bound)
    close_timeout: float = 5.0        # wait this long for the peer's Close / FIN, then drop it
    idle_timeout: Optional[float] = None  # close a connection silent this long (None: never)
    max_head_size: int = DEFAULT_MAX_HEAD_SIZE  # 16 KiB request head
    shutdown_timeout: float = 5.0     # graceful shutdown: how long 1001 closes may take
    tick_interval: float = 1.0        # the timer resolution of a loop the server makes itself
    # Process-wide changes, off for a library that may be embedded; ``wsframe serve`` turns both on.
    raise_fd_limit: bool = False      # soft RLIMIT_NOFILE up to the hard limit (see loop.raise_fd_limit)
    tune_malloc: bool = False         # see loop.tune_malloc: no page faults per large message
    accept_batch: int = 128           # accept() calls per readiness event
    origins: Optional[tuple[str, ...]] = None  # allowed Origin values (None: any); else 403
    max_connections: Optional[int] = None      # open WebSockets, server-wide; past it 503
    max_connections_per_address: Optional[int] = None  # per client IP address; past it 503
    upgrade_timeout: float = 10.0     # how long a deferred on_upgrade decision may take (503)
    backlog: int = 4096               # listen() queue; the kernel caps it at net.core.somaxconn


@dataclass(frozen=True)
class HttpResponse:
    """A plain HTTP response for a non-upgrade request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class ServerStats:
    """Counters for the rare events (the hot path counts nothing)."""

    __slots__ = ("accepted", "open", "upgraded", "rejected", "http_requests",
                 "heartbeat_timeouts", "handshake_timeouts", "dropped", "slow_closed",
                 "accept_paused", "handler_errors", "bad_origin", "over_capacity",
                 "deferred", "deferred_timeouts")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class Server:
    """A WebSocket server on a :class:`~wsframe.loop.eventloop.Loop` (one is made if not given)."""

    def __init__(self, *, loop: Optional[Loop] = None, default: Optional[Endpoint] = None,
                 settings: Optional[ServerSettings] = None, backplane: object = None,
                 **overrides) -> None:
        settings = settings or ServerSettings()
        if overrides:
            settings = ServerSettings(**{**settings.__dict__, **overrides})
        self.settings = settings
        self._max_queue = settings.backpressure.max_queue  # read on every send
        self.loop = loop or Loop(tick_interval=settings.tick_interval)
        self.default = default
        self.routes: Router[Endpoint] = Router()
        self.http_routes: dict[str, Callable[[Request], HttpResponse]] = {}
        self.rooms = Rooms()
        #: Called with this server after :meth:`use_rooms` or :meth:`use_backplane`
        #: (the delivery layer binds to the rooms and backplane in use).
        self.setup_watchers: list[Callable[["Server"], None]] = []
        self.stats = ServerStats()
        self.admission = Admission(
            origins=settings.origins, max_connections=settings.max_connections,
            max_connections_per_address=settings.max_connections_per_address)
        self.fd_limits = raise_fd_limit() if settings.raise_fd_limit else fd_limits()
        if settings.tune_malloc:
            tune_malloc()
        self._conns: set[ServerConnection] = set()
        self._listeners: list[Listener] = []
        self._stopping = False
        self._ticks = {}
        self._configure_ticks()
        self.loop.on_tick(self._sweep)
        self.backplane = None
        self.gateway = None   # gateway mode's Redis side (wsframe.server.gateway), if any
        if backplane is not None:
            self.use_backplane(backplane)

    def use_rooms(self, rooms: Rooms) -> None:
        """Serve with ``rooms`` instead of this process's own (a worker's rooms that span
        workers), before any connection joins one; ``setup_watchers`` hear of it."""
        self.rooms = rooms
        for watcher in self.setup_watchers:
            watcher(self)

    def use_backplane(self, backplane: object, **options) -> None:
        """Share rooms with other servers: ``backplane`` is a Redis URL
        (``redis://[user:password@]host:port/db``, ``rediss://`` for TLS; ``options``
        go to :class:`~wsframe.backplane.pubsub.RedisBackplane`, e.g. ``prefix=``),
        a Redis Cluster URL (``redis+cluster://host:port[,host:port...]``: sharded
        pub/sub, :class:`~wsframe.backplane.cluster.RedisClusterBackplane`), or
        a backplane object. It connects when the server starts listening (or a
        worker starts serving), not before."""
        if isinstance(backplane, str):
            from wsframe.backplane import backplane_for
            backplane = backplane_for(self.loop, backplane, **options)
        self.backplane = backplane
        self.rooms.attach(backplane)
        for watcher in self.setup_watchers:
            watcher(self)

    def _configure_ticks(self) -> None:
        settings = self.settings
        interval = self.loop.tick_interval  # the loop's ticks, whoever made the loop

        def ticks(seconds: Optional[float]) -> Optional[int]:
            return None if seconds is None else max(1, math.ceil(seconds / interval - 1e-9))
        heartbeat = settings.heartbeat
        self._ticks = {
            "interval": ticks(heartbeat.interval) if heartbeat else None,
            "timeout": ticks(heartbeat.timeout) if heartbeat else None,
            "handshake": ticks(settings.handshake_timeout),
            "close": ticks(settings.close_timeout),
            "idle": ticks(settings.idle_timeout),
        }

    # ---- configuration ---------------------------------------------------------------

    def route(self, pattern: str, endpoint: Optional[Endpoint] = None, *,
              partition: object = None):
        """Serve WebSocket connections on ``pattern`` with ``endpoint``.

        Also a class decorator: ``@server.route("/chat") class Chat(Endpoint): ...``.
        ``partition`` (used with worker processes, see :mod:`wsframe.cluster`): the
        connection's partition key, a template over the route's parameters
        (``"order:{order_id}"``) or a callable ``(request, params) -> str | None``.
        """
        if endpoint is not None:
            self.routes.add(pattern, endpoint, partition)
            return endpoint

        def register(cls):
            self.routes.add(pattern, cls() if isinstance(cls, type) else cls, partition)
            return cls
        return register

    def publish(self, room: str, data: Union[str, bytes], *, text: Optional[bool] = None,
                compress: Optional[bool] = None) -> None:
        """Broadcast to the members of ``room`` -- safe from any thread.

        The message is checked and copied now (``TypeError`` for anything but
        ``str`` or bytes-like), then handed to the loop, which sends it as
        :meth:`Room.broadcast <wsframe.server.rooms.Room.broadcast>` does, in
        the order of the calls (per calling thread). A room with no members
        gets nothing; ``RuntimeError`` once the loop is closed. On the loop's
        own thread, ``room.broadcast()`` is the direct way.
        """
        if data.__class__ is not str:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"a message is str or bytes-like, not {type(data).__name__}")
            data = bytes(data)  # the caller may reuse its buffer at once
        self.loop.call_soon_threadsafe(self._publish, room, data, text, compress)

    def _publish(self, name: str, data, text: Optional[bool], compress: Optional[bool]) -> None:
        self.rooms.publish(name, data, text=text, compress=compress)

    def http(self, path: str, handler: Callable[[Request], HttpResponse]) -> None:
        """Answer plain (non-upgrade) GET and HEAD requests for ``path`` (others: 405)."""
        self.http_routes[path] = handler

    def listen(self, host: str = "127.0.0.1", port: int = 8765, *,
               ssl: Optional[ssl_module.SSLContext] = None, reuse_port: bool = False) -> tuple:
        """Open a listening socket; returns the address actually bound (port 0 picks one).

        ``ssl``: TLS for the connections accepted on this socket (``wss://``);
        the server's other listening sockets may serve plain ``ws://``.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
        sock.bind((host, port))
        sock.listen(self.settings.backlog)
        sock.setblocking(False)
        self._listeners.append(Listener(self, sock, ssl))
        if self.backplane is not None:
            self.backplane.start()
        return sock.getsockname()[:2]

    @property
    def connections(self) -> set:
        """The connections with an open fd: in the handshake, open or closing (a copy)."""
        return set(self._conns)

    # ---- running ------------------------------------------------------------------

    def serve_forever(self, *, signals: bool = True) -> None:
        """Run the loop until :meth:`shutdown` completes (SIGTERM/SIGINT start it)."""
        if signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.loop.add_signal_handler(signum, self.shutdown)
        self.loop.run()

    def shutdown(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Graceful shutdown: stop accepting, close every connection with ``code``,
        wait up to ``shutdown_timeout`` s, drop the rest, stop the loop."""
        if self._stopping:
            return
        self._stopping = True
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
        if self.gateway is not None:
            self.gateway.flush()   # no flow control any more: read what the clients still send
        for conn in list(self._conns):
            if conn.state is OPEN:
                conn.close(code, reason)
            elif conn.state is CONNECTING:
                conn._close_fd()
        self.loop.call_later(self.settings.shutdown_timeout, self._finish_shutdown)
        self._check_shutdown()

    def _check_shutdown(self) -> None:
        if self._stopping and not self._conns:
            self._stop_loop()

    def _finish_shutdown(self) -> None:
        for conn in list(self._conns):
            conn._abort()
        self._stop_loop()

    def _stop_loop(self) -> None:
        # The backplane goes last: what the closes sent through it this turn (a
        # gateway's close events, and what waited in its backlogs) is still written.
        if self.gateway is not None:
            self.gateway.flush()
        if self.backplane is not None:
            self.backplane.close()
        self.loop.stop()

    # ---- connections ----------------------------------------------------------------

    #: The class of new connections; a subclass may observe them (``wsframe serve --trace``).
    conn_class = ServerConnection

    def adopt(self, fd: int, data: bytes = b"",
              ssl: Optional[ssl_module.SSLContext] = None) -> ServerConnection:
        """Serve an accepted, non-blocking TCP socket (a raw fd, now the server's).

        ``data``: bytes already read from it (a request head read by whoever
        accepted it, pipelined frames included); they are processed first.
        """
        conn = _tls_conn(self, fd, ssl) if ssl else self.conn_class(self, fd)
        self._conns.add(conn)
        self.stats.accepted += 1
        self.loop.add_stream(conn)
        if data:
            conn.receive_data(data)
            if conn.close_tcp:
                conn._finish()
        return conn

    def _forget(self, conn: ServerConnection) -> None:
        self._conns.discard(conn)
        self.admission.closed(conn)
        if self._stopping:
            self._check_shutdown()

    def _handshake(self, conn: ServerConnection, data) -> None:
        """Read the request head; answer HTTP, refuse, or upgrade (now or once decided)."""
        try:
            request = conn._head.read(data)
            if request is None:
                return
            if not is_upgrade_request(request):
                return self._answer_http(conn, request)
            match = self.routes.match(request.path)
            if match is None and self.default is None:
                raise InvalidRequest(404, f"no WebSocket endpoint at {request.path}")
            endpoint, params = match if match is not None else (self.default, {})
            offer = check_upgrade_request(request)
            self._admit(conn, offer)
            upgrade = PendingUpgrade(endpoint, params, request, offer, conn._head.rest)
            decision = endpoint.on_upgrade(request, params)
        except InvalidRequest as exc:
            return self._refuse(conn, exc.status, exc.reason, exc.headers)
        except Exception:  # a bug in an upgrade hook: answer 500, keep serving
            log.exception("upgrade hook failed for %s", conn)
            self.stats.handler_errors += 1
            return self._refuse(conn, 500, "internal error")
        if hasattr(decision, "add_done_callback"):
            return self._defer(conn, upgrade, decision)
        self._upgrade(conn, upgrade)

    def _admit(self, conn: ServerConnection, offer) -> None:
        """Origin allow-list (403) and connection caps (503), before application code."""
        admission = self.admission
        try:
            admission.check_origin(offer.origin)
        except InvalidRequest:
            self.stats.bad_origin += 1
            raise
        try:
            address = conn.remote_address[0] if admission.counts_addresses else None
            admission.check_capacity(self.stats.open, address)
        except InvalidRequest:
            self.stats.over_capacity += 1
            raise

    def _defer(self, conn: ServerConnection, upgrade: PendingUpgrade, decision) -> None:
        """``on_upgrade`` answered with a future: wait for it (bounded), serving others."""
        self.stats.deferred += 1
        conn._head = upgrade                   # CONNECTING, no longer reading a head
        conn._mark = None                      # its own timer below, not the head timeout
        self.loop.want_read(conn.fd, False)    # pipelined frames wait in the kernel
        upgrade.timer = self.loop.call_later(self.settings.upgrade_timeout,
                                             self._decision_timed_out, conn, upgrade)
        loop = self.loop

        def done(future) -> None:  # in whatever thread completed the future
            try:
                loop.call_soon_threadsafe(self._decided, conn, upgrade, future)
            except RuntimeError:
                pass  # the loop is closed: nobody waits any more
        decision.add_done_callback(done)

    def _decided(self, conn: ServerConnection, upgrade: PendingUpgrade, future) -> None:
        if conn._head is not upgrade or conn.fd < 0:
            return  # timed out meanwhile, or the client left
        upgrade.timer.cancel()
        self.loop.want_read(conn.fd, True)
        try:
            future.result()
        except InvalidRequest as exc:
            self._refuse(conn, exc.status, exc.reason, exc.headers)
        except Exception:
            log.exception("deferred upgrade decision failed for %s", conn)
            self.stats.handler_errors += 1
            self._refuse(conn, 500, "internal error")
        else:
            self._upgrade(conn, upgrade)
        if conn.close_tcp:
            conn._finish()

    def _decision_timed_out(self, conn: ServerConnection, upgrade: PendingUpgrade) -> None:
        if conn._head is upgrade and conn.fd >= 0:
            self.stats.deferred_timeouts += 1
            self.loop.want_read(conn.fd, True)
            self._refuse(conn, 503, "the upgrade decision timed out", RETRY_AFTER)
            conn._finish()

    def _upgrade(self, conn: ServerConnection, upgrade: PendingUpgrade) -> None:
        """Answer 101 (§4.2.2) and open the connection."""
        endpoint, request, params = upgrade.endpoint, upgrade.request, upgrade.params
        try:
            subprotocol = endpoint.select_subprotocol(upgrade.offer.subprotocols)
        except Exception:
            log.exception("select_subprotocol failed for %s", conn)
            self.stats.handler_errors += 1
            return self._refuse(conn, 500, "internal error")
        response, conn.deflate = accept_upgrade(upgrade.offer, subprotocol=subprotocol,
                                                compression=self.settings.compression)
        conn._write(response)
        conn._head = None
        conn.endpoint = endpoint
        conn.subprotocol = subprotocol
        conn._transition("handshake accepted")
        conn._start_parser()
        conn._mark = None
        self.stats.upgraded += 1
        self.stats.open += 1
        if self.admission.counts_addresses:
            address = conn.remote_address
            self.admission.opened(conn, address[0] if address else None)
        try:
            endpoint.on_open(conn, request, params)
        except Exception:
            conn._handler_failed("on_open")
        if upgrade.rest and conn.state is OPEN:
            Protocol.receive_data(conn, upgrade.rest)

    def _refuse(self, conn: ServerConnection, status: int, reason: str,
                headers: Iterable[tuple[str, str]] = ()) -> None:
        self.stats.rejected += 1
        self._respond(conn, reject_response(status, reason, headers))

    def _respond(self, conn: ServerConnection, response: bytes) -> None:
        conn._write(response)
        conn._head = None
        conn._transition("handshake refused")  # CLOSED: close_tcp is now true

    def _answer_http(self, conn: ServerConnection, request: Request) -> None:
        self.stats.http_requests += 1
        handler = self.http_routes.get(request.path)
        if handler is None:
            if self.routes.match(request.path) or self.default is not None:
                return self._refuse(conn, 426, "this is a WebSocket endpoint",
                                    (("Sec-WebSocket-Version", "13"),))
            return self._refuse(conn, 404, f"nothing at {request.path}")
        if request.method not in ("GET", "HEAD"):
            return self._refuse(conn, 405, "only GET and HEAD", (("Allow", "GET, HEAD"),))
        try:
            response = handler(request)
        except Exception:
            log.exception("HTTP handler for %s failed", request.path)
            response = HttpResponse(500, b"internal error\n")
        body = b"" if request.method == "HEAD" else response.body
        headers = [("Content-Type", response.content_type), ("Connection", "close"),
                   *response.headers]
        raw = build_response(response.status, headers, response.body)
        if request.method == "HEAD":
            raw = raw[:len(raw) - len(response.body)] + body
        self._respond(conn, raw)

    # ---- timers: one sweep per tick over every connection ----------------------------

    def _sweep(self) -> None:
        tick = self.loop.tick
        t = self._ticks
        interval, timeout = t["interval"], t["timeout"]
        for conn in list(self._conns):
            state = conn.state
            mark = conn._mark
            if state is OPEN:
                if mark is not None:
                    if conn._seen > mark:
                        conn._mark = None  # heard from since the ping: alive
                    elif tick - mark >= timeout:
                        self.stats.heartbeat_timeouts += 1
                        conn.fail(PeerTimeout(
                            f"heartbeat timeout: no pong within {self.settings.heartbeat.timeout:g} s"))
                        conn._abort()
                elif interval is not None and tick - conn._seen >= interval:
                    conn.ping()
                    conn._mark = tick
                if t["idle"] is not None and tick - conn._seen >= t["idle"] and conn.state is OPEN:
                    conn.close(1001, "idle timeout")
            elif state is CONNECTING:
                if mark is not None and tick - mark >= t["handshake"]:
                    self.stats.handshake_timeouts += 1
                    conn._close_fd()
            elif tick - (mark or 0) >= t["close"]:  # CLOSING, or CLOSED and half-closed
                conn._abort()

    def __repr__(self) -> str:
        return f"<Server connections={len(self._conns)} rooms={len(self.rooms)}>"


def _tls_conn(server: Server, fd: int, context: ssl_module.SSLContext) -> ServerConnection:
    """A connection of the server's connection class with TLS between fd and protocol."""
    conn = tls_class(server.conn_class)(server, fd)
    conn._tls = TlsState(context, server_side=True)
    return conn
