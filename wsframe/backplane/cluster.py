"""Rooms across servers through a Redis Cluster's sharded pub/sub (Redis >= 7).

Plain ``PUBLISH`` in a cluster is copied to every node over the cluster bus,
so each node carries the whole cluster's pub/sub traffic. Sharded pub/sub
(``SSUBSCRIBE`` / ``SPUBLISH`` / ``SUNSUBSCRIBE``) keeps a channel on the
shard that owns its hash slot, like a key: a room's messages touch one
primary (and its replicas) only. Select it with a ``redis+cluster://`` URL
(see :mod:`wsframe.backplane.address`); the rest is what
:class:`~wsframe.backplane.pubsub.RedisBackplane` does (one channel per room,
subscribed while this process has members there, the origin envelope).

* **Slots** -- a channel's slot is CRC16 (XMODEM) of the channel mod 16384,
  of only the part between the first ``{`` and the next ``}`` when that part
  is not empty (the Redis Cluster specification's hash tags): rooms
  ``{order:42}:driver`` and ``{order:42}:watchers`` share a slot and a node.
* **The slot map** is read with ``CLUSTER SHARDS`` (``CLUSTER SLOTS`` where
  that is unknown) from any node this process is connected to, first from a
  seed of the URL. There is one :class:`~wsframe.backplane.redis.RedisClient`
  per primary: publishes may go to any of them, subscriptions go to the
  primaries that own slots of wanted rooms.
* **Batching** -- all channels of one ``SSUBSCRIBE`` must hash to one slot
  (Redis answers ``CROSSSLOT`` otherwise), so the subscriptions of a turn go
  out as one command per slot, up to 512 channels each; the commands of a
  turn for one node leave in one write, followed by a ``PING`` that closes
  the batch (:meth:`RedisClient.push_batch`: a refused command is an error
  reply, the confirmations are pushes). Rooms with distinct names mostly fall
  in distinct slots, so that is about one command per room; rooms that share
  a hash tag share a command.
* **The map changes** -- a node that gives a slot away ends its
  subscriptions there with an ``sunsubscribe`` push; a refused
  ``SSUBSCRIBE`` or an ``SPUBLISH`` answered ``MOVED`` (or ``-ASK``) points to
  the new owner; a lost connection may mean a failover. Each of these reads
  the map again and subscribes where the rooms are now. A publish answered
  ``MOVED`` is sent again to the new owner (once per redirect, at most
  :data:`MAX_REDIRECTS`), and the slot's later publishes wait until those in
  flight have come back, so order per room from one publisher holds across a
  move. ``-ASK`` retries at the named node after ``ASKING`` without changing
  the map (Redis serves shard channels from the old owner until a migration
  ends, so it is not expected for them).
"""
from __future__ import annotations

import logging
from binascii import crc_hqx
from typing import Optional, Union

from wsframe.backplane.address import RedisAddress, parse_cluster_url
from wsframe.backplane.envelope import encode
from wsframe.backplane.pubsub import BATCH, DEFAULT_PREFIX, RoomChannels
from wsframe.backplane.redis import RedisClient, RedisError, RedisUnavailable
from wsframe.loop.eventloop import Loop, TimerHandle

__all__ = ["RedisClusterBackplane", "key_slot", "crc16", "SLOTS", "parse_shards",
           "parse_cluster_slots"]

log = logging.getLogger("wsframe.backplane")

SLOTS = 16384          # hash slots of a Redis Cluster
MAX_REDIRECTS = 3      # MOVED/ASK answers one publish may follow
MAX_HELD = 10_000      # publishes waiting for a moved slot (beyond: refused, counted)
HELD_FOR = 5.0         # seconds a held publish waits for its new node before it fails
RETRY_MAX = 5.0        # seconds, the longest wait before the map is read again after trouble


def crc16(data: bytes) -> int:
    """CRC16/XMODEM (polynomial 0x1021, initial 0), the Redis Cluster key hash: the
    standard library's CRC-CCITT in C (``binascii.crc_hqx``) with an initial 0."""
    return crc_hqx(data, 0)


def key_slot(key: bytes) -> int:
    """The hash slot of a key or shard channel (Redis Cluster specification, "Hash tags":
    only the part between the first ``{`` and the next ``}`` counts, if not empty)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc16(key) % SLOTS


class _Node:
    """One primary: its connection and the channels subscribed on it."""

    __slots__ = ("key", "client", "subscribed")

    def __init__(self, key: tuple[str, int], client: RedisClient) -> None:
        self.key = key
        self.client = client
        self.subscribed: set[bytes] = set()   # asked for on this connection

    def __repr__(self) -> str:
        return f"<node {self.key[0]}:{self.key[1]} {self.client.state}>"


class _Publish:
    """An SPUBLISH on its way: sent again if a node answers MOVED or ASK."""

    __slots__ = ("seq", "slot", "channel", "data", "redirects", "node")

    def __init__(self, seq: int, slot: int, channel: bytes, data: bytes) -> None:
        self.seq, self.slot, self.channel, self.data = seq, slot, channel, data
        self.redirects = 0
        self.node: Optional[_Node] = None


class RedisClusterBackplane(RoomChannels):
    """A server process's rooms, shared through a Redis Cluster's sharded pub/sub.

    The same interface as :class:`~wsframe.backplane.pubsub.RedisBackplane`
    (``bind``, ``want``, ``unwant``, ``publish``, ``start``, ``close``,
    ``stats``); ``url`` is a ``redis+cluster://`` URL or its seed addresses;
    ``client_options`` go to each node's :class:`RedisClient`.
    """

    COUNTS = RoomChannels.COUNTS + (
        "moved", "asked", "redirect_failed", "slot_moves", "refused", "map_reads")

    def __init__(self, loop: Loop, url: Union[str, list[RedisAddress]], *,
                 prefix: str = DEFAULT_PREFIX, origin: Optional[str] = None,
                 **client_options) -> None:
        super().__init__(loop, prefix=prefix, origin=origin)
        self.seeds = parse_cluster_url(url) if isinstance(url, str) else list(url)
        if not self.seeds:
            raise ValueError("a Redis Cluster backplane needs at least one seed node")
        self._login = self.seeds[0]
        self._client_options = client_options
        self.nodes: dict[tuple[str, int], _Node] = {}
        self.slots: list[Optional[_Node]] = [None] * SLOTS
        self.mapped = False            # a slot map has been read
        self.state = "idle"            # idle, started, closed
        self._reading = False          # a CLUSTER SHARDS is on its way
        self._read_again = False
        self._timer: Optional[TimerHandle] = None
        self._polling = False          # the timer reads the map again for a node not ready
        self._ask: Optional[_Node] = None   # the node to read the map from next
        self._retry = 0                # consecutive troubles: the next map read waits longer
        self._seq = 0
        self._inflight: dict[int, int] = {}           # slot -> SPUBLISH not yet answered
        self._held: dict[int, list[_Publish]] = {}    # slot -> publishes waiting (MOVED)
        self._held_count = 0
        self._slot_cache: dict[bytes, int] = {}       # wanted or subscribed channels' slots
        self._at: dict[bytes, _Node] = {}             # channel -> the node it is subscribed on
        self._dirty: set[bytes] = set()               # channels to look at in the next sync
        self._full = False                            # the next sync looks at every channel
        self.last_error: Optional[str] = None         # why the slot map could not be read

    # ---- what rooms call (bind, want, unwant: RoomChannels) -------------------------

    @property
    def ready(self) -> bool:
        """The map is known and every primary that owns slots is connected."""
        return self.mapped and all(node.client.ready for node in self._owners())

    def start(self) -> None:
        """Connect to the seed nodes and read the slot map (once)."""
        if self.state != "idle":
            return
        self.state = "started"
        for seed in self.seeds:
            self._node(seed.host, seed.port)

    def slot(self, channel: bytes) -> int:
        """``channel``'s hash slot."""
        slot = self._slot_cache.get(channel)
        return key_slot(channel) if slot is None else slot

    def node_for(self, room: str) -> Optional[RedisAddress]:
        """The primary that serves ``room``'s channel now, as far as this process knows."""
        node = self.slots[key_slot(self.channel(room))]
        return node.client.address if node is not None else None

    def publish(self, room: str, payload: bytes, text: bool) -> bool:
        """Send a message to the other processes with members in ``room`` (one
        ``SPUBLISH`` to the node of its slot); False (and counted in
        ``publish_failed``) when that node cannot take it now."""
        self.start()
        channel = self.channel(room)
        self._seq += 1
        message = _Publish(self._seq, self.slot(channel),
                           channel, encode(payload, text=text, origin=self.origin))
        if self._send(message):
            self.counts["published"] += 1
            return True
        self.counts["publish_failed"] += 1
        return False

    def close(self) -> None:
        """Disconnect from every node and stay disconnected."""
        self.state = "closed"
        self._cancel_timer()
        self._held.clear()
        self._held_count = 0
        for node in self.nodes.values():
            node.client.close()

    def stats(self) -> dict:
        """For ``/health``: ``state`` is ``ready`` when the map is known and every primary
        that owns slots is connected; each node's connection; the counters."""
        owners = self._owners()
        if self.state == "closed":
            state = "closed"
        elif not self.mapped:
            state = "connecting"
        else:
            state = "ready" if all(n.client.ready for n in owners) else "degraded"
        covered = sum(node is not None for node in self.slots)
        return {"state": state, "cluster": True,
                "nodes": {f"{n.key[0]}:{n.key[1]}": {**n.client.stats(),
                                                     "subscribed": len(n.subscribed)}
                          for n in self.nodes.values()},
                "slots_covered": covered, "last_error": self.last_error,
                "prefix": self.prefix, "origin": self.origin,
                "rooms": len(self.wanted), "held": self._held_count, **self.counts}

    def _changed(self, channel: bytes) -> None:
        if channel not in self._slot_cache:
            self._slot_cache[channel] = key_slot(channel)
        self._dirty.add(channel)
        self._schedule_sync()

    # ---- nodes ------------------------------------------------------------------------

    def _node(self, host: str, port: int) -> _Node:
        """The node at host:port, connecting to it if it is new."""
        key = (host, port)
        node = self.nodes.get(key)
        if node is None:
            login = self._login
            address = RedisAddress(host=host, port=port, username=login.username,
                                   password=login.password, tls=login.tls)
            client = RedisClient(self.loop, address,
                                 on_push=lambda push: self._on_push(node, push),
                                 on_ready=lambda: self._on_ready(node),
                                 on_lost=lambda why: self._on_lost(node, why),
                                 **self._client_options)
            node = self.nodes[key] = _Node(key, client)
            if self.state == "started":
                client.start()
        return node

    def _owners(self) -> list[_Node]:
        return list({id(n): n for n in self.slots if n is not None}.values())

    def _forget(self, node: _Node) -> None:
        """``node``'s connection is new or gone: nothing is subscribed there."""
        at = self._at
        for channel in node.subscribed:
            if at.get(channel) is node:
                del at[channel]
                self._dirty.add(channel)
        node.subscribed.clear()

    def _on_ready(self, node: _Node) -> None:
        self._forget(node)   # a new connection has no subscriptions
        if (not self.mapped and not self._reading) or self._read_again:
            self._read_map()
        elif self._polling and self.ready and None not in self.slots:
            self._polling = False   # the map was read waiting for this node: no need now
            self._cancel_timer()
        if self.mapped:
            self._full = True   # the rooms of this node's slots, which were skipped
            self._schedule_sync()
            self._flush_held()

    def _on_lost(self, node: _Node, why: str) -> None:
        self._forget(node)        # its client reconnects by itself, then _on_ready
        self._read_map_later()    # a failover may have put its slots elsewhere

    # ---- the slot map -----------------------------------------------------------------

    def _read_map(self, ask: Optional[_Node] = None) -> None:
        """Ask a connected node for the slot map (one question at a time): ``ask`` if
        it is connected (a node that has just given a slot away knows where it went;
        others may learn it later, by gossip), else a primary, else any node."""
        self._cancel_timer()
        self._polling = False
        if ask is not None:
            self._ask = ask
        if self.state != "started":
            return
        if self._reading:
            self._read_again = True
            return
        ready = [n for n in self.nodes.values() if n.client.ready]
        if not ready:
            for seed in self.seeds:   # every known node down: the seeds again
                self._node(seed.host, seed.port)
            self._read_again = True    # the first one ready reads it
            return
        owners = self._owners()
        node = self._ask if self._ask in ready else next((n for n in ready if n in owners),
                                                          ready[0])
        self._ask = None
        self._reading, self._read_again = True, False
        self.counts["map_reads"] += 1
        node.client.command(b"CLUSTER", b"SHARDS",
                            callback=lambda reply: self._map_read(node, reply, shards=True))

    def _map_read(self, node: _Node, reply, *, shards: bool) -> None:
        if isinstance(reply, RedisError) and shards and not isinstance(reply, RedisUnavailable):
            # Redis < 7 or a proxy without CLUSTER SHARDS: CLUSTER SLOTS has the same facts
            node.client.command(b"CLUSTER", b"SLOTS",
                                callback=lambda reply: self._map_read(node, reply, shards=False))
            return
        self._reading = False
        if self.state != "started":
            return
        try:
            if isinstance(reply, Exception):
                raise reply
            ranges = (parse_shards if shards else parse_cluster_slots)(
                reply, self._login.tls, node.key[0])
            if not ranges:
                raise ValueError("no slot has a primary with a known address")
        except (RedisError, ValueError) as exc:
            self.last_error = f"slot map from {node.key[0]}:{node.key[1]}: {exc}"
            log.warning("backplane: cannot read the %s", self.last_error)
            return self._read_map_later()
        self.last_error = None
        self._apply(ranges)

    def _apply(self, ranges: list[tuple[int, int, str, int]]) -> None:
        slots: list[Optional[_Node]] = [None] * SLOTS
        for start, end, host, port in ranges:
            owner = self._node(host, port)
            slots[start:end + 1] = [owner] * (end - start + 1)
        self.slots = slots
        self.mapped = True
        owners = self._owners()
        for key, node in list(self.nodes.items()):   # replicas, old seeds, removed nodes
            if node not in owners:
                self._forget(node)
                node.client.close()
                del self.nodes[key]
        log.debug("backplane: slot map of %d primaries, %d of %d slots served",
                  len(owners), sum(n is not None for n in slots), SLOTS)
        self._full = True
        self._sync()
        self._flush_held()
        if self._read_again:
            self._read_map()
        elif not self.ready or None in slots:
            self._read_map_later()   # a node down, or slots nobody serves: look again soon
            self._polling = True
        elif not self.wanted:
            self._retry = 0   # (with rooms, an SSUBSCRIBE confirmed resets it)

    def _read_map_later(self) -> None:
        if self.state != "started" or self._timer is not None:
            return
        delay = min(RETRY_MAX, 0.05 * (2 ** self._retry))
        self._retry += 1
        self._timer = self.loop.call_later(delay, self._read_map)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- subscriptions ----------------------------------------------------------------

    def _sync(self) -> None:
        """Bring each node's subscriptions to the wanted rooms whose slots it owns: one
        SSUBSCRIBE / SUNSUBSCRIBE per slot, one write per node. Looks at the channels
        that changed since the last sync, or at all of them after the map changed or
        a node (re)connected."""
        self._sync_due = False
        if not self.mapped:
            self.start()
            return   # the map's arrival syncs
        if self._full:
            self._full = False
            self._dirty.clear()
            candidates = self.wanted | self._at.keys()
        else:
            candidates, self._dirty = self._dirty, set()
        add: dict[_Node, dict[int, list[bytes]]] = {}
        drop: dict[_Node, dict[int, list[bytes]]] = {}
        wanted, slots, at = self.wanted, self.slots, self._at
        for channel in candidates:
            slot = self.slot(channel)
            where = at.get(channel)
            owner = slots[slot] if channel in wanted else None
            if where is owner:
                if where is None and channel not in wanted:
                    self._slot_cache.pop(channel, None)   # neither wanted nor subscribed
                continue   # (a wanted room in a slot nobody serves: when the map has it)
            if where is not None:
                drop.setdefault(where, {}).setdefault(slot, []).append(channel)
            if owner is not None:
                add.setdefault(owner, {}).setdefault(slot, []).append(channel)
        for node in set(add) | set(drop):
            if not node.client.ready:
                continue   # its _on_ready syncs everything again
            commands, added, dropped = [], [], []
            for kind, plan, done in ((b"SSUBSCRIBE", add, added),
                                     (b"SUNSUBSCRIBE", drop, dropped)):
                for channels in plan.get(node, {}).values():
                    channels.sort()
                    for i in range(0, len(channels), BATCH):
                        commands.append((kind, *channels[i:i + BATCH]))
                    done.extend(channels)
            if not node.client.push_batch(commands, lambda error, node=node, added=added:
                                          self._refused(node, added, error)):
                self._dirty.update(added, dropped)   # not sent: next time
                continue
            for channel in dropped:
                if at.get(channel) is node:
                    del at[channel]
                node.subscribed.discard(channel)
                if channel not in wanted:
                    self._slot_cache.pop(channel, None)
            for channel in added:
                at[channel] = node
            node.subscribed.update(added)
            self.counts["subscribe_commands"] += sum(c[0] == b"SSUBSCRIBE" for c in commands)
            self.counts["unsubscribe_commands"] += sum(c[0] != b"SSUBSCRIBE" for c in commands)

    def _refused(self, node: _Node, added: list[bytes], error: RedisError) -> None:
        """A node refused a command of a batch (MOVED, CLUSTERDOWN...) or was lost."""
        if isinstance(error, RedisUnavailable):
            return   # lost: _on_lost has forgotten its subscriptions
        self.counts["refused"] += 1
        log.debug("backplane: %s refused a subscription: %s", node, error)
        # which of the batch failed is not said: ask for all of it again where the map
        # says, once it has been read again (not at once: CLUSTERDOWN lasts a while)
        for channel in added:
            if self._at.get(channel) is node:
                del self._at[channel]
            node.subscribed.discard(channel)
        moved = _redirect(str(error), node)
        if moved is not None and moved[0] == "MOVED":
            _, slot, host, port = moved
            self.slots[slot] = self._ask = self._node(host, port)
        self._read_map_later()

    # ---- traffic --------------------------------------------------------------------

    def _on_push(self, node: _Node, push: list) -> None:
        kind = push[0] if push else None
        if kind == b"smessage" and len(push) == 3:
            self._message(push[1], push[2])
        elif kind == b"sunsubscribe" and len(push) >= 2 and push[1] in node.subscribed:
            # not asked for: the node gave the slot away; subscribe where it went
            channel = push[1]
            node.subscribed.discard(channel)
            if self._at.get(channel) is node:
                del self._at[channel]
            self.counts["slot_moves"] += 1
            self._read_map(ask=node)   # its answer syncs every channel
        elif kind == b"ssubscribe":
            self._retry = 0

    def _send(self, message: _Publish, node: Optional[_Node] = None,
              asking: bool = False) -> bool:
        """SPUBLISH ``message`` to the slot's node (or ``node``, after an ASK); held
        while publishes for its slot that were answered MOVED are on their way again."""
        slot = message.slot
        held = self._held.get(slot)
        if held is not None and node is None:
            if self._held_count >= MAX_HELD:
                return False
            held.append(message)
            self._held_count += 1
            return True
        target = node or self.slots[slot]
        if target is None:
            self._read_map_later()
            return False
        message.node = target
        if asking and not target.client.command(b"ASKING"):
            return False
        if not target.client.command(b"SPUBLISH", message.channel, message.data,
                                     callback=lambda reply: self._answered(message, reply)):
            return False
        self._inflight[slot] = self._inflight.get(slot, 0) + 1
        return True

    def _answered(self, message: _Publish, reply) -> None:
        slot = message.slot
        left = self._inflight.get(slot, 1) - 1
        if left:
            self._inflight[slot] = left
        else:
            self._inflight.pop(slot, None)
        if isinstance(reply, RedisError):
            redirect = None if isinstance(reply, RedisUnavailable) else \
                _redirect(str(reply), message.node)
            if redirect is None:
                self.counts["publish_failed"] += 1
            elif message.redirects >= MAX_REDIRECTS or self.state != "started":
                self.counts["redirect_failed"] += 1
                self.counts["publish_failed"] += 1
            else:
                message.redirects += 1
                kind, moved_slot, host, port = redirect
                if kind == "ASK":
                    self.counts["asked"] += 1
                    if not self._send(message, self._node(host, port), asking=True):
                        self.counts["publish_failed"] += 1
                else:
                    self.counts["moved"] += 1
                    self.slots[moved_slot] = owner = self._node(host, port)
                    self._hold(message)
                    self._read_map(ask=owner)
        if not left and slot in self._held:
            self._flush_held()

    def _hold(self, message: _Publish) -> None:
        """Keep ``message`` until the slot's publishes in flight have come back."""
        held = self._held.get(message.slot)
        if held is None:
            held = self._held[message.slot] = []
            self.loop.call_later(HELD_FOR, self._give_up, message.slot, held)
        held.append(message)
        self._held_count += 1

    def _flush_held(self) -> None:
        """Send again, in their first order, the held publishes of every slot with none
        in flight whose node is connected."""
        for slot in list(self._held):
            node = self.slots[slot]
            if self._inflight.get(slot) or node is None or not node.client.ready:
                continue
            held = self._held.pop(slot)
            self._held_count -= len(held)
            for message in sorted(held, key=lambda m: m.seq):
                if not self._send(message):
                    self.counts["publish_failed"] += 1

    def _give_up(self, slot: int, held: list[_Publish]) -> None:
        if self._held.get(slot) is held:
            del self._held[slot]
            self._held_count -= len(held)
            self.counts["redirect_failed"] += len(held)
            self.counts["publish_failed"] += len(held)


def _redirect(error: str, node: Optional[_Node]) -> Optional[tuple[str, int, str, int]]:
    """``MOVED 3999 127.0.0.1:6381`` / ``ASK ...`` -> (kind, slot, host, port); an empty
    host (``:6381``) is the host of the node that answered."""
    parts = error.split()
    if len(parts) != 3 or parts[0] not in ("MOVED", "ASK") or not parts[1].isdigit():
        return None
    host, _, port = parts[2].rpartition(":")
    if not port.isdigit() or int(parts[1]) >= SLOTS:
        return None
    if not host and node is not None:
        host = node.key[0]
    return parts[0], int(parts[1]), host.strip("[]"), int(port)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _endpoint(endpoint, asked_host: str) -> Optional[str]:
    """A node's preferred endpoint: empty means the host this answer came from, ``?``
    an endpoint nobody knows (that node is left out until the map is read again)."""
    text = _text(endpoint) if endpoint is not None else ""
    if text == "?":
        return None
    return text or asked_host


def parse_shards(reply, tls: bool, asked_host: str) -> list[tuple[int, int, str, int]]:
    """``CLUSTER SHARDS`` -> [(first slot, last slot, primary host, port)]."""
    if not isinstance(reply, list):
        raise ValueError(f"CLUSTER SHARDS answered {reply!r:.80}")
    ranges = []
    for shard in reply:   # RESP3: a map per shard, with a map per node
        if not isinstance(shard, dict):
            raise ValueError(f"a CLUSTER SHARDS entry is a map: {shard!r:.80}")
        slots = shard.get(b"slots") or []
        primary = next((n for n in shard.get(b"nodes") or []
                        if isinstance(n, dict) and n.get(b"role") == b"master"), None)
        if primary is None or not slots:
            continue   # a shard without slots (a new node) or without a primary now
        host = _endpoint(primary.get(b"endpoint", primary.get(b"ip")), asked_host)
        port = primary.get(b"tls-port") if tls else primary.get(b"port")
        if host is None or not isinstance(port, int):
            continue
        for start, end in zip(slots[::2], slots[1::2]):
            ranges.append(_checked(start, end, host, port))
    return ranges


def parse_cluster_slots(reply, tls: bool, asked_host: str) -> list[tuple[int, int, str, int]]:
    """``CLUSTER SLOTS`` -> [(first slot, last slot, primary host, port)] (with TLS the
    port it lists is the TLS port, when the cluster is configured for it)."""
    if not isinstance(reply, list):
        raise ValueError(f"CLUSTER SLOTS answered {reply!r:.80}")
    ranges = []
    for entry in reply:
        if not isinstance(entry, list) or len(entry) < 3 or not isinstance(entry[2], list):
            raise ValueError(f"a CLUSTER SLOTS entry is [start, end, [host, port, ...]]: "
                             f"{entry!r:.80}")
        host = _endpoint(entry[2][0] if entry[2] else None, asked_host)
        port = entry[2][1] if len(entry[2]) > 1 else None
        if host is None or not isinstance(port, int):
            continue
        ranges.append(_checked(entry[0], entry[1], host, port))
    return ranges


def _checked(start, end, host: str, port: int) -> tuple[int, int, str, int]:
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end < SLOTS):
        raise ValueError(f"a slot range is two numbers from 0 to {SLOTS - 1}: {start!r}-{end!r}")
    if not 0 < port < 65536:
        raise ValueError(f"a node's port is from 1 to 65535, not {port}")
    return start, end, host, port
