"""Rooms: named sets of connections, and broadcasts encoded once.

A broadcast builds the server frame **once** and hands the same ``bytes``
object to every member (server frames are unmasked, §5.1). Members that
agreed on permessage-deflate without server context takeover share one
compressed frame too (one per window size, usually one in all); a member
whose agreement keeps context is compressed for separately, because its
compressor's window is its own.

The first broadcast of a loop turn goes out at once, one ``write`` per
member from a compiled loop (``write_each``): the last member of a room of
10,000 is not kept waiting by Python work for the others. Further
broadcasts in the same turn are batched by the room and written at the end
of the turn, joined, with one ``write`` per member: a burst of N messages
costs O(N + members), not O(N x members). Order per member is kept: a
direct send to a member while a batch is pending first gives that member
the batch (:meth:`Room._catch_up`).

A connection leaves its rooms automatically when it closes.

With a backplane (:mod:`wsframe.backplane`, rooms shared by servers through
Redis), :meth:`Room.broadcast` also hands the message to it once for the
other servers, and messages from them reach this server's members through
:meth:`Room.deliver`. The backplane hears when a room gets its first member
here and when it loses its last one (``want`` / ``unwant``), so it
subscribes only to rooms with members in this process.
"""
from __future__ import annotations

from typing import Iterator, Optional, Union

from wsframe import codec
from wsframe.codec.frames import OP_BINARY, OP_TEXT, RSV1
from wsframe.loop.backpressure import Policy
from wsframe.loop.fanout import BroadcastResult, fan_out
from wsframe.sansio.protocol import State


__all__ = ["Room", "Rooms", "BroadcastResult"]


class Room:
    """A named set of connections."""

    __slots__ = ("name", "members", "_rooms", "_turn", "_batch", "_caught_up", "_policy",
                 "_groups")

    def __init__(self, name: str, rooms: Optional["Rooms"] = None) -> None:
        self.name = name
        self.members: set["ServerConnection"] = set()
        self._rooms = rooms
        self._turn = -1          # the loop turn of the last broadcast written at once
        self._batch = None       # later broadcasts of that turn, written at its end
        self._caught_up = None   # member -> how much of the batch it got early (direct sends)
        self._policy = Policy.DROP
        self._groups = None      # members by frame group, for broadcasts (see _grouped)

    def join(self, conn: "ServerConnection") -> None:
        """Add ``conn`` (it leaves again by itself when it closes)."""
        if conn in self.members:
            return
        self.members.add(conn)
        self._groups = None
        conn._add_room(self)
        if len(self.members) == 1 and self._rooms is not None:
            self._rooms._occupied(self)

    def leave(self, conn: "ServerConnection") -> None:
        self._discard(conn)
        conn._remove_room(self)

    def _discard(self, conn: "ServerConnection") -> None:
        self.members.discard(conn)
        self._groups = None
        if not self.members and self._rooms is not None:
            self._rooms._forget(self)

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, conn: object) -> bool:
        return conn in self.members

    def __iter__(self) -> Iterator["ServerConnection"]:
        return iter(list(self.members))

    def broadcast(self, data: Union[str, bytes], *, text: Optional[bool] = None,
                  compress: Optional[bool] = None, exclude: Optional["ServerConnection"] = None,
                  policy: Optional[Policy] = None) -> BroadcastResult:
        """Send one message to every member; each frame variant is built once.

        Returns a :class:`BroadcastResult`. Members over their backpressure
        limit are handled by ``policy`` (:attr:`Policy.DROP` by default for rooms).
        Later broadcasts of the same loop turn are batched (see the module
        docstring): they count as delivered to every member, and the policy
        applies when the batch is written at the end of the turn. With a
        backplane the message also goes once to the other servers
        (``result.published`` says whether it could).
        """
        message = _Message.of(data, text, compress)  # TypeError here, to the caller
        result = self._deliver(message, exclude, policy)
        relay = self._rooms.relay if self._rooms is not None else None
        if relay is not None:
            result.published = relay.publish(self.name, message.payload,
                                             message.opcode == OP_TEXT)
        return result

    def deliver(self, data: Union[str, bytes], *, text: Optional[bool] = None,
                compress: Optional[bool] = None, exclude: Optional["ServerConnection"] = None,
                policy: Optional[Policy] = None) -> BroadcastResult:
        """Send to this process's members only, as :meth:`broadcast` does, without the
        backplane: for messages that come from it (or from another worker)."""
        return self._deliver(_Message.of(data, text, compress), exclude, policy)

    def _deliver(self, message: "_Message", exclude, policy: Optional[Policy]) -> BroadcastResult:
        result = BroadcastResult()
        if not self.members:
            return result
        policy = policy or Policy.DROP
        loop = next(iter(self.members)).loop
        if exclude is None and (self._batch is not None or self._turn == loop.turn):
            if self._batch is None:
                self._batch, self._caught_up = [], {}
                loop.at_turn_end(self._flush)
            self._batch.append(message)
            self._policy = policy
            result.delivered = len(self.members)
            return result
        self._flush()  # a batch of this turn goes first (a broadcast that excludes someone)
        self._turn = loop.turn
        max_queue = self._max_queue()
        for group, conns in self._grouped().items():
            conns = [c for c in conns if c.state is State.OPEN and c is not exclude]
            if not conns:
                continue
            if group is _OWN_COMPRESSOR:  # each has its own compressor: its own bytes
                for conn in conns:
                    result.count(conn.offer(message.frame_for(conn), policy, max_queue))
                continue
            fan_out(conns, message.frame_for(conns[0]), policy, max_queue, result)
        return result

    def _max_queue(self) -> int:
        return next(iter(self.members)).server.settings.backpressure.max_queue

    def _grouped(self) -> dict:
        """Members by frame group (see _Message.group), kept until membership changes."""
        groups = self._groups
        if groups is None:
            groups = self._groups = {}
            for conn in self.members:
                groups.setdefault(_Message.group(conn), []).append(conn)
        return groups

    def _flush(self) -> None:
        """Write this turn's batch: the frames joined, one write per member."""
        batch, caught_up, policy = self._batch, self._caught_up, self._policy
        self._batch = self._caught_up = None
        if not batch:
            return
        if not self.members:
            return
        result = BroadcastResult()
        max_queue = self._max_queue()
        for conn, given in caught_up.items():  # had the start of the batch early: the rest
            if given < len(batch) and conn.state is State.OPEN and conn in self.members:
                result.count(conn.offer(
                    b"".join(m.frame_for(conn) for m in batch[given:]), policy, max_queue))
        for group, conns in self._grouped().items():
            conns = [c for c in conns if c.state is State.OPEN and c not in caught_up]
            if not conns:
                continue
            if group is _OWN_COMPRESSOR:  # each has its own compressor: its own bytes
                for conn in conns:
                    result.count(conn.offer(b"".join(m.frame_for(conn) for m in batch),
                                            policy, max_queue))
                continue
            fan_out(conns, b"".join(m.frame_for(conns[0]) for m in batch), policy, max_queue,
                    result)

    def _catch_up(self, conn: "ServerConnection") -> None:
        """``conn`` is about to get a direct send: give it this turn's batch so far (order)."""
        batch = self._batch
        given = self._caught_up.get(conn, 0)
        if given < len(batch):
            self._caught_up[conn] = len(batch)
            conn.write(b"".join(m.frame_for(conn) for m in batch[given:]))

    def __repr__(self) -> str:
        return f"<Room {self.name!r} members={len(self.members)}>"


_OWN_COMPRESSOR = object()  # the group of members whose compressor keeps context


class _Message:
    """One broadcast message and its frames, built once per variant."""

    __slots__ = ("payload", "opcode", "compress", "_plain", "_compressed")

    def __init__(self, payload, opcode: int, compress: Optional[bool]) -> None:
        self.payload = payload
        self.opcode = opcode
        self.compress = compress
        self._plain: Optional[bytes] = None
        self._compressed: dict = {}

    @classmethod
    def of(cls, data, text: Optional[bool], compress: Optional[bool]) -> "_Message":
        """Check and copy what the caller gave, now: a bad argument raises to the caller,
        not later when the turn's batch is written, and a buffer changed after the call
        does not change what is sent."""
        if data.__class__ is str:
            return cls(data.encode(), OP_TEXT, compress)
        if isinstance(data, (bytes, bytearray, memoryview)):
            payload = data if data.__class__ is bytes else bytes(data)
            return cls(payload, OP_TEXT if text else OP_BINARY, compress)
        raise TypeError(f"a message is str or bytes-like, not {type(data).__name__}")

    @staticmethod
    def group(conn: "ServerConnection"):
        """Members of one group get the same frames for every message: no compression,
        or the same (interned) agreement without server context takeover."""
        agreement = conn.deflate
        if agreement is None:
            return None
        return agreement if agreement.server_no_context_takeover else _OWN_COMPRESSOR

    def variant(self, conn: "ServerConnection"):
        """None: the plain frame; a tuple: a shared compressed frame; the conn: its own."""
        agreement = conn.deflate
        if agreement is None or self.compress is False or (
                not self.compress and len(self.payload) < agreement.threshold):
            return None
        if agreement.server_no_context_takeover:
            return (agreement.server_max_window_bits, agreement.mem_level, agreement.level)
        return conn  # context takeover: its compressor's window is its own

    def frame_for(self, conn: "ServerConnection") -> bytes:
        variant = self.variant(conn)
        if variant is None:
            if self._plain is None:
                self._plain = codec.server_frame(self.opcode, self.payload)
            return self._plain
        if variant is conn:
            return conn.encode(self.payload, self.opcode, self.compress)
        frame = self._compressed.get(variant)
        if frame is None:
            frame = self._compressed[variant] = codec.server_frame(
                self.opcode, conn.compress(self.payload), rsv=RSV1)
        return frame


class Rooms:
    """The rooms of one server process, created on first join, dropped when empty.

    ``relay``: the backplane (see :meth:`attach`), or ``None``.
    """

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self.relay = None

    def attach(self, relay) -> None:
        """Share these rooms with other servers through ``relay`` (a backplane such as
        :class:`~wsframe.backplane.pubsub.RedisBackplane`: ``bind``, ``want``,
        ``unwant``, ``publish``)."""
        self.relay = relay
        relay.bind(self._relayed)
        for room in self._rooms.values():
            if room.members:
                self._occupied(room)

    def publish(self, name: str, data: Union[str, bytes], *, text: Optional[bool] = None,
                compress: Optional[bool] = None) -> Optional[BroadcastResult]:
        """Broadcast to room ``name`` whether or not it has members here (with a
        backplane, its members on other servers get it too); ``None`` if nobody could."""
        room = self._rooms.get(name)
        if room is not None and room.members:
            return room.broadcast(data, text=text, compress=compress)
        if self.relay is None:
            return None
        message = _Message.of(data, text, compress)
        result = BroadcastResult()
        result.published = self.relay.publish(name, message.payload, message.opcode == OP_TEXT)
        return result

    def deliver(self, name: str, data: Union[str, bytes], *,
                text: Optional[bool] = None) -> None:
        """Send to every member of room ``name`` that this server holds, without the
        backplane (with workers: in every worker; call it in the room's owner)."""
        room = self._rooms.get(name)
        if room is not None and room.members:
            room.deliver(data, text=text)

    def _relayed(self, name: str, payload: bytes, text: bool) -> None:
        """A message for room ``name`` from another server, through the backplane."""
        room = self._rooms.get(name)
        if room is not None and room.members:
            room.deliver(payload, text=text)

    def _occupied(self, room: Room) -> None:
        """``room`` got its first member in this process."""
        if self.relay is not None:
            self.relay.want(room.name)

    def get_or_create(self, name: str) -> Room:
        """The room called ``name`` (created empty if needed)."""
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Room(name, self)
        return room

    def get(self, name: str) -> Optional[Room]:
        """The room if it exists, else ``None`` (creates nothing; rooms are dropped
        when their last member leaves)."""
        return self._rooms.get(name)

    def _forget(self, room: Room) -> None:
        """``room`` lost its last member in this process."""
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]
            if self.relay is not None:
                self.relay.unwant(room.name)

    def __len__(self) -> int:
        return len(self._rooms)

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))
