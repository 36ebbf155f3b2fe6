"""The WebSocket server: routes, endpoints, heartbeats, backpressure, shutdown.

An :class:`Endpoint` holds the callbacks of one route (the browser's
``onopen`` / ``onmessage`` / ``onclose``, plus an upgrade hook) and serves
all of that route's connections; a connection (:class:`ServerConn`) carries
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

import errno
import logging
import math
import os
import signal
import socket
import ssl as ssl_module
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence, Union

from .backpressure import Backpressure, SendStatus
from .codec import server_frame
from .frames import OP_BINARY, OP_TEXT, server_frame_header
from .errors import InvalidRequest, InvalidState, PeerTimeout, PolicyViolation
from .handshake import (
    accept_response, check_upgrade_request, is_upgrade_request, read_request, reject_response,
)
from .http import DEFAULT_MAX_HEAD_SIZE, HeadReader, HeadTooLarge, Request, build_response
from .loop import IO_WANT_DRAIN, FdStream, Loop, is_fd_exhausted, raise_fd_limit, tune_malloc
from .permessage_deflate import DeflateSettings, server_negotiate
from .protocol import CONNECTING, OPEN, Limits, Protocol
from .rooms import Room, Rooms
from .routing import Router

__all__ = ["Server", "ServerConn", "Endpoint", "Heartbeat", "ServerSettings", "HttpResponse",
           "ServerStats"]

log = logging.getLogger("wsframe.server")

#: Messages at least this long are written as header + payload (no copy into a frame).
SPLIT_FRAMES_FROM = 16 * 1024



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
    tick: float = 1.0                 # timer resolution: one sweep over all connections per tick
    tune_malloc: bool = True          # see loop.tune_malloc: no page faults per large message
    accept_batch: int = 128           # accept() calls per readiness event
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
                 "accept_paused", "handler_errors")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class Endpoint:
    """The callbacks of one route. Override what you need; every hook is optional.

    One endpoint object serves every connection of its route, so keep
    per-connection state in ``conn.data``, not on the endpoint.
    """

    #: Subprotocols this endpoint speaks, in order of preference.
    subprotocols: Sequence[str] = ()

    def on_upgrade(self, request: Request, params: dict) -> None:
        """Vet the upgrade request (auth token, ``Origin``); raise
        :class:`~wsframe.errors.InvalidRequest` (e.g. 403) to refuse it."""

    def select_subprotocol(self, offered: Sequence[str]) -> Optional[str]:
        """Pick one of the client's subprotocols (default: our first preference it offers)."""
        for name in self.subprotocols:
            if name in offered:
                return name
        return None

    def on_open(self, conn: "ServerConn", request: Request, params: dict) -> None:
        """The connection is open (``params`` come from the route pattern)."""

    def on_message(self, conn: "ServerConn", message: Union[str, bytes]) -> None:
        """A message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_close(self, conn: "ServerConn", code: int, reason: str) -> None:
        """The connection closed; ``code`` says how (1006: without a closing handshake)."""

    def on_drain(self, conn: "ServerConn") -> None:
        """The queue of a connection that refused a "wait" send is empty again."""

    def on_fragment(self, conn: "ServerConn", data: bytes, is_text: bool, first: bool,
                    last: bool) -> None:
        """A piece of a message, when the server's ``Limits.stream_messages`` is set
        (instead of :meth:`on_message`). Text pieces are UTF-8 valid so far."""


class ServerConn(FdStream, Protocol):
    """One server-side connection: protocol state, an fd, and ``data`` for the application."""

    __slots__ = ("fd", "loop", "server", "endpoint", "data", "_rooms", "_out", "_out_size",
                 "_seen", "_mark", "_io", "_head", "_text")

    def __init__(self, server: "Server", fd: int) -> None:
        Protocol.__init__(self, False, limits=server.settings.limits, state=CONNECTING)
        self.fd = fd
        self.loop = server.loop
        self.server = server
        self.endpoint: Optional[Endpoint] = None
        self.data = None            # the application's per-connection state
        self._rooms = None          # None, a Room, or a set of Rooms
        self._out = None            # corked / queued output (see FdStream)
        self._out_size = 0
        self._seen = self.loop.tick  # tick of the last bytes received
        self._mark = self.loop.tick  # tick a timer started: accept, ping, close
        self._io = 0
        self._head: Optional[HeadReader] = HeadReader(server.settings.max_head_size)
        self._text = None           # (str, its UTF-8 bytes) of the message being handled

    # ---- receiving ----------------------------------------------------------------

    def _handshake_data(self, data) -> None:
        self.server._handshake(self, data)

    def _on_message(self, data: bytes, is_text: bool) -> None:
        if is_text:
            message = data.decode()
            if data.__class__ is bytes:  # while the handler runs, send(message) reuses data
                self._text = (message, data)
        else:
            message = data
        try:
            self.endpoint.on_message(self, message)
        except Exception:
            self._handler_failed("on_message")
        self._text = None

    def _on_fragment(self, data: bytes, is_text: bool, first: bool, last: bool) -> None:
        try:
            self.endpoint.on_fragment(self, data, is_text, first, last)
        except Exception:
            self._handler_failed("on_fragment")

    def _on_pong(self, data: bytes) -> None:
        if self.state is OPEN:
            self._mark = None  # the heartbeat was answered

    def _on_closed(self) -> None:
        self._mark = self.loop.tick  # the close timeout starts now
        self._leave_rooms()
        if self.endpoint is not None:
            self.server.stats.open -= 1
            try:
                self.endpoint.on_close(self, self.close_code, self.close_reason)
            except Exception:
                log.exception("on_close failed")

    def _handler_failed(self, hook: str) -> None:
        log.exception("%s failed; closing with 1011", hook)
        self.server.stats.handler_errors += 1
        if self.state is OPEN:
            self.close(1011, "internal error")

    # ---- sending ------------------------------------------------------------------

    def send(self, data, *, text: Optional[bool] = None, compress: Optional[bool] = None,
             policy: Optional[str] = None) -> SendStatus:
        """Send one message (``str``: text, bytes-like: binary); see :mod:`~wsframe.backpressure`."""
        if self.state is not OPEN:
            raise InvalidState(self.state, "send a message")
        if self._rooms is not None:
            self._catch_up_rooms()
        if data.__class__ is str:
            text = self._text  # relaying the text being handled: its bytes, not an encode
            payload = text[1] if text is not None and text[0] is data else data.encode()
            opcode = OP_TEXT
        else:
            payload, opcode = data, (OP_TEXT if text else OP_BINARY)
        if self.deflate is None or compress is False:
            if len(payload) >= SPLIT_FRAMES_FROM:  # header and payload leave in one writev
                return self._send_split(opcode, payload, policy)
            frame = server_frame(opcode, payload)
        else:
            frame = self.encode(payload, opcode, compress)
        out = self._out  # send_frame() and FdStream._write(), inlined: the hot path
        if out is None and self._direct_writes:
            self._out = [frame]
            self._out_size = len(frame)
            if self.fd not in self.loop._writing:
                self.loop._dirty.append(self)
            return SendStatus.OK
        queued = self._out_size
        if queued and queued + len(frame) > self.server._max_queue:
            return self._over_limit(policy or self.server.settings.backpressure.policy, queued)
        self._write(frame)
        return SendStatus.OK

    def _send_split(self, opcode: int, payload, policy: Optional[str]) -> SendStatus:
        """A large uncompressed message: its header, then the payload object itself."""
        if payload.__class__ is not bytes:
            payload = bytes(payload)  # our own immutable copy of a caller's buffer
        queued = self._out_size
        if queued and queued + len(payload) > self.server._max_queue:
            return self._over_limit(policy or self.server.settings.backpressure.policy, queued)
        self._write(server_frame_header(opcode, len(payload)))
        self._write(payload)
        return SendStatus.OK

    def send_frame(self, frame: bytes, policy: Optional[str] = None) -> SendStatus:
        """Queue an already encoded frame (a broadcast), applying the backpressure policy."""
        if self.state is not OPEN:
            return SendStatus.CLOSED
        queued = self._out_size
        if queued and queued + len(frame) > self.server._max_queue:
            return self._over_limit(policy or self.server.settings.backpressure.policy, queued)
        self._write(frame)
        return SendStatus.OK

    def _catch_up_rooms(self) -> None:
        """A room batch pending this turn goes out before a direct send (order)."""
        rooms = self._rooms
        if rooms.__class__ is Room:
            if rooms._batch:
                rooms._catch_up(self)
        else:
            for room in rooms:
                if room._batch:
                    room._catch_up(self)

    def _over_limit(self, policy: str, queued: int) -> SendStatus:
        stats = self.server.stats
        if policy == "drop":
            stats.dropped += 1
            return SendStatus.DROPPED
        if policy == "wait":
            self._io |= IO_WANT_DRAIN
            return SendStatus.BLOCKED
        stats.slow_closed += 1
        self._out = None  # give up on what it did not read: the Close goes out first
        self._out_size = 0
        self.fail(PolicyViolation(f"slow consumer: {queued} bytes queued"))
        self._abort()
        return SendStatus.CLOSED

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the peer has ``close_timeout`` s to answer."""
        Protocol.close(self, code, reason)
        self._mark = self.loop.tick

    @property
    def buffered(self) -> int:
        """Bytes queued for this peer in user space."""
        return self._out_size

    # ---- rooms --------------------------------------------------------------------

    def join(self, name: Union[str, Room]) -> Room:
        """Join a room of this server (by name or object)."""
        room = self.server.rooms.get(name) if isinstance(name, str) else name
        room.join(self)
        return room

    def leave(self, name: Union[str, Room]) -> None:
        room = self.server.rooms.find(name) if isinstance(name, str) else name
        if room is not None:
            room.leave(self)

    @property
    def rooms(self) -> tuple[Room, ...]:
        rooms = self._rooms
        if rooms is None:
            return ()
        return (rooms,) if isinstance(rooms, Room) else tuple(rooms)

    def _add_room(self, room: Room) -> None:
        rooms = self._rooms
        if rooms is None:
            self._rooms = room
        elif isinstance(rooms, Room):
            if rooms is not room:
                self._rooms = {rooms, room}
        else:
            rooms.add(room)

    def _remove_room(self, room: Room) -> None:
        rooms = self._rooms
        if rooms is room:
            self._rooms = None
        elif isinstance(rooms, set):
            rooms.discard(room)
            if len(rooms) == 1:
                self._rooms = next(iter(rooms))

    def _leave_rooms(self) -> None:
        for room in self.rooms:
            room._discard(self)
        self._rooms = None

    # ---- closing the transport (see FdStream) -------------------------------------------

    def _on_drain(self) -> None:
        if self.state is OPEN and self.endpoint is not None:
            try:
                self.endpoint.on_drain(self)
            except Exception:
                self._handler_failed("on_drain")

    def _transport_closed(self) -> None:
        self._head = None
        self._release()
        self.server._forget(self)

    @property
    def remote_address(self) -> Optional[tuple]:
        """The peer's address, asked of the kernel (not stored: it costs memory)."""
        if self.fd < 0:
            return None
        sock = socket.socket(fileno=self.fd)
        try:
            return sock.getpeername()
        except OSError:
            return None
        finally:
            sock.detach()

    def __repr__(self) -> str:
        return f"<ServerConn fd={self.fd} {self.state.name}>"


class _Listener:
    """A listening socket accepting in batches; pauses on EMFILE instead of spinning."""

    def __init__(self, server: "Server", sock: socket.socket,
                 ssl: Optional[ssl_module.SSLContext]) -> None:
        self.server = server
        self.sock = sock
        self.ssl = ssl              # TLS for the connections of this listener, or None
        self.paused = False
        server.loop.add_reader(sock.fileno(), self._on_accept)

    def _on_accept(self, _fd: int) -> None:
        server = self.server
        accept = self.sock._accept
        for _ in range(server.settings.accept_batch):
            try:
                fd, _addr = accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if is_fd_exhausted(exc):
                    self._pause(exc)
                elif exc.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    log.warning("accept failed: %s", exc)
                return
            os.set_blocking(fd, False)
            server._adopt(fd, self.ssl)

    def _pause(self, exc: OSError) -> None:
        """Out of file descriptors: keep serving, stop accepting for one tick."""
        stats = self.server.stats
        if not stats.accept_paused:
            log.warning("accept: %s (%d connections open); pausing accept, "
                        "existing connections keep being served", exc.strerror, stats.open)
        stats.accept_paused += 1
        self.paused = True
        self.server.loop.remove_reader(self.sock.fileno())
        self.server.loop.call_later(self.server.settings.tick, self._resume)

    def _resume(self) -> None:
        if self.paused and self.sock.fileno() >= 0:
            self.paused = False
            self.server.loop.add_reader(self.sock.fileno(), self._on_accept)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            if not self.paused:
                self.server.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class Server:
    """A WebSocket server on a :class:`~wsframe.loop.Loop` (one is made if not given)."""

    def __init__(self, *, loop: Optional[Loop] = None, default: Optional[Endpoint] = None,
                 settings: Optional[ServerSettings] = None, **overrides) -> None:
        settings = settings or ServerSettings()
        if overrides:
            settings = ServerSettings(**{**settings.__dict__, **overrides})
        self.settings = settings
        self._max_queue = settings.backpressure.max_queue  # read on every send
        self.loop = loop or Loop(tick=settings.tick)
        self.default = default
        self.routes: Router[Endpoint] = Router()
        self.http_routes: dict[str, Callable[[Request], HttpResponse]] = {}
        self.rooms = Rooms()
        self.stats = ServerStats()
        self.fd_limits = raise_fd_limit()
        if settings.tune_malloc:
            tune_malloc()
        self._conns: set[ServerConn] = set()
        self._listeners: list[_Listener] = []
        self._stopping = False
        self._ticks = {}
        self._configure_ticks()
        self.loop.on_tick(self._sweep)

    def _configure_ticks(self) -> None:
        settings = self.settings

        def ticks(seconds: Optional[float]) -> Optional[int]:
            return None if seconds is None else max(1, math.ceil(seconds / settings.tick - 1e-9))
        heartbeat = settings.heartbeat
        self._ticks = {
            "interval": ticks(heartbeat.interval) if heartbeat else None,
            "timeout": ticks(heartbeat.timeout) if heartbeat else None,
            "handshake": ticks(settings.handshake_timeout),
            "close": ticks(settings.close_timeout),
            "idle": ticks(settings.idle_timeout),
        }

    # ---- configuration ---------------------------------------------------------------

    def route(self, pattern: str, endpoint: Optional[Endpoint] = None):
        """Serve WebSocket connections on ``pattern`` with ``endpoint``.

        Also a class decorator: ``@server.route("/chat") class Chat(Endpoint): ...``.
        """
        if endpoint is not None:
            self.routes.add(pattern, endpoint)
            return endpoint

        def register(cls):
            self.routes.add(pattern, cls() if isinstance(cls, type) else cls)
            return cls
        return register

    def http(self, path: str, handler: Callable[[Request], HttpResponse]) -> None:
        """Answer plain (non-upgrade) GET requests for ``path``."""
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
        self._listeners.append(_Listener(self, sock, ssl))
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
        for conn in list(self._conns):
            if conn.state is OPEN:
                conn.close(code, reason)
            elif conn.state is CONNECTING:
                conn._close_fd()
        self.loop.call_later(self.settings.shutdown_timeout, self._finish_shutdown)
        self._check_shutdown()

    def _check_shutdown(self) -> None:
        if self._stopping and not self._conns:
            self.loop.stop()

    def _finish_shutdown(self) -> None:
        for conn in list(self._conns):
            conn._abort()
        self.loop.stop()

    # ---- connections ----------------------------------------------------------------

    #: The class of new connections; a subclass may observe them (``wsframe serve --trace``).
    conn_class = ServerConn

    def _adopt(self, fd: int, ssl: Optional[ssl_module.SSLContext] = None) -> None:
        conn = _tls_conn(self, fd, ssl) if ssl else self.conn_class(self, fd)
        self._conns.add(conn)
        self.stats.accepted += 1
        self.loop.add_stream(conn)

    def _forget(self, conn: ServerConn) -> None:
        self._conns.discard(conn)
        if self._stopping:
            self._check_shutdown()

    def _handshake(self, conn: ServerConn, data) -> None:
        """Read the request head; answer HTTP, refuse, or upgrade."""
        try:
            head = conn._head.feed(data)
            if head is None:
                why = conn._head.bad_start()
                if why is not None:
                    raise InvalidRequest(400, why)
                return
            rest = conn._head.rest
            request = read_request(head)
            if not is_upgrade_request(request):
                return self._answer_http(conn, request)
            match = self.routes.match(request.path)
            if match is None and self.default is None:
                raise InvalidRequest(404, f"no WebSocket endpoint at {request.path}")
            endpoint, params = match if match is not None else (self.default, {})
            offer = check_upgrade_request(request)
            endpoint.on_upgrade(request, params)
            subprotocol = endpoint.select_subprotocol(offer.subprotocols)
        except HeadTooLarge as exc:
            return self._refuse(conn, 431, str(exc))
        except InvalidRequest as exc:
            return self._refuse(conn, exc.status, exc.reason, exc.headers)
        except Exception:  # a bug in an upgrade hook: answer 500, keep serving
            log.exception("upgrade hook failed for %s", conn)
            self.stats.handler_errors += 1
            return self._refuse(conn, 500, "internal error")
        extensions = None
        if self.settings.compression is not None:
            negotiated = server_negotiate(offer.extensions, self.settings.compression)
            if negotiated is not None:
                extensions, conn.deflate = negotiated
        conn._write(accept_response(offer.key, subprotocol=subprotocol, extensions=extensions))
        conn._head = None
        conn.endpoint = endpoint
        conn._transition("handshake accepted")
        conn._start_parser()
        conn._mark = None
        self.stats.upgraded += 1
        self.stats.open += 1
        try:
            endpoint.on_open(conn, request, params)
        except Exception:
            conn._handler_failed("on_open")
        if rest and conn.state is OPEN:
            Protocol.receive_data(conn, rest)

    def _refuse(self, conn: ServerConn, status: int, reason: str,
                headers: Iterable[tuple[str, str]] = ()) -> None:
        self.stats.rejected += 1
        self._respond(conn, reject_response(status, reason, headers))

    def _respond(self, conn: ServerConn, response: bytes) -> None:
        conn._write(response)
        conn._head = None
        conn._transition("handshake refused")  # CLOSED: close_tcp is now true

    def _answer_http(self, conn: ServerConn, request: Request) -> None:
        self.stats.http_requests += 1
        handler = self.http_routes.get(request.path)
        if handler is None:
            if self.routes.match(request.path) or self.default is not None:
                return self._refuse(conn, 426, "this is a WebSocket endpoint",
                                    (("Sec-WebSocket-Version", "13"),))
            return self._refuse(conn, 404, f"nothing at {request.path}")
        if request.method not in ("GET", "HEAD"):
            return self._refuse(conn, 405, "only GET", (("Allow", "GET, HEAD"),))
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
                if tick - mark >= t["handshake"]:
                    self.stats.handshake_timeouts += 1
                    conn._close_fd()
            elif tick - (mark or 0) >= t["close"]:  # CLOSING, or CLOSED and half-closed
                conn._abort()

    def __repr__(self) -> str:
        return f"<Server connections={len(self._conns)} rooms={len(self.rooms)}>"


def _tls_conn(server: Server, fd: int, context: ssl_module.SSLContext) -> ServerConn:
    from .tls import TlsServerConn
    return TlsServerConn(server, fd, context, server.conn_class)
