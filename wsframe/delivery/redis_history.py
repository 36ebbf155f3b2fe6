"""Room history in Redis, written atomically with the offset and the publish; and the
sessions' dedupe windows, so that a restarted server still knows what it acknowledged.

With the backplane on, :class:`~wsframe.delivery.server.Delivery` keeps each
room's epoch and offset in a hash and its publications in a stream, and
publishes through one Redis function (``FUNCTION LOAD``, Redis >= 7), so
the offset increment, the history entry and the ``PUBLISH`` happen as one
step. A restarted server, or another one, continues the same epoch: what
Redis kept is not lost. Keys, for room ``R`` and prefix ``wsframe:``:

* ``wsframe:meta:{R}`` -- hash ``epoch``, ``offset`` (expires ``history_age``
  seconds after the last publication);
* ``wsframe:history:{R}`` -- stream, entry ids ``0-<offset>``, field ``d``
  (the data as JSON), ``MAXLEN ~ history_size``, same expiry.

* ``wsframe:session:{S}`` -- list, the ids of session ``S``'s acknowledged
  messages, oldest first, at most ``dedupe_window`` of them (expires
  ``session_ttl`` seconds after the last one: a client retries a message
  only while it waits for its ack).

(``{R}`` is a Redis Cluster hash tag: both keys of a room are in one slot.)

Every server, the publisher included, delivers a publication when Redis's
pub/sub push brings it: one order for everybody, Redis's. A backend in any
language publishes the same way::

    redis-cli FCALL wsframe_publish 2 'wsframe:meta:{order:42}' 'wsframe:history:{order:42}' \\
        order:42 '{"lat":52.5}' 1000 300 "$(openssl rand -hex 4)" \\
        'wsframe:room:' 'wsframe:room:wsframe.v1:' json

(the last argument: ``json``, or ``text`` when the data is a JSON string that
plain members should get as the bare string).

A joining client with a position gets ``wsframe_join``'s answer (current
epoch and offset, and the entries after its offset, or why not) in the same
turn in which the conn joins the room's channel, after its SUBSCRIBE, so
nothing slips between history and live.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Optional

from wsframe.backplane.redis import RedisError

__all__ = ["RedisHistory", "LIBRARY"]

LIBRARY = r"""#!lua name=wsframe
local function publish(keys, args)
  local room, data, size, age, new_epoch = args[1], args[2], args[3], args[4], args[5]
  local plain_channel, v1_channel, plain_kind = args[6] .. room, args[7] .. room, args[8]
  local epoch = redis.call('HGET', keys[1], 'epoch')
  if not epoch then
    epoch = new_epoch
    redis.call('HSET', keys[1], 'epoch', epoch)
  end
  local offset = redis.call('HINCRBY', keys[1], 'offset', 1)
  redis.call('XADD', keys[2], 'MAXLEN', '~', size, '0-' .. offset, 'd', data)
  redis.call('EXPIRE', keys[1], age)
  redis.call('EXPIRE', keys[2], age)
  local frame = '{"op":"pub","room":' .. cjson.encode(room) .. ',"epoch":"' .. epoch ..
                '","offset":' .. offset .. ',"data":' .. data .. '}'
  redis.call('PUBLISH', v1_channel, '\0type=text\n' .. frame)
  if plain_kind == 'text' then   -- the data was a JSON string: plain members get the string
    redis.call('PUBLISH', plain_channel, '\0type=text\n' .. cjson.decode(data))
  else
    redis.call('PUBLISH', plain_channel, '\0type=text\n' .. data)
  end
  return {offset, epoch}
end

local function join(keys, args)
  local epoch, offset, new_epoch, age = args[1], tonumber(args[2]), args[3], args[4]
  if redis.call('HSETNX', keys[1], 'epoch', new_epoch) == 1 then
    redis.call('HSET', keys[1], 'offset', 0)
    redis.call('EXPIRE', keys[1], age)
  end
  local current = redis.call('HMGET', keys[1], 'epoch', 'offset')
  local now_epoch, now_offset = current[1], tonumber(current[2] or '0')
  if epoch == '' then return {now_epoch, now_offset, 'joined'} end
  if epoch ~= now_epoch or offset > now_offset then return {now_epoch, now_offset, 'epoch'} end
  if offset == now_offset then return {now_epoch, now_offset, 'recovered'} end
  local entries = redis.call('XRANGE', keys[2], '0-' .. (offset + 1), '+')
  if #entries == 0 or entries[1][1] ~= '0-' .. (offset + 1) then
    return {now_epoch, now_offset, 'trimmed'}
  end
  local out = {now_epoch, now_offset, 'recovered'}
  for i, entry in ipairs(entries) do
    out[#out + 1] = string.sub(entry[1], 3)
    out[#out + 1] = entry[2][2]
  end
  return out
end

local function seen(keys, args)
  redis.call('RPUSH', keys[1], unpack(args, 3))
  redis.call('LTRIM', keys[1], -tonumber(args[1]), -1)
  redis.call('EXPIRE', keys[1], args[2])
  return 1
end

redis.register_function('wsframe_publish', publish)
redis.register_function('wsframe_seen', seen)
redis.register_function('wsframe_join', join)
"""


class RedisHistory:
    """The Redis side of Delivery: publish through ``wsframe_publish``, rejoin through
    ``wsframe_join`` (see the module docstring)."""

    def __init__(self, backplane, *, history_size: int, history_age: float,
                 key_prefix: str = "wsframe:", v1_room_prefix: str = "") -> None:
        self.backplane = backplane
        self.client = backplane.client
        self.history_size = history_size
        self.history_age = max(1, int(history_age))
        self.key_prefix = key_prefix
        self.v1_room_prefix = v1_room_prefix
        self.loaded = False
        backplane.ready_hooks.append(self._load)
        if self.client.ready:
            self._load()

    def _load(self) -> None:
        """FUNCTION LOAD before anything else on this connection (commands keep order)."""
        self.client.command("FUNCTION", "LOAD", "REPLACE", LIBRARY, callback=self._loaded)

    def _loaded(self, reply) -> None:
        self.loaded = not isinstance(reply, RedisError)
        self.error = None if self.loaded else str(reply)

    def keys(self, room: str) -> tuple[str, str]:
        return (f"{self.key_prefix}meta:{{{room}}}", f"{self.key_prefix}history:{{{room}}}")

    def publish(self, room: str, data_json: str, plain_is_text: bool,
                callback: Optional[Callable] = None) -> bool:
        """Offset, history entry and PUBLISH (v1 frame and plain data) in one step."""
        meta, stream = self.keys(room)
        prefix = self.backplane.prefix
        return self.client.command(
            "FCALL", "wsframe_publish", "2", meta, stream, room, data_json,
            str(self.history_size), str(self.history_age), os.urandom(4).hex(),
            prefix, prefix + self.v1_room_prefix, "text" if plain_is_text else "json",
            callback=callback)

    def join(self, room: str, epoch: Optional[str], offset: int, callback: Callable) -> bool:
        """``callback(reply)``: ``[epoch, offset, verdict, offset1, data1, ...]`` (verdict
        ``joined``, ``recovered``, ``epoch`` or ``trimmed``) or a RedisError."""
        meta, stream = self.keys(room)
        return self.client.command(
            "FCALL", "wsframe_join", "2", meta, stream, epoch or "", str(offset),
            os.urandom(4).hex(), str(self.history_age), callback=callback)

    # ---- sessions ---------------------------------------------------------------------

    def session_key(self, session: str) -> str:
        return f"{self.key_prefix}session:{{{session}}}"

    def remember(self, session: str, ids: Iterable[str], window: int, ttl: float) -> bool:
        """Add acknowledged ids to the session's window (one command, not waited for)."""
        return self.client.command(
            "FCALL", "wsframe_seen", "1", self.session_key(session), str(window),
            str(max(1, int(ttl))), *ids)

    def load_session(self, session: str, callback: Callable) -> bool:
        """``callback(reply)``: the session's acknowledged ids (``[]``: unknown or
        expired) or a RedisError."""
        return self.client.command("LRANGE", self.session_key(session), "0", "-1",
                                   callback=callback)
