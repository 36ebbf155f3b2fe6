"""Gateway mode: the server only holds connections; backends do the work, through Redis.

A message from a client is not handled in the server: it is appended to a
Redis Stream of its route, and backends in any language read it with a
consumer group, then answer through pub/sub, to a room or to one connection.
Open and close events go into the same stream, so a backend knows who is
there::

    server = Server(backplane="redis://127.0.0.1:6379/0")
    gateway = Gateway(server, maxlen=100_000)
    server.route("/track/{order_id}", gateway.endpoint("track", room="order:{order_id}"))

or ``wsframe serve --gateway --redis URL`` (routes ``/room/{name}`` and any
other path; see :func:`wsframe.server.apps.install_gateway_app`).

**The stream** of a route named ``R`` is ``wsframe:in:R`` (the prefix is
``stream_prefix``), written with ``XADD <key> MAXLEN ~ <maxlen> * <fields>``:
Redis keeps about the newest ``maxlen`` entries (``~``: it trims whole
internal nodes, so the length may exceed ``maxlen`` by up to one node,
``stream-node-max-entries``, 100 by default). Entries older than that are
trimmed whether or not a backend has read them: size ``maxlen`` for the
longest backend outage to ride out. Every entry has, in this order:

==============  ==========================================================
``type``        ``open``, ``text``, ``binary`` or ``close``
``conn``        the connection's id, ``<origin>.<serial>``: unique across
                processes (``origin`` is the process's backplane id)
``route``       the route's name
``room``        the room the connection is in (absent if the route has none)
``param:<k>``   each route parameter (``/track/{order_id}``: ``param:order_id``)
``data``        ``text`` and ``binary``: the message (text is UTF-8, §5.6)
``path``        ``open``: the request path; ``query``: its query string
``code``        ``close``: the close code (1006: no closing handshake,
                §7.1.5); ``reason``: the reason
==============  ==========================================================

**Answers** go through pub/sub, nothing else (see
:mod:`wsframe.backplane.envelope`): to a room, ``PUBLISH wsframe:room:<room>
<message>`` reaches its members on every server; to one connection,
``PUBLISH wsframe:conn:<origin> "\\x00conn=<id>\\n<message>"``: one channel
per server process (the id up to its last dot), the connection named in the
envelope. ``close=<code>`` in that envelope closes the connection.

**Flow control.** No call waits for Redis: an ``XADD`` is written with the
loop's write path and its reply handled when it comes. While more than
``pause_reading_at`` bytes of entries (1 MiB) wait for Redis's replies, new
entries wait in their connection's backlog and that connection is not read
any more (TCP holds its client back). Once half of that is answered, the
backlogs are sent, connection by connection in the order they began to
wait, and each connection whose backlog is out is read again. A backlog
normally holds what one read brought in (the loop reads up to 256 KiB at a
time), so a fast client costs memory in proportion to its read, not to its
speed; Redis is sent about what it answers, so its connection stays free
for pub/sub and the health ``PING``.

**Faults.** A message that cannot be appended is never dropped silently: it
is counted (``append_failed``) and its connection closed with **1013 Try
Again Later** (IANA WebSocket Close Code Number Registry, established by
RFC 6455 §11.7; §7.4.1 defines 1000-1011 and 1015), so the client knows to
reconnect and send again; the rest of what it sent meanwhile is counted
(``dropped_after_1013``), not appended, so a backend sees no gap in the
middle of a connection's messages. That happens when Redis is down or the
connection to it is lost before the reply (the entry may then have been
appended or not: a backend that must not see a message twice dedupes), when
Redis answers with an error (e.g. ``OOM`` at ``maxmemory``), and when the
backlogs together would pass ``max_backlog`` (64 MiB; ``append_refused``
too: the queue to Redis is full). While Redis is not connected,
upgrades are refused with 503 and ``Retry-After`` (no connection a backend
could not hear of). A close event that cannot be appended is counted
(``close_events_lost``; the connection is gone already).
"""
from __future__ import annotations

import logging
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Callable, Optional, Union

from wsframe.backplane.envelope import BadEnvelope, decode
from wsframe.backplane.pubsub import RedisBackplane
from wsframe.backplane.redis import RedisError, RedisUnavailable
from wsframe.codec.close import TRY_AGAIN_LATER, is_sendable_code
from wsframe.codec.http import Request
from wsframe.errors import InvalidRequest
from wsframe.loop.eventloop import IO_NOT_READING
from wsframe.sansio.protocol import OPEN
from wsframe.server.admission import RETRY_AFTER
from wsframe.server.connection import Endpoint, ServerConnection

if TYPE_CHECKING:
    from wsframe.server.server import Server

__all__ = ["Gateway", "GatewayEndpoint", "DEFAULT_MAXLEN", "STREAM_PREFIX", "CONN_PREFIX"]

log = logging.getLogger("wsframe.gateway")

DEFAULT_MAXLEN = 100_000          # entries kept per route stream (about)
STREAM_PREFIX = "wsframe:in:"     # + the route's name
CONN_PREFIX = "wsframe:conn:"     # + the process's origin: its connections' channel
PAUSE_READING_AT = 1 << 20        # bytes sent to Redis, unanswered: past it, entries wait
MAX_BACKLOG = 64 << 20            # bytes of entries waiting: past it, 1013
_ARG = 8                          # RESP bytes around one argument: "$<length>\r\n...\r\n"

Room = Union[str, Callable[[Request, dict], Optional[str]], None]


class Gateway:
    """The Redis side of gateway mode for one server process (see the module docstring).

    ``server`` must have a backplane (``Server(backplane=URL)``); its Redis
    connection carries the appends, and its subscriptions the answers.
    """

    def __init__(self, server: "Server", *, maxlen: int = DEFAULT_MAXLEN,
                 stream_prefix: str = STREAM_PREFIX, conn_prefix: str = CONN_PREFIX,
                 pause_reading_at: int = PAUSE_READING_AT,
                 max_backlog: int = MAX_BACKLOG) -> None:
        backplane = server.backplane
        if not isinstance(backplane, RedisBackplane):
            raise ValueError("gateway mode needs a backplane on one Redis: Server(backplane="
                             "'redis://...') (not a Redis Cluster's redis+cluster://, yet)")
        if maxlen < 1:
            raise ValueError(f"maxlen is at least 1, not {maxlen}")
        self.server = server
        self.backplane = backplane
        self.client = backplane.client
        self.maxlen = maxlen
        self.stream_prefix = stream_prefix
        self.pause_reading_at = pause_reading_at
        self.max_backlog = max_backlog
        self.in_flight = 0      # bytes of entries sent, their replies still due
        self.backlog = 0        # bytes of entries waiting to be sent
        self._waiting: dict[ServerConnection, None] = {}   # with a backlog, in order; not read
        self._draining = False
        self._closing = False   # flush() was called: the server is shutting down
        self.origin: str = backplane.origin
        self.channel = (conn_prefix + self.origin).encode("ascii")
        self.conns: dict[str, ServerConnection] = {}   # id -> open connection
        self._serial = 0
        self._maxlen = str(maxlen).encode("ascii")
        self.counts = dict.fromkeys((
            "appended", "append_failed", "append_refused", "closed_1013",
            "close_events_lost", "to_conn", "to_conn_unknown", "to_conn_malformed",
            "closed_by_backend", "refused_upgrades", "paused_reading",
            "dropped_after_1013", "unconfirmed_at_shutdown"), 0)
        backplane.listen(self.channel, self._to_connection)
        server.gateway = self   # for /health, here and in a worker's stats

    def endpoint(self, name: str, *, room: Room = None) -> "GatewayEndpoint":
        """An endpoint whose connections' messages go to the stream of route ``name``;
        ``room``: a template over the route's parameters (``"order:{order_id}"``) or
        ``(request, params) -> room or None``: the room each connection joins."""
        return GatewayEndpoint(self, name, room=room)

    def stream(self, name: str) -> bytes:
        """The stream key of route ``name``."""
        return (self.stream_prefix + name).encode("utf-8", "surrogatepass")

    def stats(self) -> dict:
        """For ``/health``."""
        return {"connections": len(self.conns), "in_flight_bytes": self.in_flight,
                "backlog_bytes": self.backlog, "backlog_connections": len(self._waiting),
                "channel": self.channel.decode(), "maxlen": self.maxlen, **self.counts}

    # ---- appending -------------------------------------------------------------------

    def _new_id(self) -> str:
        self._serial += 1
        return f"{self.origin}.{self._serial}"

    def append(self, conn: ServerConnection, key: bytes, fields: list, size: int, *,
               close_event: bool = False) -> bool:
        """``XADD key MAXLEN ~ maxlen * fields`` for ``conn`` (``size``: about the bytes
        it takes), now or, while too much waits for Redis, once its turn comes (``conn``
        is not read meanwhile). False when it cannot be taken: any failure, now or when
        Redis answers, is counted and closes ``conn`` with 1013 (``close_event``: the
        entry says it has closed; only counted)."""
        state = conn.data
        if state.backlog is None and self.in_flight <= self.pause_reading_at:
            return self._send(conn, key, fields, size, close_event)
        if self.backlog + size > self.max_backlog:
            self.counts["append_refused"] += 1
            self._failed(conn, close_event, "the queue to Redis is full")
            return False
        if state.backlog is None:   # its turn comes after those already waiting
            state.backlog = deque()
            self._waiting[conn] = None
            self.counts["paused_reading"] += 1
        if conn.fd >= 0:   # (again, if its own output's backpressure resumed it meanwhile)
            self.server.loop.want_read(conn.fd, False)
        state.backlog.append((key, fields, size, close_event))
        self.backlog += size
        return True

    def _send(self, conn: ServerConnection, key: bytes, fields: list, size: int,
              close_event: bool) -> bool:
        self.in_flight += size
        return self.client.command(b"XADD", key, b"MAXLEN", b"~", self._maxlen, b"*", *fields,
                                   callback=partial(self._appended, conn, size, close_event))

    def _appended(self, conn: ServerConnection, size: int, close_event: bool, reply) -> None:
        self.in_flight -= size
        if self._closing and isinstance(reply, RedisUnavailable):
            self.counts["unconfirmed_at_shutdown"] += 1   # written; the reply was not awaited
            return
        if isinstance(reply, RedisError):
            self._failed(conn, close_event, str(reply))
        else:
            self.counts["appended"] += 1
        if self._waiting and not self._draining and \
                self.in_flight <= self.pause_reading_at // 2:
            self._drain()

    def _drain(self) -> None:
        """Send what waits, connection by connection in the order they began to wait,
        while Redis keeps up; a connection whose entries are all sent is read again."""
        self._draining = True
        try:
            waiting = self._waiting
            while waiting and self.in_flight <= self.pause_reading_at:
                conn = next(iter(waiting))
                state = conn.data
                while state.backlog and self.in_flight <= self.pause_reading_at:
                    key, fields, size, close_event = state.backlog.popleft()
                    self.backlog -= size
                    self._send(conn, key, fields, size, close_event)  # may fail: see _failed
                if not state.backlog:
                    state.backlog = None
                    waiting.pop(conn, None)
                    self._resume(conn)
        finally:
            self._draining = False

    def flush(self) -> None:
        """Hold nothing back any more: send every waiting entry now, and read the
        paused connections again. The server calls this when it shuts down (what its
        connections still send is appended until they close) and once more just before
        the Redis connection closes (written with everything else pending, best effort;
        the replies are not awaited)."""
        self._closing = True
        self.pause_reading_at = 1 << 62
        self._drain()

    def _failed(self, conn: ServerConnection, close_event: bool, why: str) -> None:
        self.counts["append_failed"] += 1
        state = conn.data
        if close_event:  # the connection is gone already
            self.counts["close_events_lost"] += 1
            log.warning("gateway: the close event of %s was not appended: %s", state.id, why)
            return
        if state.failed:
            return
        state.failed = True   # nothing more of it goes to Redis: no gaps in what a backend sees
        self.counts["closed_1013"] += 1
        log.warning("gateway: closing %s with 1013: a message was not appended: %s",
                    state.id, why)
        backlog, state.backlog = state.backlog, None
        if backlog is not None:
            self._waiting.pop(conn, None)
            for _, _, size, close_event in backlog:
                self.backlog -= size
                self.counts["close_events_lost" if close_event else "dropped_after_1013"] += 1
        if conn.state is OPEN:
            conn.close(TRY_AGAIN_LATER, "try again later")
        self._resume(conn)   # to read its Close

    # ---- input backpressure: a connection with a backlog is not read ---------------------

    def _resume(self, conn: ServerConnection) -> None:
        # not one its own output backpressure holds (FdStream resumes that one itself)
        if conn.fd >= 0 and not conn._io & IO_NOT_READING:
            self.server.loop.want_read(conn.fd, True)

    # ---- answers to one connection ----------------------------------------------------

    def _to_connection(self, data: bytes) -> None:
        """A message on this process's channel: for the connection its envelope names."""
        try:
            message = decode(data)
        except BadEnvelope:
            message = None
        if message is None or message.conn is None:
            self.counts["to_conn_malformed"] += 1
            return
        conn = self.conns.get(message.conn)
        if conn is None or conn.state is not OPEN:
            self.counts["to_conn_unknown"] += 1   # gone already, or never here
            return
        if message.close is not None:
            code = message.close
            reason = message.payload.decode("utf-8", "replace")
            if not is_sendable_code(code) or len(reason.encode()) > 123:
                self.counts["to_conn_malformed"] += 1   # §7.4, §5.5.1
                return
            self.counts["closed_by_backend"] += 1
            conn.close(code, reason)
            return
        self.counts["to_conn"] += 1
        conn.send(message.payload, text=message.text)


class GatewayEndpoint(Endpoint):
    """A route in gateway mode: opens, messages and closes go to the route's stream.

    The connection's ``data`` slot holds its gateway state; subclasses may
    vet upgrades in :meth:`on_upgrade` (call this one too).
    """

    def __init__(self, gateway: Gateway, name: str, *, room: Room = None) -> None:
        self.gateway = gateway
        self.name = name
        self.key = gateway.stream(name)
        self.room = room
        self._names: dict[str, bytes] = {}   # route parameter -> its field name, shared

    def on_upgrade(self, request: Request, params: dict) -> None:
        """Refuse (503, Retry-After) while Redis is not connected."""
        if not self.gateway.client.ready:
            self.gateway.counts["refused_upgrades"] += 1
            raise InvalidRequest(503, "the backends' queue (Redis) is not reachable",
                                 RETRY_AFTER)

    def room_of(self, request: Request, params: dict) -> Optional[str]:
        """The room a new connection joins (see :meth:`Gateway.endpoint`)."""
        room = self.room
        if room is None or isinstance(room, str):
            return room.format(**params) if room is not None else None
        return room(request, params)

    def on_open(self, conn: ServerConnection, request: Request, params: dict) -> None:
        """Give the connection its id, join its room, append the ``open`` entry."""
        gateway = self.gateway
        conn_id = gateway._new_id()
        fields = [b"conn", conn_id, b"route", self.name]
        room = self.room_of(request, params)
        if room is not None:
            room = conn.join(room).name   # the room's own str: one copy, not one per member
            fields += (b"room", room)
        names = self._names
        for key, value in params.items():
            name = names.get(key)
            if name is None:
                name = names[key] = ("param:" + key).encode("utf-8", "surrogatepass")
            fields += (name, room if value == room else value)
        state = conn.data = _State(conn_id, tuple(fields))
        gateway.conns[conn_id] = conn
        gateway.append(conn, self.key, [b"type", b"open", *fields, b"path", request.path,
                                        b"query", request.query],
                       state.size + len(request.target))

    def on_message(self, conn: ServerConnection, message: Union[str, bytes]) -> None:
        """Append a ``text`` or ``binary`` entry; nothing else happens here."""
        state = conn.data
        if state.failed:   # closing with 1013: the client sends it again after reconnecting
            self.gateway.counts["dropped_after_1013"] += 1
            return
        if message.__class__ is str:
            kind = b"text"
            raw = conn._text   # (the str, its UTF-8 bytes) while this handler runs
            size = len(raw[1]) if raw is not None and raw[0] is message else len(message) * 4
        else:
            kind, size = b"binary", len(message)
        self.gateway.append(conn, self.key, [b"type", kind, *state.fields, b"data", message],
                            state.size + size)

    def on_close(self, conn: ServerConnection, code: int, reason: str) -> None:
        """Append the ``close`` entry, with the code and reason, and forget the id."""
        state = conn.data
        if state is None:
            return
        gateway = self.gateway
        gateway.conns.pop(state.id, None)
        gateway.append(conn, self.key, [b"type", b"close", *state.fields, b"code", str(code),
                                        b"reason", reason], state.size + len(reason),
                       close_event=True)


class _State:
    """A gateway connection's id, the fields every entry of it carries, whether an
    entry of it failed (it is closing with 1013), and its entries waiting to be sent."""

    __slots__ = ("id", "fields", "size", "failed", "backlog")

    def __init__(self, conn_id: str, fields: tuple) -> None:
        self.id = conn_id
        self.fields = fields
        # the RESP bytes of the XADD but its data, about: 6 arguments before the fields,
        # type and kind, data's name, and these fields (ASCII names; values as they are)
        self.size = 48 + _ARG * (len(fields) + 9) + sum(len(field) for field in fields)
        self.failed = False
        self.backlog: Optional[deque] = None   # entries waiting for their turn (see append)
