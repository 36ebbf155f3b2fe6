"""Rooms for the asyncio server: named sets of connections and one-call broadcasts.

::

    async def chat(ws):
        room = ws.server.rooms.get_or_create(ws.request.path)
        room.add(ws)
        try:
            async for message in ws:
                room.broadcast(message)
        finally:
            room.discard(ws)

A broadcast builds the frame once for all members that agreed on no
compression (a server's frames are not masked, RFC 6455 §5.1, so the same
bytes serve every member) and per member otherwise. It does not wait: a
member whose write buffer is over its high-water mark is skipped and
counted, so one slow member neither blocks the room nor grows memory.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple, Optional, Union

from wsframe import codec
from wsframe.codec.frames import OP_BINARY, OP_TEXT
from wsframe.errors import InvalidState
from wsframe.sansio.protocol import OPEN

__all__ = ["Room", "Rooms", "BroadcastResult"]


class BroadcastResult(NamedTuple):
    sent: int      # members the message was written to
    skipped: int   # members not open, or with a full write buffer


class Room:
    """A set of connections that hear the same broadcasts."""

    def __init__(self, name: str = "", rooms: Optional["Rooms"] = None) -> None:
        self.name = name
        self.members: set = set()
        self._rooms = rooms

    def add(self, ws) -> None:
        self.members.add(ws)

    def discard(self, ws) -> None:
        """Remove a member; an empty room leaves its :class:`Rooms`."""
        self.members.discard(ws)
        if not self.members and self._rooms is not None:
            self._rooms.drop(self)

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator:
        return iter(self.members)

    def __contains__(self, ws) -> bool:
        return ws in self.members

    def broadcast(self, message: Union[str, bytes], *, exclude=None) -> BroadcastResult:
        """Send ``message`` to every open member (but ``exclude``), without waiting."""
        if isinstance(message, str):
            payload, opcode = message.encode(), OP_TEXT
        else:
            payload, opcode = bytes(message), OP_BINARY
        plain = None  # the uncompressed frame, built on first use
        sent = skipped = 0
        for ws in list(self.members):
            proto = ws.proto
            if ws is exclude:
                continue
            if proto.state is not OPEN or ws.lost or ws._write_paused:
                skipped += 1
                continue
            if proto.deflate is None:
                if plain is None:
                    plain = codec.server_frame(opcode, payload)
                frame = plain
            else:
                frame = proto.encode(payload, opcode)
            try:
                ws.write_frame(frame)
            except InvalidState:  # inside a fragmented message of its own
                skipped += 1
                continue
            sent += 1
        return BroadcastResult(sent, skipped)


class Rooms:
    """Rooms by name, created on first use and dropped when empty."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}

    def get(self, name: str) -> Optional[Room]:
        return self.rooms.get(name)

    def get_or_create(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name, self)
        return room

    def drop(self, room: Room) -> None:
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]

    def __len__(self) -> int:
        return len(self.rooms)
