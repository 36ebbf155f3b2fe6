"""Reliable delivery on a server: acks, dedupe, per-room offsets, history and resume.

::

    server = Server()
    delivery = Delivery(server)

    class Track:
        def on_open(self, conn, request, params):
            delivery.join(conn, f"order:{params['order_id']}")

        def on_message(self, conn, message):        # {"id": "msg_123", "action": ...}
            if message.get("action") == "contact_driver":
                notify_driver(message)               # returning acks it: {"ack": "msg_123"}

    server.route("/track/{order_id}", delivery.endpoint(Track()))
    delivery.publish("order:42", {"lat": 52.5, "lon": 13.4})   # offset, history, fan-out

Connections that negotiate the ``wsframe.v1`` subprotocol get the protocol
of :mod:`wsframe.delivery.wire` (docs/protocol.md). Others on the same route
are plain WebSocket clients: the app's hooks see ``str`` / ``bytes`` as
usual and a publication reaches them as its data, JSON text.

*Client to server.* A message with an ``id`` is acknowledged once the app
has taken it: when ``on_message`` returns, or, if it returns :data:`LATER`,
when the app calls :meth:`Delivery.ack`. An id already seen in the session
(within the last ``dedupe_window`` ids) is acknowledged again without
calling the app. If the app raises, the id is forgotten (the connection is
closed with 1011), so the client's retry is handled afresh.

*Server to client.* Every publication to a room gets the next offset of the
room's epoch and is kept in the room's history (``history_size`` entries,
``history_age`` seconds). A client that rejoins a room with its last epoch
and offset gets exactly the publications it missed, then ``recovered``, or
``discontinuity`` when they are no longer all there. It never gets part of
them. Replay and live delivery happen on the same loop, so nothing slips in
between.

*Sessions* outlive their connection by ``session_ttl`` seconds: a client
that reconnects with its session id keeps its dedupe window, also when the
server still holds its old connection open (that one is closed with
:data:`SESSION_TAKEN`).

*With the Redis backplane* (``Server(backplane=URL)``, or ``--redis``, set
before or after this object), offsets and history are in Redis (see
:mod:`~wsframe.delivery.redis_history`), and so are the sessions' dedupe
windows: a restarted server acknowledges a retry of what it took before as a
duplicate. *With worker processes* (``--workers``), the room's owner worker
sequences it and keeps its history; joins and publications in other workers
go through it (``ClusterRooms.ask_owner``).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import time
import re
from collections import deque
from typing import Any, Optional

from wsframe.delivery.history import Histories
from wsframe.delivery.redis_history import RedisHistory
from wsframe.backplane.redis import RedisError
from wsframe.delivery.wire import SESSION_TAKEN, SUBPROTOCOL, BadFrame, dumps, parse, pub
from wsframe.sansio.protocol import OPEN
from wsframe.server.server import Endpoint, Server

__all__ = ["Delivery", "LATER", "SESSION_TAKEN", "Session"]

log = logging.getLogger("wsframe.delivery")

#: Ids that need no JSON escaping (the common case: the ack is formatted directly).
_PLAIN_ID = re.compile(r"[\w.:\-]{1,128}\Z", re.ASCII).match

#: Returned by ``on_message``: the app acknowledges later, with :meth:`Delivery.ack`.
LATER = object()
#: The room of a room's wsframe.v1 members (their frames differ from plain members'):
#: room names that start with it are reserved.
TWIN = "wsframe.v1:"


class Session:
    """One client's session: its dedupe window, across its connections."""

    __slots__ = ("id", "seen", "conn", "left_at")

    def __init__(self, ident: str) -> None:
        self.id = ident
        self.seen: Optional[dict] = None   # message id -> acked / pending (False), oldest first;
        #                                           made on the first id: idle sessions stay small
        self.conn = None
        self.left_at = 0.0


class _Resuming:
    """A hello naming a session this process does not know, while Redis is asked for
    its dedupe window; frames that follow the hello wait here."""

    __slots__ = ("queued", "queued_bytes")

    def __init__(self) -> None:
        self.queued: list = []
        self.queued_bytes = 0


#: What a client may send between its hello and the welcome (§5.3: it waits for the
#: welcome before it resends its outbox, so normally nothing).
MAX_QUEUED_BEFORE_WELCOME = 64
MAX_QUEUED_BYTES_BEFORE_WELCOME = 64 * 1024


class Delivery:
    """Acks, dedupe, offsets, history and resume for one server (see the module docstring)."""

    def __init__(self, server: Server, *, history_size: int = 1000, history_age: float = 300.0,
                 session_ttl: float = 120.0, dedupe_window: int = 1024,
                 hello_timeout: float = 10.0, keepalive: float = 20.0,
                 node: Optional[str] = None) -> None:
        self.server = server
        self.histories = Histories(history_size, history_age)
        self.session_ttl = session_ttl
        self.dedupe_window = dedupe_window
        self.hello_timeout = hello_timeout
        self.keepalive = keepalive
        self.node = node or f"pid {os.getpid()}"
        self.sessions: dict[str, Session] = {}
        # A wsframe.v1 connection's ``conn.session``: (request, params) until its hello,
        # a _Resuming while Redis is asked for the session it names, then its Session.
        # Plain connections keep None there.
        self._resuming: Optional[tuple] = None   # (conn, room -> position) in its hello
        self._pending_joins: dict[str, int] = {}   # twin room -> joins waiting for Redis
        self._to_remember: dict[str, list] = {}     # session id -> acked ids, this turn
        self._awaiting_hello: deque = deque()   # (deadline, [conn, ...]), in deadline order
        self.counts = dict.fromkeys(("acked", "duplicates", "replayed", "recovered",
                                     "discontinuities", "published", "publish_failed",
                                     "bad_frames", "unavailable", "taken_over",
                                     "sessions_from_redis"), 0)
        #: With the Redis backplane, the history lives in Redis (see redis_history).
        self.redis: Optional[RedisHistory] = None
        self._workers = None   # the worker's rooms when this process is a worker
        self._bound = (None, None)
        self._bind(server)
        server.setup_watchers.append(self._bind)   # `--redis`, a worker's rooms: later
        server.loop.call_later(min(10.0, session_ttl), self._sweep)

    # ---- the application's side ------------------------------------------------------

    def endpoint(self, app: Any) -> Endpoint:
        """An Endpoint for a route, calling ``app``'s ``on_open(conn, request, params)``,
        ``on_message(conn, message)`` and ``on_close(conn, code, reason)`` (any of them).
        For wsframe.v1 connections ``on_open`` waits for the client's hello, and
        ``message`` is the decoded JSON object (``str`` / ``bytes`` for plain clients)."""
        return _ReliableEndpoint(self, app)

    def join(self, conn, room: str) -> None:
        """Put ``conn`` in ``room``: a wsframe.v1 connection first gets what it missed
        since the offset its hello named for this room (or where the room is now)."""
        if conn.session is None:
            conn.join(room)
            return
        resuming = self._resuming
        position = resuming[1].pop(room, None) if resuming and resuming[0] is conn else None
        twin = TWIN + room
        if not self.owns(room):
            # With workers, the room's owner keeps its history and sequences it: ask it.
            # It registers this worker for the room's fan-out as it answers, so what it
            # sends after the answer follows it on the same channel.
            asked = b"J" + json.dumps(position).encode()   # ASCII, whatever the client sent
            workers = self._workers
            workers.hold(twin)

            def answered(payload: Optional[bytes]) -> None:
                try:
                    self._enter(conn, twin, None if payload is None else json.loads(payload))
                finally:
                    workers.release(twin)
            workers.ask_owner(room, asked, answered)
            return
        self._catch_up(room, position, lambda frames: self._enter(conn, twin, frames))

    def _enter(self, conn, twin: str, frames: Optional[list]) -> None:
        """Send ``frames`` (what the client missed, or where the room is), then join."""
        if conn.state is not OPEN:
            return
        if frames is None:
            self.counts["unavailable"] += 1
            # 1013 Try Again Later (IANA WebSocket close code registry): reconnect
            conn.close(1013, "history unavailable, try again later")
            return
        for text in frames:
            conn.send(text)
        conn.join(twin)

    def _catch_up(self, room: str, position: Optional[dict], done) -> None:
        """``done(frames)`` with the frames that bring a client at ``position`` (None: a
        new member) up to date in ``room`` -- replay + ``recovered``, ``discontinuity``
        or ``joined`` -- or ``done(None)`` when the history cannot be read."""
        if self.redis is not None:
            return self._catch_up_from_redis(room, position, done)
        history = self.histories.get(room)
        if position is None:
            verdict, missed = "joined", ()
        else:
            missed = history.since(position["epoch"], position["offset"])
            verdict, missed = (missed, ()) if isinstance(missed, str) else ("recovered", missed)
        done(self._frames(room, history.epoch, history.offset, verdict,
                          [(offset, data_json) for offset, _, data_json in missed]))

    def _frames(self, room: str, epoch: str, offset: int, verdict: str, missed: list) -> list:
        """What a member gets on joining: ``joined``; the ``missed`` (offset, data JSON)
        as ``pub`` frames, then ``recovered``; or a ``discontinuity`` (``verdict``: its
        reason)."""
        if verdict == "joined":
            return [dumps({"op": "joined", "room": room, "epoch": epoch, "offset": offset})]
        if verdict != "recovered":
            self.counts["discontinuities"] += 1
            return [dumps({"op": "discontinuity", "room": room, "epoch": epoch,
                           "offset": offset, "reason": verdict})]
        frames = [pub(room, epoch, at, data_json) for at, data_json in missed]
        self.counts["replayed"] += len(missed)
        self.counts["recovered"] += 1
        frames.append(dumps({"op": "recovered", "room": room, "epoch": epoch, "offset": offset,
                             "replayed": len(missed)}))
        return frames

    def _catch_up_from_redis(self, room: str, position: Optional[dict], done) -> None:
        """Subscribe first, then (at the end of the turn, after the SUBSCRIBE) ask Redis
        for the position or what was missed; the member joins when the answer comes:
        pushes after it on the same connection are exactly the publications after it."""
        twin = TWIN + room
        backplane = self.server.backplane
        backplane.want(twin)
        pending = self._pending_joins
        pending[twin] = pending.get(twin, 0) + 1
        epoch, offset = (position["epoch"], position["offset"]) if position else (None, 0)

        def answered(reply) -> None:
            left = pending.pop(twin) - 1
            if left:
                pending[twin] = left
            if isinstance(reply, RedisError):
                done(None)
            else:
                done(self._redis_frames(room, reply))
            if not left:   # nobody here for it after all: no subscription
                if self._workers is not None:
                    self._workers.update_interest(twin)
                elif self.server.rooms.get(twin) is None:
                    backplane.unwant(twin)

        self.server.loop.at_turn_end(
            lambda: self.redis.join(room, epoch, offset, answered))

    def _redis_frames(self, room: str, reply) -> list:
        """``wsframe_join``'s answer: [epoch, offset, verdict, offset1, data1, ...]."""
        entries = reply[3:]
        return self._frames(room, reply[0].decode(), int(reply[1]), reply[2].decode(),
                            [(int(entries[i]), entries[i + 1].decode())
                             for i in range(0, len(entries), 2)])

    # ---- with workers: the owner's side -----------------------------------------------

    def _bind(self, server: Server) -> None:
        """Use the server's backplane and rooms (both may be set after this object).
        A worker's rooms (wsframe.cluster.rooms): twin rooms share their base room's
        owner, which answers the other workers' joins and publications."""
        backplane, rooms = server.backplane, server.rooms
        if backplane is not None and not hasattr(backplane, "ready_hooks"):
            # its publications would stay on this server: refuse rather than lose them
            raise ValueError("wsframe.v1 delivery needs the Redis backplane (redis:// or "
                             "rediss://); a Redis Cluster backplane is not supported")
        if backplane is not self._bound[0]:
            self.redis = None if backplane is None else RedisHistory(
                backplane, history_size=self.histories.max_count,
                history_age=self.histories.max_age, v1_room_prefix=TWIN)
        if rooms is not self._bound[1]:
            self._workers = rooms if hasattr(rooms, "ask_owner") else None
            if self._workers is not None:
                rooms.share_owner(TWIN)
                rooms.ask_handler = self._asked
        self._bound = (backplane, rooms)

    def _asked(self, room: str, payload: bytes, origin: int, answer) -> None:
        """(The room's owner) another worker's join (``J`` + position) or publication
        (``P`` + ``s``/``j`` + its JSON)."""
        kind = payload[:1]
        if kind == b"P":
            data_json = payload[2:].decode()
            self._sequence(room, data_json, json.loads(data_json) if payload[1:2] == b"s"
                           else data_json)
        elif kind == b"J" and answer is not None:
            position = json.loads(payload[1:])
            self._workers.add_remote(TWIN + room, origin)   # the fan-out, after the answer
            self._catch_up(room, position if isinstance(position, dict) else None,
                           lambda frames: answer(None if frames is None
                                                 else json.dumps(frames).encode()))

    def leave(self, conn, room: str) -> None:
        conn.leave(TWIN + room if conn.session is not None else room)

    def publish(self, room: str, data: Any) -> Optional[int]:
        """Publish ``data`` (anything JSON can carry) to ``room``; returns its offset.
        wsframe.v1 members get it with its offset; plain members get ``data`` itself
        (a ``str`` as is, anything else as JSON text). With the Redis backplane, Redis
        assigns the offset (``None`` is returned) and every server, this one too,
        delivers it when Redis's push brings it; ``publish_failed`` counts the
        publications Redis did not take. With workers (and no Redis), the room's owner
        worker assigns it; other workers pass it on and return ``None``."""
        data_json = dumps(data)
        if self.redis is not None:
            if self.redis.publish(room, data_json, isinstance(data, str),
                                  callback=self._published):
                self.counts["published"] += 1
            return None
        if not self.owns(room):
            self._workers.ask_owner(room, (b"Ps" if isinstance(data, str) else b"Pj")
                                    + data_json.encode())   # counted there
            return None
        return self._sequence(room, data_json, data if isinstance(data, str) else data_json)

    def _sequence(self, room: str, data_json: str, plain: str) -> int:
        """The next offset of ``room``: into its history, to its members (every worker's)."""
        history = self.histories.get(room)
        offset = history.append(data_json)
        self.counts["published"] += 1
        rooms = self.server.rooms
        rooms.deliver(TWIN + room, pub(room, history.epoch, offset, data_json))
        rooms.deliver(room, plain)
        return offset

    def owns(self, room: str) -> bool:
        """Whether this process is where ``room`` is sequenced: always, but with worker
        processes, only in the room's owner worker (a publisher that runs in every
        worker, such as a simulated driver, publishes from there only)."""
        workers = self._workers
        return workers is None or workers.owner_of(room) == workers.slot

    def _published(self, reply) -> None:
        if isinstance(reply, RedisError):
            self.counts["publish_failed"] += 1

    def send(self, conn, data: Any) -> None:
        """A direct message to one connection (``{"op":"msg","data":...}`` in wsframe.v1)."""
        if conn.session is not None:
            conn.send(dumps({"op": "msg", "data": data}))
        else:
            conn.send(data if isinstance(data, (str, bytes)) else dumps(data))

    def ack(self, conn, message_id: str) -> None:
        """Acknowledge a message whose ``on_message`` returned :data:`LATER`."""
        session = conn.session
        if session.__class__ is not Session:
            return
        seen = session.seen
        if seen is not None and seen.get(message_id) is False:
            seen[message_id] = True
            self.counts["acked"] += 1
            if self.redis is not None and self.dedupe_window > 0:
                self._remember(session, message_id)
            if conn.state is OPEN:
                conn.send(dumps({"ack": message_id}))

    # ---- the protocol ---------------------------------------------------------------

    def _opened(self, conn, request, params) -> bool:
        """True: a wsframe.v1 connection, whose app open waits for the hello."""
        if conn.subprotocol != SUBPROTOCOL:
            return False
        conn.session = (request, params)
        waiting = self._awaiting_hello
        deadline = time.monotonic() + self.hello_timeout
        if waiting and deadline <= waiting[-1][0]:
            waiting[-1][1].append(conn)   # one entry per 0.1 s of arrivals, closed late by
        else:                             # at most that
            waiting.append((deadline + 0.1, [conn]))
            if len(waiting) == 1:
                self.server.loop.call_later(self.hello_timeout, self._check_hellos)
        return True

    def _check_hellos(self) -> None:
        """Close the connections whose hello is late (one timer for all: the deadlines
        come in order, as the timeout is the same for everyone)."""
        waiting, now = self._awaiting_hello, time.monotonic()
        while waiting and waiting[0][0] <= now:
            for conn in waiting.popleft()[1]:
                if conn.session.__class__ is tuple and conn.state is OPEN:
                    conn.close(1008, "wsframe.v1: no hello")
        if waiting:
            self.server.loop.call_later(max(waiting[0][0] - now, 0.01), self._check_hellos)

    def _frame(self, conn, session, endpoint: "_ReliableEndpoint", text) -> None:
        """One message of a wsframe.v1 connection; ``session`` is ``conn.session``."""
        if session.__class__ is _Resuming:   # handled in order after the welcome
            session.queued.append(text)
            session.queued_bytes += len(text)
            if (len(session.queued) > MAX_QUEUED_BEFORE_WELCOME
                    or session.queued_bytes > MAX_QUEUED_BYTES_BEFORE_WELCOME):
                self.counts["bad_frames"] += 1
                conn.close(1008, "wsframe.v1: too much sent before the welcome")
            return
        handle = endpoint.handle
        opening = session.__class__ is tuple
        if not isinstance(text, str):
            if not opening:
                handle(conn, text)   # binary: the app's, no ack
            return
        try:
            frame = parse(text)
        except BadFrame as exc:
            self.counts["bad_frames"] += 1
            conn.close(1008, f"wsframe.v1: {exc}"[:123])
            return
        op = frame.get("op")
        if op == "ping":
            conn.send('{"op":"pong"}')
            return
        if opening:
            if op != "hello":
                self.counts["bad_frames"] += 1
                conn.close(1008, "wsframe.v1: the first frame is a hello")
                return
            return self._hello(conn, session, endpoint, frame)
        if op == "hello":
            self.counts["bad_frames"] += 1
            conn.close(1008, "wsframe.v1: one hello per connection")
            return
        ident = frame.get("id")
        if ident is None:
            handle(conn, frame)
            return
        seen = session.seen
        if seen is None:
            seen = session.seen = {}
        if ident in seen:
            self.counts["duplicates"] += 1
            if seen[ident]:
                conn.send(dumps({"ack": ident, "duplicate": True}))
            return  # still pending: its ack is on its way
        seen[ident] = False
        if len(seen) > self.dedupe_window:
            del seen[next(iter(seen))]   # the oldest (dicts keep insertion order)
        try:
            result = handle(conn, frame)
        except BaseException:
            seen.pop(ident, None)   # not taken: a retry is handled afresh
            raise
        if result is not LATER:
            seen[ident] = True
            self.counts["acked"] += 1
            if self.redis is not None and self.dedupe_window > 0:
                self._remember(session, ident)
            conn.send(f'{{"ack":"{ident}"}}' if _PLAIN_ID(ident) else f'{{"ack":{dumps(ident)}}}')

    def _hello(self, conn, opening: tuple, endpoint: "_ReliableEndpoint", frame: dict) -> None:
        ident = frame.get("session")
        session = self.sessions.get(ident) if ident else None
        if session is None and ident and self.redis is not None:
            # Not known here (this server restarted, or the client was on another one):
            # Redis may have its dedupe window. Welcome once it answers.
            waiting = conn.session = _Resuming()

            def loaded(reply) -> None:
                if conn.session is not waiting or conn.state is not OPEN:
                    return
                found = self.sessions.get(ident)   # resumed here meanwhile?
                if isinstance(reply, RedisError):
                    # Redis down: serve anyway, with a new session ("resumed": false tells
                    # the client its dedupe window is not there)
                    self.counts["unavailable"] += 1
                elif found is None and reply:
                    found = self.sessions[ident] = Session(ident)
                    found.seen = dict.fromkeys((i.decode() for i in reply), True)
                    self.counts["sessions_from_redis"] += 1
                self._welcome(conn, opening, endpoint.app, frame, found)
                for text in waiting.queued:
                    if conn.state is not OPEN:
                        break
                    self._frame(conn, conn.session, endpoint, text)
            self.redis.load_session(ident, loaded)
            return
        self._welcome(conn, opening, endpoint.app, frame, session)

    def _welcome(self, conn, opening: tuple, app, frame: dict,
                 session: Optional[Session]) -> None:
        if session is not None and session.conn is not None and session.conn is not conn:
            # §4.5: still held by another connection, most likely one its client left
            # behind (a network switch the server has not noticed yet). This hello
            # resumes it; the other connection is closed, and its client, if alive
            # (a duplicated browser tab), starts a session of its own.
            old, session.conn = session.conn, None
            self.counts["taken_over"] += 1
            if old.state is OPEN:
                old.close(SESSION_TAKEN, "wsframe.v1: session resumed by another connection")
        resumed = session is not None
        if not resumed:   # unknown or expired
            session = Session(secrets.token_urlsafe(12))
            self.sessions[session.id] = session
        session.conn = conn
        conn.session = session
        request, params = opening
        conn.send(dumps({"op": "welcome", "session": session.id, "resumed": resumed,
                         "keepalive": self.keepalive, "node": self.node}))
        if hasattr(app, "on_open"):
            self._resuming = (conn, dict(frame["rooms"])) if frame.get("rooms") else None
            try:
                app.on_open(conn, request, params)
            finally:
                self._resuming = None   # rooms the app did not join again: nothing to resume

    def _remember(self, session: Session, ident: str) -> None:
        """Write the acked id to the session's window in Redis, batched per turn."""
        batch = self._to_remember
        if not batch:
            self.server.loop.at_turn_end(self._flush_remembered)
        ids = batch.get(session.id)
        if ids is None:
            batch[session.id] = [ident]
        else:
            ids.append(ident)

    def _flush_remembered(self) -> None:
        batch, self._to_remember = self._to_remember, {}
        window = self.dedupe_window
        for ident, ids in batch.items():
            ids = ids[-window:]   # older ones would be trimmed at once
            for start in range(0, len(ids), 1000):   # Lua's unpack() takes ~8,000 at most
                self.redis.remember(ident, ids[start:start + 1000], window, self.session_ttl)

    def _closed(self, conn) -> None:
        session = conn.session
        if session.__class__ is Session and session.conn is conn:
            session.conn = None
            session.left_at = time.monotonic()

    def _sweep(self) -> None:
        """Expire sessions left longer than ``session_ttl``, and idle histories."""
        now = time.monotonic()
        for ident in [i for i, s in self.sessions.items()
                      if s.conn is None and now - s.left_at > self.session_ttl]:
            del self.sessions[ident]
        rooms = self.server.rooms
        remote = self._workers.remote if self._workers is not None else {}
        self.histories.sweep(now, keep=lambda name: rooms.get(TWIN + name) is not None
                             or rooms.get(name) is not None
                             or TWIN + name in remote or name in remote)
        if not self.server._stopping:
            self.server.loop.call_later(min(10.0, self.session_ttl), self._sweep)

    def stats(self) -> dict:
        return {"sessions": len(self.sessions), "histories": len(self.histories),
                **self.counts}


class _ReliableEndpoint(Endpoint):
    """One route's Endpoint: wsframe.v1 connections through Delivery, others plain."""

    subprotocols = (SUBPROTOCOL,)

    def __init__(self, delivery: Delivery, app: Any) -> None:
        self.delivery = delivery
        self.app = app
        self.handle = getattr(app, "on_message", None) or _ignore   # looked up once

    def on_upgrade(self, request, params):
        hook = getattr(self.app, "on_upgrade", None)
        if hook is not None:
            return hook(request, params)
        return None

    def on_open(self, conn, request, params):
        if not self.delivery._opened(conn, request, params) and hasattr(self.app, "on_open"):
            self.app.on_open(conn, request, params)

    def on_message(self, conn, message):
        session = conn.session
        if session is None:
            self.handle(conn, message)
            return
        self.delivery._frame(conn, session, self, message)

    def on_close(self, conn, code, reason):
        # the app's on_open ran: plain, or a v1 client that was welcomed
        opened = conn.session is None or conn.session.__class__ is Session
        self.delivery._closed(conn)
        if opened and hasattr(self.app, "on_close"):
            self.app.on_close(conn, code, reason)


def _ignore(conn, message) -> None:
    """The message hook of an app that has none."""
