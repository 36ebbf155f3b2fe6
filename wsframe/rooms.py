"""Rooms: named sets of connections, and broadcasts encoded once.

A broadcast builds the server frame **once** and hands the same ``bytes``
object to every member (server frames are unmasked, §5.1). Members that
agreed on permessage-deflate without server context takeover share one
compressed frame too (one per window size, usually one in all); a member
whose agreement keeps context is compressed for separately, because its
compressor's window is its own.

A connection leaves its rooms automatically when it closes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional, Union

from . import codec
from .backpressure import SendStatus
from .frames import OP_BINARY, OP_TEXT, RSV1

if TYPE_CHECKING:
    from .server import ServerConn

__all__ = ["Room", "Rooms", "BroadcastResult"]


class BroadcastResult:
    """How a broadcast went: members reached, and those skipped by backpressure."""

    __slots__ = ("delivered", "dropped", "blocked", "closed")

    def __init__(self) -> None:
        self.delivered = self.dropped = self.blocked = self.closed = 0

    def __repr__(self) -> str:
        return (f"BroadcastResult(delivered={self.delivered}, dropped={self.dropped}, "
                f"blocked={self.blocked}, closed={self.closed})")


class Room:
    """A named set of connections."""

    __slots__ = ("name", "members", "_rooms")

    def __init__(self, name: str, rooms: Optional["Rooms"] = None) -> None:
        self.name = name
        self.members: set["ServerConn"] = set()
        self._rooms = rooms

    def join(self, conn: "ServerConn") -> None:
        """Add ``conn`` (it leaves again by itself when it closes)."""
        if conn in self.members:
            return
        self.members.add(conn)
        conn._add_room(self)

    def leave(self, conn: "ServerConn") -> None:
        self._discard(conn)
        conn._remove_room(self)

    def _discard(self, conn: "ServerConn") -> None:
        self.members.discard(conn)
        if not self.members and self._rooms is not None:
            self._rooms._forget(self)

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, conn: object) -> bool:
        return conn in self.members

    def __iter__(self) -> Iterator["ServerConn"]:
        return iter(list(self.members))

    def broadcast(self, data: Union[str, bytes], *, text: Optional[bool] = None,
                  compress: Optional[bool] = None, exclude: Optional["ServerConn"] = None,
                  policy: Optional[str] = None) -> BroadcastResult:
        """Send one message to every member; the frame is built once.

        Returns a :class:`BroadcastResult`; members over their backpressure
        limit are handled by the policy (``drop`` by default for rooms).
        """
        if isinstance(data, str):
            payload, opcode = data.encode(), OP_TEXT
        else:
            payload, opcode = data, (OP_TEXT if text else OP_BINARY)
        plain: Optional[bytes] = None
        compressed: dict = {}
        result = BroadcastResult()
        for conn in list(self.members):
            if conn is exclude:
                continue
            agreement = conn.deflate
            if agreement is None or compress is False or (
                    not compress and len(payload) < agreement.threshold):
                if plain is None:
                    plain = codec.server_frame(opcode, payload)
                frame = plain
            elif agreement.server_no_context_takeover:
                key = (agreement.server_max_window_bits, agreement.mem_level, agreement.level)
                frame = compressed.get(key)
                if frame is None:
                    frame = compressed[key] = codec.server_frame(
                        opcode, conn._compress(payload), rsv=RSV1)
            else:
                frame = conn.encode(payload, opcode, compress)  # its own window: its own bytes
            status = conn.send_frame(frame, policy or "drop")
            if status is SendStatus.OK:
                result.delivered += 1
            elif status is SendStatus.DROPPED:
                result.dropped += 1
            elif status is SendStatus.BLOCKED:
                result.blocked += 1
            else:
                result.closed += 1
        return result

    def __repr__(self) -> str:
        return f"<Room {self.name!r} members={len(self.members)}>"


class Rooms:
    """The rooms of one server process, created on first join, dropped when empty."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def get(self, name: str) -> Room:
        """The room called ``name`` (created empty if needed)."""
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Room(name, self)
        return room

    def find(self, name: str) -> Optional[Room]:
        """The room if it has members, else ``None`` (creates nothing)."""
        return self._rooms.get(name)

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]

    def __len__(self) -> int:
        return len(self._rooms)

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))
