"""Which worker owns what: rendezvous hashing over worker slots, partition keys.

Every worker has a *slot* (0 .. N-1) that outlives its process: a restarted
worker takes the slot of the one it replaces. The owner of a key is the slot
with the highest hash of (slot, key) -- rendezvous (highest random weight)
hashing -- so the same key maps to the same slot across restarts, and in any
process of the machine (a keyed BLAKE2 digest, not Python's randomized
``hash()``).

A route declares its partition key (``server.route(pattern, partition=...)``):
a ``str.format`` template over the route's parameters (``"order:{order_id}"``)
or a callable ``(request, params) -> str | None``. The key names the room the
connection's members gather in: the built-in ``/room/{name}`` route uses
``"{name}"``, and a room is owned by ``owner(room_name, slots)``.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
from typing import Callable, Optional
from urllib.parse import unquote

from wsframe.codec.http import Request
from wsframe.server.server import Server

__all__ = ["owner", "partition_key", "key_for_target", "load_app"]


def _weight(slot: int, key: bytes) -> int:
    digest = hashlib.blake2b(key, digest_size=8, salt=slot.to_bytes(16, "little")).digest()
    return int.from_bytes(digest, "little")


@functools.lru_cache(maxsize=16384)  # a room's members arrive one after another
def owner(key: str, slots: int) -> int:
    """The slot (0 .. slots-1) that owns ``key``: stable across restarts and processes."""
    if slots <= 1:
        return 0
    raw = key.encode("utf-8", "surrogatepass")
    best, best_weight = 0, -1
    for slot in range(slots):
        weight = _weight(slot, raw)
        if weight > best_weight:
            best, best_weight = slot, weight
    return best


def partition_key(server: Server, request: Request) -> Optional[str]:
    """The partition key of an upgrade request for ``server``'s routes (None: no key)."""
    return key_for_target(server, request.target, lambda: request)


def key_for_target(server: Server, target: str,
                   make_request: Callable[[], Request]) -> Optional[str]:
    """The key for a request-target (``/track/42?x=1``); ``make_request()`` parses the
    whole head, called only for a route whose partition is a callable."""
    found = server.routes.match_pattern(unquote(target.partition("?")[0]))
    if found is None:
        return None
    pattern, _endpoint, params = found
    spec = server.routes.partitions.get(pattern)
    if spec is None:
        return None
    if callable(spec):
        key = spec(make_request(), params)
        return None if key is None else str(key)
    try:
        return str(spec).format_map(params)
    except (KeyError, IndexError, ValueError):
        return None


def load_app(spec: str) -> Server:
    """Import ``module:attribute`` naming a :class:`Server` or a factory returning one."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"APP must look like module:attribute, not {spec!r}")
    target = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not isinstance(target, Server) and callable(target):
        target = target()
    if not isinstance(target, Server):
        raise TypeError(f"{spec} is neither a wsframe Server nor a factory returning one")
    return target
