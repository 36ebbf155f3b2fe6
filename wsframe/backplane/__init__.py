"""The backplane: rooms shared by servers on several machines, through Redis.

* :mod:`~wsframe.backplane.redis` -- a Redis client on the server's own loop
  (RESP3, hiredis, reconnects with backoff);
* :mod:`~wsframe.backplane.pubsub` -- one channel per room, subscribed only
  while this process has members there;
* :mod:`~wsframe.backplane.envelope` -- what a channel carries, so that a
  ``redis-cli PUBLISH`` reaches a room;
* :mod:`~wsframe.backplane.address` -- ``redis://`` / ``rediss://`` / ``unix://`` URLs.

Turn it on with ``Server(backplane="redis://127.0.0.1:6379/0")`` or
``wsframe serve --redis URL``; it needs ``pip install 'wsframe[redis]'`` (hiredis).
"""
from wsframe.backplane.address import RedisAddress, parse_redis_url
from wsframe.backplane.pubsub import DEFAULT_PREFIX, RedisBackplane
from wsframe.backplane.redis import RedisClient, RedisError, RedisUnavailable

__all__ = ["RedisBackplane", "RedisClient", "RedisError", "RedisUnavailable", "RedisAddress",
           "parse_redis_url", "DEFAULT_PREFIX"]
