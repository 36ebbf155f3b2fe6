"""A loop-driven client that reconnects by itself, with exponential backoff and jitter.

The browser pattern of a live tracking page, from Python::

    loop = Loop()
    client = ReconnectingClient("ws://127.0.0.1:8765/room/order-42", loop=loop,
                    on_open=lambda c: print("open"),
                    on_message=lambda c, message: print(message),
                    on_close=lambda c, code, reason: print("closed", code))
    client.start()
    loop.run()

After a connection ends (or fails to open) the client waits
``random.uniform(0, min(max_delay, initial * factor ** attempt))`` seconds
("full jitter": many clients dropped at once do not come back at once) and
tries again. ``attempt`` counts consecutive failures and is reset once a
connection has stayed open ``reset_after`` seconds. It gives up after
``max_attempts`` consecutive failures (never, by default), when the server
refuses the upgrade with a 4xx status other than 408/429 (retrying would
not help), or when :meth:`ReconnectingClient.close` is called.
"""
from __future__ import annotations

import logging
import os
import socket
import ssl as ssl_module
import time
from concurrent.futures import Future
from typing import Callable, Optional, Sequence, Union

from wsframe.client.blocking import parse_url
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.errors import InvalidHandshake, PeerTimeout
from wsframe.loop.backpressure import SendStatus
from wsframe.loop.connect import Backoff, connect_error, is_ip_address, open_tcp, resolver
from wsframe.loop.eventloop import FdStream, Loop, TimerHandle
from wsframe.sansio.handshake import ClientHandshake
from wsframe.sansio.protocol import CONNECTING, OPEN, Limits, Protocol

__all__ = ["ReconnectingClient", "ClientConnection"]

log = logging.getLogger("wsframe.client")


class ClientConnection(FdStream, Protocol):
    """One client connection on the loop (TCP connect, handshake, then frames)."""

    __slots__ = ("fd", "loop", "owner", "_out", "_out_size", "_seen", "_mark", "_io",
                 "_pong", "_head", "_tcp_pending")

    def __init__(self, owner: "ReconnectingClient", fd: int) -> None:
        Protocol.__init__(self, True, limits=owner.limits, state=CONNECTING)
        self.fd = fd
        self.loop = owner.loop
        self.owner = owner
        self._out = None
        self._out_size = 0
        self._seen = self.loop.tick
        self._mark = None           # True while a heartbeat ping awaits its Pong
        self._io = 0
        self._pong = None
        self._head: Optional[ClientHandshake] = ClientHandshake(
            owner.url.host_header, owner.url.target, subprotocols=owner.subprotocols,
            origin=owner.origin, headers=owner.headers, compression=owner.compression)
        self._tcp_pending = True

    def _on_writable(self) -> None:
        if self._tcp_pending:
            return self._tcp_connected()
        self._flush()

    def _tcp_connected(self) -> None:
        error = connect_error(self.fd)
        self._tcp_pending = False
        self.loop.want_write(self.fd, False)
        if error:
            self.owner._failed(f"connect: {os.strerror(error)}")
            return self._close_fd()
        self._start_session()

    def _start_session(self) -> None:
        """TCP is up (and TLS, if any): send the upgrade request (§4.1)."""
        self._write(self._head.request)

    def _handshake_data(self, data) -> None:
        """The server's response head, then (OPEN) frames go to Protocol.receive_data."""
        try:
            accepted = self._head.read(data)
        except InvalidHandshake as exc:
            self._head = None
            self._transition("handshake refused")
            self.owner._failed(str(exc), getattr(exc, "status", None))
            return self._close_fd()
        if accepted is None:
            return
        self._head = None
        self.deflate = accepted.agreement
        self._transition("handshake accepted")
        self._start_parser()
        self.owner._opened(self, accepted.subprotocol)
        if accepted.rest and self.state is OPEN:
            Protocol.receive_data(self, accepted.rest)

    def _on_message(self, data: bytes, is_text: bool) -> None:
        self.owner._message(data.decode() if is_text else data)

    def _on_text(self, text: str, raw) -> None:
        self.owner._message(text)

    def _on_pong(self, data: bytes) -> None:
        self._mark = None

    def _on_closed(self) -> None:
        if self.owner._conn is self and self._head is None:
            self.owner._ended(self)

    def _transport_closed(self) -> None:
        self._release()
        self.owner._gone(self)


class ReconnectingClient:
    """A reconnecting WebSocket client driven by a :class:`~wsframe.loop.eventloop.Loop`."""

    def __init__(self, url: str, *, loop: Loop,
                 on_open: Optional[Callable[["ReconnectingClient"], None]] = None,
                 on_message: Optional[Callable[["ReconnectingClient", Union[str, bytes]], None]] = None,
                 on_close: Optional[Callable[["ReconnectingClient", int, str], None]] = None,
                 on_give_up: Optional[Callable[["ReconnectingClient", str], None]] = None,
                 reconnect: Optional[Backoff] = Backoff(),
                 subprotocols: Sequence[str] = (), origin: Optional[str] = None,
                 headers: Sequence[tuple[str, str]] = (),
                 compression: Optional[DeflateSettings] = DeflateSettings(),
                 limits: Limits = Limits(), ssl: Optional[ssl_module.SSLContext] = None,
                 connect_timeout: float = 10.0, ping_interval: Optional[float] = 20.0,
                 ping_timeout: float = 10.0, close_timeout: float = 5.0) -> None:
        self.url = parse_url(url)
        self.loop = loop
        self.on_open, self.on_message, self.on_close = on_open, on_message, on_close
        self.on_give_up = on_give_up
        self.backoff = reconnect
        self.subprotocols = tuple(subprotocols)
        self.origin = origin
        self.headers = tuple(headers)
        self.compression = compression
        self.limits = limits
        self.ssl = (ssl or ssl_module.create_default_context()) if self.url.secure else None
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout  # how long the server may take to close TCP
        self.subprotocol: Optional[str] = None
        self.attempt = 0            # consecutive failures
        self.connections = 0        # successful opens so far
        self.stopped = False
        self.last_error: Optional[str] = None
        self._conn: Optional[ClientConnection] = None
        self._opened_at = 0.0
        self._timer: Optional[TimerHandle] = None
        self._resolving: Optional[object] = None  # the attempt whose host name is resolving

    # ---- public API ----------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._conn is not None and self._conn.state is OPEN

    def start(self) -> None:
        """Connect now (and again after every disconnection)."""
        self.stopped = False
        self._connect()

    def send(self, message: Union[str, bytes]) -> SendStatus:
        """Send a message; ``SendStatus.CLOSED`` while disconnected (nothing is queued)."""
        if not self.is_open:
            return SendStatus.CLOSED
        self._conn.send(message)
        return SendStatus.OK

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close and stop reconnecting."""
        self.stopped = True
        self._cancel_timer()
        conn = self._conn
        if conn is not None:
            if conn.state is OPEN:
                conn.close(code, reason)
                self._timer = self.loop.call_later(self.close_timeout, conn._abort)
            else:
                conn._close_fd()

    # ---- connection lifecycle --------------------------------------------------------

    def _connect(self) -> None:
        self._timer = None
        if self.stopped:
            return
        host, port = self.url.host, self.url.port
        if is_ip_address(host):
            return self._connect_to(socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)[0])
        # getaddrinfo() may wait seconds on DNS: resolve in a thread, come back on the loop.
        self._resolving = attempt = object()
        self._timer = self.loop.call_later(self.connect_timeout, self._resolve_timed_out, attempt)
        future = resolver().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        loop = self.loop

        def done(future: Future) -> None:  # in the resolver thread
            try:
                loop.call_soon_threadsafe(self._resolved, attempt, future)
            except (OSError, RuntimeError, ValueError):
                pass  # the loop is closed: nobody is waiting any more
        future.add_done_callback(done)

    def _resolved(self, attempt: object, future: Future) -> None:
        if attempt is not self._resolving:
            return  # timed out meanwhile
        self._resolving = None
        self._cancel_timer()
        if self.stopped:
            return
        try:
            address_info = future.result()[0]
        except (OSError, IndexError) as exc:
            self._failed(f"resolve {self.url.host}: {exc}")
            return self._schedule()
        self._connect_to(address_info)

    def _resolve_timed_out(self, attempt: object) -> None:
        if attempt is self._resolving:
            self._resolving = None
            self._timer = None
            self._failed(f"resolve {self.url.host}: timed out after {self.connect_timeout:g} s")
            self._schedule()

    def _connect_to(self, address_info: tuple) -> None:
        try:
            fd = open_tcp(address_info)
        except OSError as exc:
            self._failed(f"connect: {exc}")
            return self._schedule()
        conn = self._make_conn(fd)
        self._conn = conn
        self.loop.add_stream(conn)
        self.loop.want_write(fd, True)
        self._timer = self.loop.call_later(self.connect_timeout, self._connect_timed_out, conn)

    #: The class of new connections; a subclass may observe them (``wsframe connect --trace``).
    conn_class = ClientConnection

    def _make_conn(self, fd: int) -> ClientConnection:
        if self.ssl is None:
            return self.conn_class(self, fd)
        from wsframe.loop.tls import TlsState, tls_class

        conn = tls_class(_tls_client_base(self.conn_class))(self, fd)
        conn._tls = TlsState(self.ssl, server_side=False, server_hostname=self.url.host)
        return conn

    def _connect_timed_out(self, conn: ClientConnection) -> None:
        if conn is self._conn and conn.state is CONNECTING:
            self._failed("timed out opening the connection")
            conn._close_fd()

    def _opened(self, conn: ClientConnection, subprotocol: Optional[str]) -> None:
        self._cancel_timer()
        self.subprotocol = subprotocol
        self.connections += 1
        self._opened_at = time.monotonic()
        self.last_error = None
        if self.ping_interval:
            self._timer = self.loop.call_later(self.ping_interval, self._heartbeat, conn)
        if self.on_open:
            self._call(self.on_open, self)

    def _heartbeat(self, conn: ClientConnection) -> None:
        """Ping the server; no Pong within ``ping_timeout`` s means it is gone."""
        if conn is not self._conn or conn.state is not OPEN:
            return
        conn.ping()
        conn._mark = True  # cleared by the Pong
        self._timer = self.loop.call_later(self.ping_timeout, self._heartbeat_check, conn)

    def _heartbeat_check(self, conn: ClientConnection) -> None:
        if conn is not self._conn or conn.state is not OPEN:
            return
        if conn._mark is not None:
            conn.fail(PeerTimeout(f"no pong within {self.ping_timeout:g} s"))
            return conn._abort()
        self._timer = self.loop.call_later(
            max(self.ping_interval - self.ping_timeout, 0.1), self._heartbeat, conn)

    def _message(self, message: Union[str, bytes]) -> None:
        if self.on_message:
            self._call(self.on_message, self, message)

    def _ended(self, conn: ClientConnection) -> None:
        """An open connection closed."""
        if time.monotonic() - self._opened_at >= (self.backoff.reset_after if self.backoff else 0):
            self.attempt = 0
        if conn.fd >= 0 and not conn.close_tcp:
            # §7.1.1: after the closing handshake the server closes TCP first -- but a
            # server that never does must not keep this client (and its reconnect) waiting.
            self._cancel_timer()
            self._timer = self.loop.call_later(self.close_timeout, conn._abort)
        if self.on_close:
            self._call(self.on_close, self, conn.close_code or 1006, conn.close_reason)

    def _failed(self, error: str, status: Optional[int] = None) -> None:
        """A connection attempt failed before opening."""
        self.last_error = error
        log.info("connection to %s failed: %s", self.url.host_header, error)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            self._give_up(f"server refused the upgrade: {error}")

    def _gone(self, conn: ClientConnection) -> None:
        """The connection's fd is closed: try again later (unless stopped)."""
        if conn is not self._conn:
            return
        self._conn = None
        self._cancel_timer()
        self._schedule()

    def _schedule(self) -> None:
        if self.stopped or self.backoff is None:
            return
        if self.backoff.max_attempts is not None and self.attempt >= self.backoff.max_attempts:
            return self._give_up(f"gave up after {self.attempt} attempts: {self.last_error}")
        delay = self.backoff.delay(self.attempt)
        self.attempt += 1
        self._timer = self.loop.call_later(delay, self._connect)

    def _give_up(self, why: str) -> None:
        if self.stopped:
            return
        self.stopped = True
        self._cancel_timer()
        if self.on_give_up:
            self._call(self.on_give_up, self, why)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @staticmethod
    def _call(callback: Callable, *args) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("client callback %r failed", callback)


_tls_bases: dict[type, type] = {}


def _tls_client_base(base: type) -> type:
    """``base`` with the TLS handshake between TCP connect and the upgrade request."""
    cls = _tls_bases.get(base)
    if cls is None:
        def _start_session(self) -> None:
            if self._tls.ready:
                return base._start_session(self)
            self._tls.handshake()  # the ClientHello; _tls_ready() continues
            self._send_ciphertext()

        def _tls_ready(self) -> None:
            base._start_session(self)
        cls = _tls_bases[base] = type(f"{base.__name__}TlsSession", (base,), {
            "__slots__": (), "_start_session": _start_session, "_tls_ready": _tls_ready})
    return cls
