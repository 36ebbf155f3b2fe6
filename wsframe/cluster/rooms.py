"""Rooms that span worker processes: membership by proxy, fan-out through the owner.

Each room name has one owner slot (:func:`~wsframe.cluster.partition.owner`).
In the common case every member connected with the room's key and lives in
the owner's process: a broadcast never leaves it. A worker whose connection
joins a room owned elsewhere keeps a local :class:`ClusterRoom` for its own
members and tells the owner once (JOIN, and LEAVE when its last member
goes): the owner keeps, per room, the set of other slots with members.

Every broadcast is sequenced by the owner, which gives one order per room:

* on the owner: the frame goes to its own members, then the payload goes
  once to each other slot with members (FANOUT);
* elsewhere: the payload goes to the owner (PUBLISH), which does the above
  -- the sender's own process included, so its members see the same order.

Each process builds the frame once for its members (``Room.deliver``).
A broadcast that ``exclude``-s a member carries (origin slot, fd) so that
member's process skips it.

The layer above can address a room's owner itself (``ask_owner``, answered
by the owner's ``ask_handler``): the delivery layer sequences a room's
publications and keeps its history there. ``share_owner(prefix)`` makes
``prefix + name`` owned with ``name`` (delivery's twin rooms).

With a backplane (Redis, across machines), the owner is this machine's
backplane client for the room: it subscribes while any worker has members,
publishes every broadcast it sequences once, and fans what comes from Redis
out like its own broadcasts. Other workers never talk to Redis about it.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional, Union

from wsframe.loop.backpressure import Policy
from wsframe.server.rooms import BroadcastResult, Room, Rooms
from wsframe.cluster.partition import owner
from wsframe.cluster.wire import (ANSWER, ASK, FANOUT, JOIN, LEAVE, PUBLISH, pack_answer,
                                  pack_ask, pack_room_message, unpack_answer, unpack_ask)

__all__ = ["ClusterRoom", "ClusterRooms"]

log = logging.getLogger("wsframe.cluster")

#: An ASK unanswered this long gets ``None`` (its ASK or ANSWER was dropped somewhere).
ASK_TIMEOUT = 10.0


class ClusterRoom(Room):
    """A room's members in this process; broadcasts reach its members in every worker."""

    __slots__ = ("owner",)

    def __init__(self, name: str, rooms: "ClusterRooms") -> None:
        Room.__init__(self, name, rooms)
        self.owner = rooms.owner_of(name)

    def broadcast(self, data: Union[str, bytes], *, text: Optional[bool] = None,
                  compress: Optional[bool] = None, exclude=None,
                  policy: Optional[Policy] = None) -> BroadcastResult:
        """Send to every member in every worker, in one order per room.

        The result counts this process's members only, and only when this
        process owns the room (otherwise the message is on its way to the
        owner, which sends it back here too).
        """
        rooms: ClusterRooms = self._rooms
        payload, is_text = _payload(data, text)
        if self.owner == rooms.slot:  # local members, the backplane, the other workers
            result = Room.broadcast(self, data, text=text, compress=compress, exclude=exclude,
                                    policy=policy)
            rooms.fan_out(self.name, payload, is_text, compress, -1, -1, policy)
            return result
        rooms.to_owner(self.owner, pack_room_message(
            self.name, payload, text=is_text, compress=compress, origin=rooms.slot,
            exclude_fd=-1 if exclude is None else exclude.fd, policy=policy))
        return BroadcastResult()


def _payload(data, text: Optional[bool]) -> tuple[bytes, bool]:
    """Checked and copied at the call, as Room.broadcast does (TypeError to the caller)."""
    if data.__class__ is str:
        return data.encode(), True
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a message is str or bytes-like, not {type(data).__name__}")
    return bytes(data), bool(text)


class ClusterRooms(Rooms):
    """The rooms of one worker, and (for rooms this worker owns) which other slots
    have members. ``send(slot, kind, body)`` reaches another worker (via the supervisor)."""

    def __init__(self, slot: int, slots: int, send) -> None:
        Rooms.__init__(self)
        self.slot = slot
        self.slots = slots
        self._send = send
        self.remote: dict[str, set[int]] = {}   # owned room -> other slots with members
        self.shared_prefixes: tuple[str, ...] = ()
        self._held: dict[str, int] = {}         # room owned elsewhere -> pending joins
        #: The owner's side of :meth:`ask_owner`: ``(name, payload, origin, answer)``,
        #: ``answer(bytes | None)`` or ``None`` when no answer is wanted.
        self.ask_handler: Optional[Callable] = None
        self._asked: dict[int, tuple] = {}   # tag -> (slot, answer, deadline), oldest first
        self._next_tag = 1

    def share_owner(self, prefix: str) -> None:
        """Rooms named ``prefix + name`` are owned by the owner of ``name``."""
        if prefix not in self.shared_prefixes:
            self.shared_prefixes += (prefix,)

    def owner_of(self, name: str) -> int:
        """The slot that owns room ``name``."""
        for prefix in self.shared_prefixes:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        return owner(name, self.slots)

    def get_or_create(self, name: str) -> ClusterRoom:
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = ClusterRoom(name, self)
        return room

    # ---- membership -----------------------------------------------------------------

    def _occupied(self, room: ClusterRoom) -> None:
        if room.owner != self.slot:
            self.announce(JOIN, room)
        else:
            self.update_interest(room.name)

    def _forget(self, room: ClusterRoom) -> None:
        if self._rooms.get(room.name) is not room:
            return
        del self._rooms[room.name]
        if room.owner != self.slot and not self._held.get(room.name):
            self.announce(LEAVE, room)
        else:
            self.update_interest(room.name)

    def update_interest(self, name: str) -> None:
        """An owned room's backplane subscription: while any worker has members."""
        if self.relay is None:
            return
        room = self._rooms.get(name)
        if (room is not None and room.members) or self.remote.get(name):
            self.relay.want(name)
        else:
            self.relay.unwant(name)

    def _relayed(self, name: str, payload: bytes, text: bool) -> None:
        """From another machine: this worker's members, then the other workers'."""
        room = self._rooms.get(name)
        if room is not None and room.members:
            room.deliver(payload, text=text)
        if self.owner_of(name) == self.slot:
            self.fan_out(name, payload, text, None, -1, -1, None)

    def deliver(self, name: str, data: Union[str, bytes], *,
                text: Optional[bool] = None) -> None:
        """This worker's members of ``name``, then (as its owner) the other workers'."""
        payload, is_text = _payload(data, text)
        room = self._rooms.get(name)
        if room is not None and room.members:
            room.deliver(payload, text=is_text)
        self.fan_out(name, payload, is_text, None, -1, -1, None)

    # ---- the layer above and a room's owner -----------------------------------------

    def ask_owner(self, name: str, payload: bytes,
                  answer: Optional[Callable[[Optional[bytes]], None]] = None) -> None:
        """Send ``payload`` to the owner of ``name``'s ``ask_handler``; ``answer`` gets
        its answer, or ``None`` if the owner could not answer (it has no handler, or it
        was restarted meanwhile)."""
        slot = self.owner_of(name)
        tag = 0
        if answer is not None:
            tag = self._next_tag
            self._next_tag = tag % 0xFFFFFFFF + 1
            self._asked[tag] = (slot, answer, time.monotonic() + ASK_TIMEOUT)
        self._send(slot, ASK, pack_ask(self.slot, tag, name, payload))

    def expire_asks(self, now: float) -> None:
        """Answer ``None`` to the asks older than ASK_TIMEOUT (called once per tick)."""
        asked = self._asked
        while asked:
            tag = next(iter(asked))
            if asked[tag][2] > now:
                return
            self._answered(asked.pop(tag), None)

    @staticmethod
    def _answered(entry: tuple, payload: Optional[bytes]) -> None:
        try:
            entry[1](payload)
        except Exception:   # the layer above's bug: not the control channel's end
            log.exception("an answer's callback failed")

    def hold(self, name: str) -> None:
        """Keep this worker announced in ``name`` (owned elsewhere) until :meth:`release`,
        also while it has no member here: a member is on its way (its owner registered
        this worker with :meth:`add_remote` when it answered)."""
        self._held[name] = self._held.get(name, 0) + 1

    def release(self, name: str) -> None:
        left = self._held.pop(name, 0) - 1
        if left > 0:
            self._held[name] = left
            return
        room = self._rooms.get(name)
        if room is None or not room.members:
            self._tell_owner(LEAVE, self.owner_of(name), name)

    def add_remote(self, name: str, slot: int) -> None:
        """(Owner) ``slot`` has members in ``name``: it gets the room's fan-out."""
        if slot == self.slot:
            return
        self.remote.setdefault(name, set()).add(slot)
        self.update_interest(name)

    def drop_remote(self, name: str, slot: int) -> None:
        slots = self.remote.get(name)
        if slots is not None:
            slots.discard(slot)
            if not slots:
                del self.remote[name]
                self.update_interest(name)

    def on_ask(self, body: bytes) -> None:
        origin, tag, name, payload = unpack_ask(body)
        answer = None
        if tag:
            def reply(result: Optional[bytes]) -> None:
                self._send(origin, ANSWER, pack_answer(tag, result))
            answer = reply
        if self.ask_handler is None:
            if answer is not None:
                answer(None)
            return
        try:
            self.ask_handler(name, payload, origin, answer)
        except Exception:
            log.exception("the ask handler failed for room %r", name)
            if answer is not None:
                answer(None)

    def on_answer(self, body: bytes) -> None:
        tag, payload = unpack_answer(body)
        entry = self._asked.pop(tag, None)
        if entry is not None:
            self._answered(entry, payload)

    # ---- outgoing -------------------------------------------------------------------

    def announce(self, kind: int, room: ClusterRoom) -> None:
        self._tell_owner(kind, room.owner, room.name)

    def _tell_owner(self, kind: int, slot: int, name: str) -> None:
        """JOIN / LEAVE: this worker's slot and the room's name."""
        self._send(slot, kind, self.slot.to_bytes(2, "big") + name.encode(
            "utf-8", "surrogatepass"))

    def to_owner(self, slot: int, body: bytes) -> None:
        self._send(slot, PUBLISH, body)

    def fan_out(self, name: str, payload: bytes, text: bool, compress, origin: int,
                exclude_fd: int, policy) -> None:
        """The owner's half of a broadcast: one FANOUT per other slot with members."""
        slots = self.remote.get(name)
        if not slots:
            return
        plain = None
        for slot in sorted(slots):
            if slot == origin and exclude_fd >= 0:
                body = pack_room_message(name, payload, text=text, compress=compress,
                                         exclude_fd=exclude_fd, policy=policy)
            else:
                if plain is None:
                    plain = pack_room_message(name, payload, text=text, compress=compress,
                                              policy=policy)
                body = plain
            self._send(slot, FANOUT, body)

    # ---- incoming -------------------------------------------------------------------

    def on_join(self, body: bytes) -> None:
        self.add_remote(body[2:].decode("utf-8", "surrogatepass"),
                        int.from_bytes(body[:2], "big"))

    def on_leave(self, body: bytes) -> None:
        self.drop_remote(body[2:].decode("utf-8", "surrogatepass"),
                         int.from_bytes(body[:2], "big"))

    def on_publish(self, name: str, payload: bytes, text: bool, compress, origin: int,
                   exclude_fd: int, policy) -> None:
        """A broadcast for a room this worker owns: local members, then the others."""
        room = self._rooms.get(name)
        if room is not None and room.members:
            skip = _member_by_fd(room, exclude_fd) if origin == self.slot else None
            room.deliver(payload, text=text, compress=compress, exclude=skip, policy=policy)
        if self.relay is not None:
            self.relay.publish(name, payload, text)
        self.fan_out(name, payload, text, compress, origin, exclude_fd, policy)

    def on_fanout(self, name: str, payload: bytes, text: bool, compress, exclude_fd: int,
                  policy) -> None:
        room = self._rooms.get(name)
        if room is not None and room.members:
            room.deliver(payload, text=text, compress=compress,
                         exclude=_member_by_fd(room, exclude_fd), policy=policy)

    def on_restarted(self, slot: int) -> None:
        """``slot`` has a fresh worker: forget its memberships, re-announce ours to it;
        what was asked of its predecessor gets no answer (``None``)."""
        for tag in [t for t, entry in self._asked.items() if entry[0] == slot]:
            self._answered(self._asked.pop(tag), None)
        for name in list(self.remote):
            self.drop_remote(name, slot)
        for room in self:
            if (room.members or self._held.get(room.name)) and room.owner == slot \
                    and slot != self.slot:
                self.announce(JOIN, room)


def _member_by_fd(room: Room, fd: int):
    if fd < 0:
        return None
    for conn in room.members:
        if conn.fd == fd:
            return conn
    return None
