"""A backend for ``wsframe serve --gateway``: plain Python and redis-py, nothing of wsframe.

It reads what clients send from the gateway's streams with a consumer group
(start several: they share the work), answers, and acknowledges each entry
with ``XACK`` once it is answered:

* ``open``: ``welcome <conn id>`` to that connection only;
* a message from a connection in a room: to the whole room (its members on
  every server), text as text, binary as binary;
* a message from a connection without a room: back to that connection;
* ``close``: nothing to answer (a real backend forgets the connection here).

Entries another consumer read but never acknowledged (it crashed) are taken
over with ``XAUTOCLAIM`` once they have been pending ``--min-idle-ms``.

    pip install redis
    python docs/examples/gateway_backend.py --redis redis://127.0.0.1:6379/0 \\
        --group backend --consumer "$(hostname)-$$"

The conventions (see docs/howto/gateway.md): stream ``wsframe:in:<route>``;
to a room, ``PUBLISH wsframe:room:<room> <message>``; to one connection,
``PUBLISH wsframe:conn:<origin> "\\x00conn=<id>\\n<message>"`` where
``<origin>`` is the id up to its last dot.
"""
from __future__ import annotations

import argparse
import logging
import time

import redis

log = logging.getLogger("gateway_backend")


def to_connection(r: redis.Redis, conn_id: bytes, data: bytes, *, binary: bool = False) -> int:
    """Send ``data`` to one connection; Redis says how many gateways heard it (0 or 1)."""
    origin = conn_id.rsplit(b".", 1)[0]
    header = b"\x00conn=" + conn_id + (b";type=binary" if binary else b"") + b"\n"
    return r.publish(b"wsframe:conn:" + origin, header + data)


def to_room(r: redis.Redis, room: bytes, data: bytes, *, binary: bool = False) -> int:
    """Send ``data`` to every member of ``room``, on every server."""
    payload = b"\x00type=binary\n" + data if binary else (
        b"\x00\n" + data if data[:1] == b"\x00" else data)  # a bare text may not start with NUL
    return r.publish(b"wsframe:room:" + room, payload)


def handle(r: redis.Redis, fields: dict) -> None:
    """Answer one stream entry (see the module docstring)."""
    kind, conn_id = fields[b"type"], fields[b"conn"]
    if kind == b"open":
        to_connection(r, conn_id, b"welcome " + conn_id)
    elif kind in (b"text", b"binary"):
        binary = kind == b"binary"
        room = fields.get(b"room")
        if room is not None:
            to_room(r, room, fields[b"data"], binary=binary)
        else:
            to_connection(r, conn_id, fields[b"data"], binary=binary)
    elif kind == b"close":
        log.info("%s left (%s)", conn_id.decode(), fields.get(b"code", b"?").decode())


def ensure_group(r: redis.Redis, stream: str, group: str) -> None:
    """The consumer group, from the stream's first entry (``0``), the stream made if need be."""
    try:
        r.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def reclaim(r: redis.Redis, stream: str, group: str, consumer: str, min_idle_ms: int) -> int:
    """Take over and answer entries pending longer than ``min_idle_ms`` (a crashed
    consumer's); returns how many."""
    done, start = 0, "0-0"
    while True:
        reply = r.xautoclaim(stream, group, consumer, min_idle_ms, start_id=start, count=100)
        start, entries = reply[0], reply[1]
        for entry_id, fields in entries:
            if fields:  # None/empty: trimmed away by MAXLEN meanwhile, nothing to answer
                handle(r, fields)
            r.xack(stream, group, entry_id)
            done += 1
        if start in (b"0-0", "0-0"):
            return done


def serve(r: redis.Redis, streams: list[str], group: str, consumer: str, *,
          min_idle_ms: int = 30_000, claim_every: float = 5.0,
          stop_after: float | None = None) -> None:
    """Read, answer and acknowledge until interrupted (or for ``stop_after`` seconds)."""
    for stream in streams:
        ensure_group(r, stream, group)
    started = last_claim = time.monotonic()
    for stream in streams:
        reclaim(r, stream, group, consumer, min_idle_ms)
    while stop_after is None or time.monotonic() - started < stop_after:
        reply = r.xreadgroup(group, consumer, {s: ">" for s in streams}, count=100, block=1000)
        for stream, entries in reply or ():
            for entry_id, fields in entries:
                handle(r, fields)
                r.xack(stream, group, entry_id)
        if time.monotonic() - last_claim >= claim_every:
            last_claim = time.monotonic()
            for stream in streams:
                reclaim(r, stream, group, consumer, min_idle_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--routes", default="room,default",
                        help="the gateway routes to serve (stream wsframe:in:<route>)")
    parser.add_argument("--group", default="backend")
    parser.add_argument("--consumer", default="backend-1", help="unique per instance")
    parser.add_argument("--min-idle-ms", type=int, default=30_000,
                        help="take over entries another consumer left pending this long")
    parser.add_argument("--claim-every", type=float, default=5.0, metavar="S")
    parser.add_argument("--stop-after", type=float, default=None, metavar="S")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    streams = [f"wsframe:in:{route}" for route in args.routes.split(",") if route]
    try:
        serve(redis.Redis.from_url(args.redis), streams, args.group, args.consumer,
              min_idle_ms=args.min_idle_ms, claim_every=args.claim_every,
              stop_after=args.stop_after)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
