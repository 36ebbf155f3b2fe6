"""The backplane: rooms shared by servers on several machines, through Redis.

* :mod:`~wsframe.backplane.redis` -- a Redis client on the server's own loop
  (RESP3, hiredis, reconnects with backoff);
* :mod:`~wsframe.backplane.pubsub` -- one channel per room, subscribed only
  while this process has members there;
* :mod:`~wsframe.backplane.cluster` -- the same through a Redis Cluster's
  sharded pub/sub (``SSUBSCRIBE`` / ``SPUBLISH``), following its slot map;
* :mod:`~wsframe.backplane.envelope` -- what a channel carries, so that a
  ``redis-cli PUBLISH`` reaches a room;
* :mod:`~wsframe.backplane.address` -- ``redis://`` / ``rediss://`` / ``unix://`` URLs,
  and ``redis+cluster://host:port[,host:port...]`` for a cluster.

Turn it on with ``Server(backplane="redis://127.0.0.1:6379/0")`` or
``wsframe serve --redis URL``; it needs ``pip install 'wsframe[redis]'`` (hiredis).
"""
from typing import Union

from wsframe.backplane.address import RedisAddress, is_cluster_url, parse_redis_url
from wsframe.backplane.cluster import RedisClusterBackplane
from wsframe.backplane.pubsub import DEFAULT_PREFIX, RedisBackplane
from wsframe.backplane.redis import RedisClient, RedisError, RedisUnavailable
from wsframe.loop.eventloop import Loop

__all__ = ["RedisBackplane", "RedisClusterBackplane", "RedisClient", "RedisError",
           "RedisUnavailable", "RedisAddress", "parse_redis_url", "DEFAULT_PREFIX",
           "backplane_for"]


def backplane_for(loop: Loop, url: str,
                  **options) -> Union[RedisBackplane, RedisClusterBackplane]:
    """The backplane a URL names: ``redis+cluster://`` (or ``rediss+cluster://``) a
    :class:`RedisClusterBackplane`, any other Redis URL a :class:`RedisBackplane`;
    ``options`` go to it (e.g. ``prefix=``)."""
    if is_cluster_url(url):
        return RedisClusterBackplane(loop, url, **options)
    return RedisBackplane(loop, url, **options)
