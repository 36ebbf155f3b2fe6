"""A server-side connection on the loop, and the callbacks of a route.

An :class:`Endpoint` holds the callbacks of one route (the browser's
``onopen`` / ``onmessage`` / ``onclose``, plus an upgrade hook) and serves
all of that route's connections; a :class:`ServerConnection` carries only
its protocol state, its fd and a ``data`` slot for the application.
"""
from __future__ import annotations

import logging
import socket
from typing import Optional, Sequence, Union

from wsframe.codec import server_frame
from wsframe.codec.frames import OP_BINARY, OP_TEXT, server_frame_header
from wsframe.codec.http import Request
from wsframe.errors import InvalidState, PolicyViolation
from wsframe.loop.backpressure import Policy, SendStatus
from wsframe.loop.eventloop import FdStream
from wsframe.sansio.handshake import ServerHandshake
from wsframe.sansio.protocol import CONNECTING, OPEN, Protocol
from wsframe.server.rooms import Room

__all__ = ["Endpoint", "ServerConnection", "SPLIT_FRAMES_FROM"]

log = logging.getLogger("wsframe.server")

#: Messages at least this long are written as header + payload (no copy into a frame).
SPLIT_FRAMES_FROM = 16 * 1024


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

    def on_open(self, conn: "ServerConnection", request: Request, params: dict) -> None:
        """The connection is open (``params`` come from the route pattern)."""

    def on_message(self, conn: "ServerConnection", message: Union[str, bytes]) -> None:
        """A message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_close(self, conn: "ServerConnection", code: int, reason: str) -> None:
        """The connection closed; ``code`` says how (1006: without a closing handshake)."""

    def on_drain(self, conn: "ServerConnection") -> None:
        """The queue of a connection that refused a "wait" send is empty again."""

    def on_fragment(self, conn: "ServerConnection", data: bytes, is_text: bool, first: bool,
                    last: bool) -> None:
        """A piece of a message, when the server's ``Limits.stream_messages`` is set
        (instead of :meth:`on_message`). Text pieces are UTF-8 valid so far."""


class ServerConnection(FdStream, Protocol):
    """One server-side connection: protocol state, an fd, and ``data`` for the application."""

    __slots__ = ("fd", "loop", "server", "endpoint", "data", "subprotocol", "session", "_rooms",
                 "_out",
                 "_out_size", "_seen", "_mark", "_io", "_pong", "_head", "_text")

    def __init__(self, server: "Server", fd: int) -> None:
        Protocol.__init__(self, False, limits=server.settings.limits, state=CONNECTING)
        self.fd = fd
        self.loop = server.loop
        self.server = server
        self.endpoint: Optional[Endpoint] = None
        self.data = None            # the application's per-connection state
        self.subprotocol: Optional[str] = None  # the one agreed in the handshake (§4.2.2)
        self.session = None         # the session of a protocol above (wsframe.delivery's)
        self._rooms = None          # None, a Room, or a set of Rooms
        self._out = None            # corked / queued output (see FdStream)
        self._out_size = 0
        self._seen = self.loop.tick  # tick of the last bytes received
        self._mark = self.loop.tick  # tick a timer started: accept, ping, close
        self._io = 0
        self._pong = None           # the latest Ping's data, while its Pong waits (see FdStream)
        self._head: Optional[ServerHandshake] = ServerHandshake(server.settings.max_head_size)
        self._text = None           # (str, its UTF-8 bytes) of the message being handled

    # ---- receiving ----------------------------------------------------------------

    def _handshake_data(self, data) -> None:
        self.server._handshake(self, data)

    def _on_message(self, data: bytes, is_text: bool) -> None:
        try:
            self.endpoint.on_message(self, data.decode() if is_text else data)
        except Exception:
            self._handler_failed("on_message")

    def _on_text(self, text: str, raw) -> None:
        if raw.__class__ is bytes:  # while the handler runs, send(text) reuses these bytes
            self._text = (text, raw)
        try:
            self.endpoint.on_message(self, text)
        except Exception:
            self._handler_failed("on_message")
        self._text = None

    def _on_fragment(self, data: bytes, is_text: bool, first: bool, last: bool) -> None:
        try:
            self.endpoint.on_fragment(self, data, is_text, first, last)
        except Exception:
            self._handler_failed("on_fragment")

    def _high_water(self) -> int:
        return self.server._max_queue

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
             policy: Optional[Policy] = None) -> SendStatus:
        """Send one message (``str``: text, bytes-like: binary); see :mod:`~wsframe.loop.backpressure`."""
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
        return self.offer(frame, policy or self.server.settings.backpressure.policy,
                          self.server._max_queue)

    def _send_split(self, opcode: int, payload, policy: Optional[Policy]) -> SendStatus:
        """A large uncompressed message: its header, then the payload object itself."""
        if payload.__class__ is not bytes:
            payload = bytes(payload)  # our own immutable copy of a caller's buffer
        queued = self._out_size
        if queued and queued + len(payload) > self.server._max_queue:
            return self._over_limit(policy or self.server.settings.backpressure.policy, queued)
        self._write(server_frame_header(opcode, len(payload)))
        self._write(payload)
        return SendStatus.OK

    def send_frame(self, frame: bytes, policy: Optional[Policy] = None) -> SendStatus:
        """Queue an already encoded frame (a broadcast), applying the backpressure policy."""
        if self.state is not OPEN:
            return SendStatus.CLOSED
        return self.offer(frame, policy or self.server.settings.backpressure.policy,
                          self.server._max_queue)

    def _catch_up_rooms(self) -> None:
        """A room batch pending this turn goes out before a direct send (order)."""
        rooms = self._rooms
        if rooms.__class__ is not set:  # one Room (or a subclass, e.g. wsframe.cluster's)
            if rooms._batch:
                rooms._catch_up(self)
        else:
            for room in rooms:
                if room._batch:
                    room._catch_up(self)

    def _over_limit(self, policy: Policy, queued: int) -> SendStatus:
        stats = self.server.stats
        if policy is Policy.DROP:
            stats.dropped += 1
        elif policy is Policy.CLOSE:
            stats.slow_closed += 1
            # Abandon rather than close: the queue may end inside a half-written frame,
            # after which no Close frame can follow (and the peer does not read). on_close
            # reports 1008; the peer sees TCP end without a closing handshake (1006).
            self.fail(PolicyViolation(f"slow consumer: {queued} bytes queued"), send_close=False)
        return FdStream._over_limit(self, policy, queued)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the peer has ``close_timeout`` s to answer."""
        Protocol.close(self, code, reason)
        self._mark = self.loop.tick

    # ---- rooms --------------------------------------------------------------------

    def join(self, name: Union[str, Room]) -> Room:
        """Join a room of this server (by name or object)."""
        room = self.server.rooms.get_or_create(name) if isinstance(name, str) else name
        room.join(self)
        return room

    def leave(self, name: Union[str, Room]) -> None:
        room = self.server.rooms.get(name) if isinstance(name, str) else name
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
        return f"<ServerConnection fd={self.fd} {self.state.name}>"
