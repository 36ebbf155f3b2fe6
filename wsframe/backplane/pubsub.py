"""Rooms shared across servers through Redis pub/sub: one channel per room.

A process subscribes to a room's channel (``wsframe:room:<name>`` by
default) only while it has members in that room, and unsubscribes when the
last one leaves, so a server without members receives none of the room's
messages. The (un)subscriptions of one loop turn go out together, at the end
of the turn, as one ``SUBSCRIBE`` and one ``UNSUBSCRIBE`` of up to 512
channels each; a room that empties and fills again within a turn costs
nothing.

A broadcast reaches local members directly and the other servers through
one ``PUBLISH`` of an envelope naming this process as its origin (see
:mod:`wsframe.backplane.envelope`); the copy Redis sends back to this
process is skipped, so nobody gets a message twice. Messages from one
publisher keep their order: Redis delivers a connection's publishes in
order, and so does each server to its members.

A channel that is not a room's (gateway mode's one channel per process,
see :mod:`wsframe.server.gateway`) is subscribed with :meth:`RoomChannels.listen`,
in the same batches, and its messages go to its own handler.

When Redis is down, local delivery goes on; broadcasts that could not be
published are counted (``publish_failed``; ``BroadcastResult.published`` is
``False``), and once the connection is back every room still wanted is
subscribed again.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional, Union

from wsframe.backplane.address import RedisAddress, parse_redis_url
from wsframe.backplane.envelope import BadEnvelope, decode, encode
from wsframe.backplane.redis import RedisClient, RedisError
from wsframe.loop.eventloop import Loop

__all__ = ["RedisBackplane", "DEFAULT_PREFIX"]

log = logging.getLogger("wsframe.backplane")

DEFAULT_PREFIX = "wsframe:room:"
BATCH = 512   # channels per SUBSCRIBE / UNSUBSCRIBE command

Deliver = Callable[[str, bytes, bool], None]


class RoomChannels:
    """What a backplane shares with every other: a channel per room, the rooms wanted
    here, this process's origin, the counters, and reading a room message.

    A subclass brings the connection(s): ``_sync()`` (called at the end of a turn
    in which ``wanted`` changed) and ``publish``.
    """

    COUNTS = ("published", "publish_failed", "received", "own_skipped", "malformed",
              "not_utf8", "subscribe_commands", "unsubscribe_commands")

    def __init__(self, loop: Loop, *, prefix: str = DEFAULT_PREFIX,
                 origin: Optional[str] = None) -> None:
        self.loop = loop
        self.prefix = prefix
        self._prefix = prefix.encode("utf-8")
        self.origin = origin or os.urandom(8).hex()   # this process, in every envelope
        self._origin = self.origin.encode("ascii")
        self._deliver: Optional[Deliver] = None
        self.wanted: set[bytes] = set()       # channels this process has members for
        self._sync_due = False
        self._handlers: dict[bytes, Callable[[bytes], None]] = {}   # see listen()
        self.counts = dict.fromkeys(self.COUNTS, 0)

    def bind(self, deliver: Deliver) -> None:
        """Where messages from other processes go: ``deliver(room, payload, text)``."""
        self._deliver = deliver

    def channel(self, room: str) -> bytes:
        """The Redis channel of ``room``."""
        return self._prefix + room.encode("utf-8", "surrogatepass")

    def want(self, room: str) -> None:
        """This process has members in ``room`` now: subscribe (at the end of the turn)."""
        channel = self.channel(room)
        if channel not in self.wanted:
            self.wanted.add(channel)
            self._changed(channel)

    def unwant(self, room: str) -> None:
        """No member of ``room`` here any more: unsubscribe (at the end of the turn)."""
        channel = self.channel(room)
        if channel in self.wanted:
            self.wanted.discard(channel)
            self._changed(channel)

    def listen(self, channel: bytes, handler: Callable[[bytes], None]) -> None:
        """Subscribe to ``channel``, not a room's, in the rooms' batches (and again after
        every reconnect); ``handler(data)`` gets each message published there."""
        self._handlers[channel] = handler
        if channel not in self.wanted:
            self.wanted.add(channel)
            self._changed(channel)

    def _changed(self, channel: bytes) -> None:
        """``channel`` became wanted or unwanted: sync at the end of the turn."""
        self._schedule_sync()

    def _schedule_sync(self) -> None:
        if not self._sync_due:
            self._sync_due = True
            self.loop.at_turn_end(self._sync)

    def _published(self, reply) -> None:
        if isinstance(reply, RedisError):
            self.counts["publish_failed"] += 1

    def _message(self, channel: bytes, data: bytes) -> None:
        """A message on a room's channel: decoded, skipped if it is our own, delivered."""
        self.counts["received"] += 1
        handler = self._handlers.get(channel)
        if handler is not None:
            return handler(data)
        if not channel.startswith(self._prefix) or self._deliver is None:
            return
        try:
            message = decode(data)
        except BadEnvelope as exc:
            self.counts["malformed"] += 1
            log.debug("backplane: dropped a malformed envelope on %r: %s", channel, exc)
            return
        if message.origin == self.origin:
            self.counts["own_skipped"] += 1  # delivered here when it was broadcast
            return
        if not message.text and (not data or data[0] != 0):
            self.counts["not_utf8"] += 1   # a bare payload that is not UTF-8: sent as binary
        room = channel[len(self._prefix):].decode("utf-8", "surrogatepass")
        self._deliver(room, message.payload, message.text)


class RedisBackplane(RoomChannels):
    """A server process's rooms, shared with other processes through Redis pub/sub.

    ``deliver(room, payload, text)`` (set by :meth:`bind`) hands a message
    from another process to this one's members of ``room``.
    """

    def __init__(self, loop: Loop, url: Union[str, RedisAddress], *,
                 prefix: str = DEFAULT_PREFIX, origin: Optional[str] = None,
                 **client_options) -> None:
        super().__init__(loop, prefix=prefix, origin=origin)
        self.address = url if isinstance(url, RedisAddress) else parse_redis_url(url)
        self.client = RedisClient(loop, self.address, on_push=self._on_push,
                                  on_ready=self._on_ready, on_lost=self._on_lost,
                                  **client_options)
        self.subscribed: set[bytes] = set()   # channels asked for on this connection
        #: Called (in order) each time the connection is ready, before the resubscribing:
        #: e.g. delivery's FUNCTION LOAD, which every later command may need.
        self.ready_hooks: list[Callable[[], None]] = []

    # ---- what rooms call (bind, want, unwant: RoomChannels) -------------------------

    def start(self) -> None:
        """Connect to Redis (this process serves rooms from now on)."""
        self.client.start()

    def publish(self, room: str, payload: bytes, text: bool) -> bool:
        """Send a message to the other processes with members in ``room``; False (and
        counted in ``publish_failed``) when Redis cannot take it now."""
        self.client.start()
        if self.client.command(b"PUBLISH", self.channel(room),
                               encode(payload, text=text, origin=self.origin),
                               callback=self._published):
            self.counts["published"] += 1
            return True
        return False  # the callback counted it

    def close(self) -> None:
        self.client.close()

    def stats(self) -> dict:
        """For ``/health``: the connection's state and the counters."""
        return {**self.client.stats(), "prefix": self.prefix, "origin": self.origin,
                "rooms": len(self.wanted) - len(self._handlers), **self.counts}

    # ---- subscriptions ----------------------------------------------------------------

    def _sync(self) -> None:
        """Bring this connection's subscriptions to what is wanted, in batches."""
        self._sync_due = False
        if not self.client.ready:
            self.client.start()
            return  # _on_ready subscribes everything wanted
        add = sorted(self.wanted - self.subscribed)
        drop = sorted(self.subscribed - self.wanted)
        for i in range(0, len(add), BATCH):
            if self.client.push_command(b"SUBSCRIBE", *add[i:i + BATCH]):
                self.subscribed.update(add[i:i + BATCH])
                self.counts["subscribe_commands"] += 1
        for i in range(0, len(drop), BATCH):
            if self.client.push_command(b"UNSUBSCRIBE", *drop[i:i + BATCH]):
                self.subscribed.difference_update(drop[i:i + BATCH])
                self.counts["unsubscribe_commands"] += 1

    def _on_ready(self) -> None:
        self.subscribed.clear()  # a new connection has no subscriptions
        if self.client.server_mode == "cluster":
            log.warning("backplane: %s is a Redis Cluster node; redis+cluster:// would use "
                        "sharded pub/sub (plain pub/sub copies every message to every node)",
                        self.address)
        for hook in self.ready_hooks:
            hook()
        if self.wanted:
            self._sync()

    def _on_lost(self, why: str) -> None:
        self.subscribed.clear()

    # ---- traffic --------------------------------------------------------------------

    def _on_push(self, push: list) -> None:
        kind = push[0] if push else None
        if kind == b"message" and len(push) == 3:
            self._message(push[1], push[2])
        # subscribe / unsubscribe confirmations and other pushes need nothing
